"""The per-runtime wrappers behind :func:`~hecktorseg.inference.compile_model`.

Each turns a torch module into a callable ``x -> float32 logits``: eager torch (with
autocast), an OpenVINO model compiled per input shape (the converted model kept on disk),
an ONNX Runtime session on an exported ``.onnx`` file. :mod:`~hecktorseg.inference.backends`
chooses the runtime and keeps the compiled models of a process.

In reduced precision a network that :func:`~hecktorseg.models.split_output_head` splits runs
its features in bfloat16 (or float16) and its output block in float32, with torch and with
OpenVINO alike.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import warnings
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.jit import TracerWarning  # type: ignore[attr-defined]

from hecktorseg.inference._ir_cache import cache_ir, read_cached_ir, writable_folder
from hecktorseg.models import split_output_head
from hecktorseg.runtime import Precision, autocast, import_openvino

if TYPE_CHECKING:
    from hecktorseg.inference.backends import CompiledModel, RuntimeChoice

logger = logging.getLogger(__name__)

_CONVERSIONS: Counter[str] = Counter()


class _TorchModel:
    """Eager torch under ``inference_mode`` (+ autocast; channels-last-3d for bf16 on the CPU).

    Under autocast the output block of a split network runs in float32.
    """

    def __init__(self, model: nn.Module, choice: RuntimeChoice) -> None:
        self.device = choice.device
        self.precision = choice.precision
        self.memory_format = (
            torch.channels_last_3d
            if choice.precision == "bf16" and choice.device.type == "cpu"
            else torch.contiguous_format
        )
        model.eval()
        self.model: nn.Module = model.to(self.device)
        for tensor in list(self.model.parameters()) + list(self.model.buffers()):
            if tensor.ndim == 5:
                tensor.data = tensor.data.contiguous(memory_format=self.memory_format)
        self.split = split_output_head(self.model) if choice.precision != "fp32" else None

    def __call__(self, x: Tensor) -> Tensor:
        x = x.to(device=self.device, dtype=torch.float32).contiguous(memory_format=self.memory_format)
        with torch.inference_mode():
            if self.split is None:
                with autocast(self.device, self.precision):
                    out: Tensor = self.model(x)
            else:
                features, head = self.split
                with autocast(self.device, self.precision):
                    feats = features(x)
                out = head(feats.float())
        return out.float().contiguous()


MAX_LIVE_NETWORKS = 4
"""OpenVINO networks (stage × input shape) whose working memory is kept at once in a process.

A network compiled for a static shape holds the memory of all its intermediate tensors
(about 0.6 GB for the SE-norm U-Net's features, f = 24, at 144³, in bf16) once it has run.
Beyond this many, the least recently used network gives that memory back
(``CompiledModel.release_memory``) and stays compiled: its next run allocates it again,
about 0.3 s at 144³ (recompiling instead cost 1–3 s per network). For the paper's 8-model
ensemble with TTA at 144³ this keeps the peak near 5 GiB instead of 11 GiB."""

MAX_COMPILED_NETWORKS = 32
"""Networks kept compiled (without their working memory beyond :data:`MAX_LIVE_NETWORKS`);
the least recently used beyond this are dropped and compiled again if needed."""

_LIVE_LOCK = threading.Lock()
# (id(stage), shape) -> (weak reference to the stage, shape), least recently used first; a
# weak reference, so that a predictor that is gone takes its compiled networks with it.
_LIVE: OrderedDict[tuple[int, tuple[int, ...]], tuple[Any, tuple[int, ...]]] = OrderedDict()


def _keep_live(stage: Any, shape: tuple[int, ...]) -> None:
    """Mark ``stage``'s network for ``shape`` as just used; release or drop the least recently used."""
    with _LIVE_LOCK:
        key = (id(stage), shape)
        _LIVE[key] = (weakref.ref(stage), shape)
        _LIVE.move_to_end(key)
        for old_key in [k for k, (ref, _) in _LIVE.items() if ref() is None]:
            del _LIVE[old_key]
        dropped = []
        while len(_LIVE) > MAX_COMPILED_NETWORKS:
            _, old = _LIVE.popitem(last=False)
            dropped.append(old)
        entries = list(_LIVE.values())
        released = entries[: max(0, len(entries) - MAX_LIVE_NETWORKS)]
    for ref, old_shape in released:
        old_stage = ref()
        if old_stage is not None:
            old_stage.release(old_shape)
    for ref, old_shape in dropped:
        old_stage = ref()
        if old_stage is not None:
            old_stage.drop(old_shape)


class _OpenVINOStage:
    """One OpenVINO model compiled per input shape (static shapes are faster than dynamic ones)."""

    def __init__(self, ov_model: Any, core: Any, precision: Precision, threads: int) -> None:
        self.ov_model = ov_model
        self.core = core
        # OpenVINO 2026.4's CPU plugin crashes (segmentation fault) compiling this network in f32 on
        # one thread, or for batches of 4 and more: f32 runs on >= 2 threads, one sample at a time.
        self.one_by_one = precision == "fp32"
        if threads == 1 and precision == "fp32":
            logger.info("OpenVINO f32 runs on 2 threads (one thread crashes OpenVINO 2026.4)")
            threads = 2
        self.config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._released: set[tuple[int, ...]] = set()  # compiled, working memory given back
        self._busy = 0  # runs in progress whose outputs may still be read
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Keep this stage's working memory (and the outputs that live in it) while the block runs."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1

    def _for_shape(self, shape: tuple[int, ...]) -> Any:
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is None:
                ov = import_openvino()
                model = self.ov_model.clone()
                model.reshape({model.inputs[0]: ov.PartialShape(list(shape))})
                compiled = self.core.compile_model(model, "CPU", self.config)
                self._compiled[shape] = compiled
                logger.debug("OpenVINO: compiled for input %s", shape)
            self._released.discard(shape)
        _keep_live(self, shape)
        return compiled

    def release(self, shape: tuple[int, ...]) -> None:
        """Give back the working memory of the network compiled for ``shape``; it stays compiled.

        Skipped while the stage is in use (its outputs live in that memory): the network is
        then released the next time it falls out of the live set.
        """
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is None or self._busy or shape in self._released:
                return
            if hasattr(compiled, "release_memory"):  # OpenVINO >= 2024.3
                compiled.release_memory()
                self._released.add(shape)
            else:
                del self._compiled[shape]
        logger.debug("OpenVINO: released the working memory of the network for %s", shape)

    def drop(self, shape: tuple[int, ...]) -> None:
        """Forget the network compiled for ``shape`` (compiled again when needed); not while in use."""
        with self._lock:
            if not self._busy:
                self._compiled.pop(shape, None)
                self._released.discard(shape)

    def infer(self, arr: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], Any]:
        """The output for one contiguous float32 array, and the request that owns its memory.

        Neither input nor output is copied: the output array is valid while the request lives.
        """
        compiled = self._for_shape(tuple(int(s) for s in arr.shape))
        request = compiled.create_infer_request()
        out = request.infer({0: arr}, share_inputs=True, share_outputs=True)[compiled.outputs[0]]
        return out, request

    def __call__(self, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """The output for ``arr`` as an array of its own (one sample at a time where needed)."""
        if self.one_by_one and arr.shape[0] > 1:
            return np.concatenate([self(arr[i : i + 1]) for i in range(arr.shape[0])])
        with self.in_use():
            out, _request = self.infer(np.ascontiguousarray(arr, dtype=np.float32))
            return np.array(out, dtype=np.float32, copy=True)


class _OpenVINOModel:
    """OpenVINO stages run one after the other (one stage; or features in bf16, then the head in f32).

    A stage's output feeds the next without a copy; only the logits are copied out.
    """

    def __init__(self, stages: list[_OpenVINOStage]) -> None:
        self.stages = stages

    def _one(self, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        keep = []  # the requests that own the intermediate outputs
        with contextlib.ExitStack() as stack:
            for stage in self.stages:
                stack.enter_context(stage.in_use())
            for stage in self.stages:
                arr, request = stage.infer(np.ascontiguousarray(arr, dtype=np.float32))
                keep.append(request)
            out = np.array(arr, dtype=np.float32, copy=True)
            del keep
        return out

    def __call__(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        if arr.shape[0] > 1 and any(stage.one_by_one for stage in self.stages):
            return torch.from_numpy(np.concatenate([self._one(arr[i : i + 1]) for i in range(arr.shape[0])]))
        return torch.from_numpy(self._one(arr))


class _ONNXRuntimeModel:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: Tensor) -> Tensor:
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        (out,) = self.session.run(None, {self.input_name: arr})
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def _example(model: nn.Module) -> Tensor:
    channels = int(getattr(model, "in_channels", 2))
    return torch.zeros((1, channels, 32, 32, 32))


def _openvino_parts(
    model: nn.Module, precision: Precision
) -> list[tuple[str, nn.Module, Precision, Callable[[], Tensor]]]:
    """``(name, module, precision, example input)`` of each stage OpenVINO runs for ``model``.

    The example inputs are made only when a stage is converted (not on a cache hit).
    """
    split = split_output_head(model) if precision == "bf16" else None
    if split is None:
        return [("model", model, precision, lambda: _example(model))]
    features, head = split

    def features_example() -> Tensor:
        with torch.no_grad():
            out: Tensor = features(_example(model))
        return torch.zeros_like(out)

    return [("features", features, "bf16", lambda: _example(model)), ("head", head, "fp32", features_example)]


def _openvino_model(
    ov: Any, model: nn.Module, key: str, precision: Precision, threads: int, disk: Path | None
) -> Any:
    """Convert (or read from ``disk``) ``model`` for OpenVINO, the module ``ov`` already imported.

    In bf16, a network that :func:`~hecktorseg.models.split_output_head` splits becomes two
    OpenVINO models: its features in bf16 and its output block in f32.
    """
    core = ov.Core()
    folder = disk / "openvino" / ov.get_version().split("-")[0] if disk is not None else None
    if folder is not None:
        blobs = folder / "blobs"
        if writable_folder(blobs):
            try:
                core.set_property({"CACHE_DIR": str(blobs)})
            except Exception as exc:
                logger.warning("OpenVINO: no compiled-model cache (%s)", exc)
        else:  # e.g. a read-only cache prepared in a container image: the converted models still serve
            logger.info("OpenVINO: compiled kernels not cached (%s is not writable)", blobs)
    model = model.float().cpu().eval()
    stages: list[_OpenVINOStage] = []
    for name, part, part_precision, example in _openvino_parts(model, precision):
        ir = folder / key / name / "model.xml" if folder is not None else None
        ov_model, stale = read_cached_ir(core, ir) if ir is not None else (None, False)
        if ov_model is not None and ir is not None:
            logger.info("OpenVINO: %s read from the cache %s", name, ir.parent)
        else:
            example_input = example()
            channels = int(example_input.shape[1])
            # OpenVINO traces the module and compares the trace with eager: the traced SE-norm
            # (instance_norm) differs from the eager one (var_mean) by float rounding, which torch
            # reports as a TracerWarning that would only alarm users.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore", TracerWarning)
                ov_model = ov.convert_model(
                    part,
                    example_input=example_input,
                    input=[ov.PartialShape([-1, channels, -1, -1, -1])],
                )
            _CONVERSIONS["openvino"] += 1
            if ir is not None:
                cache_ir(ov, ov_model, ir, replace=stale)
        stages.append(_OpenVINOStage(ov_model, core, part_precision, threads))
    return _OpenVINOModel(stages)


def _onnxruntime_model(model: nn.Module, key: str, threads: int, disk: Path | None) -> CompiledModel:
    """Export ``model`` to ONNX (kept under ``disk`` if given) and open an ONNX Runtime session."""
    from hecktorseg.models.export import _export_onnx

    if disk is not None:
        path = disk / "onnx" / f"{key}.onnx"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            _export_onnx(model.float().cpu().eval(), _example(model), path)
            _CONVERSIONS["onnxruntime"] += 1
        return _ONNXRuntimeModel(path, threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        _export_onnx(model.float().cpu().eval(), _example(model), path)
        _CONVERSIONS["onnxruntime"] += 1
        return _ONNXRuntimeModel(path, threads)
