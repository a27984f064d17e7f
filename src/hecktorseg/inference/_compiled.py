"""The per-runtime wrappers behind :func:`~hecktorseg.inference.compile_model`.

Each turns a torch module into a callable ``x -> float32 logits``: eager torch (with
autocast), an OpenVINO model compiled per input shape (the converted model kept on disk),
an ONNX Runtime session on an exported ``.onnx`` file. :mod:`~hecktorseg.inference.backends`
chooses the runtime and keeps the compiled models of a process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from hecktorseg.runtime import Precision, autocast

if TYPE_CHECKING:
    from hecktorseg.inference.backends import CompiledModel, RuntimeChoice

logger = logging.getLogger(__name__)

_CONVERSIONS: Counter[str] = Counter()


class _TorchModel:
    """Eager torch under ``inference_mode`` (+ autocast; channels-last-3d for bf16 on the CPU)."""

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

    def __call__(self, x: Tensor) -> Tensor:
        x = x.to(device=self.device, dtype=torch.float32).contiguous(memory_format=self.memory_format)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out: Tensor = self.model(x)
        return out.float().contiguous()


class _OpenVINOModel:
    """An OpenVINO model compiled per input shape (static shapes are faster than dynamic ones)."""

    def __init__(self, ov_model: Any, core: Any, precision: Precision, threads: int) -> None:
        self.ov_model = ov_model
        self.core = core
        # OpenVINO 2026.4's CPU plugin crashes (segmentation fault) compiling this network in f32 on
        # one thread, or for batches of 4 and more: f32 runs on >= 2 threads, one sample at a time.
        self.one_by_one = precision == "fp32"
        if threads == 1 and precision == "fp32":
            logger.info("OpenVINO fp32 runs on 2 threads (one thread crashes OpenVINO 2026.4)")
            threads = 2
        self.config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
        }
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._lock = threading.Lock()

    def _for_shape(self, shape: tuple[int, ...]) -> Any:
        with self._lock:
            compiled = self._compiled.get(shape)
            if compiled is None:
                import openvino as ov

                model = self.ov_model.clone()
                model.reshape({model.inputs[0]: ov.PartialShape(list(shape))})
                compiled = self.core.compile_model(model, "CPU", self.config)
                self._compiled[shape] = compiled
                logger.debug("OpenVINO: compiled for input %s", shape)
            return compiled

    def __call__(self, x: Tensor) -> Tensor:
        if self.one_by_one and x.shape[0] > 1:
            return torch.cat([self(x[i : i + 1]) for i in range(x.shape[0])])
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        compiled = self._for_shape(tuple(int(s) for s in arr.shape))
        request = compiled.create_infer_request()
        out = request.infer({0: arr})[compiled.outputs[0]]
        return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))


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


def _write_dir_atomically(final: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp_dir)``, then move ``tmp_dir`` onto ``final`` (another process may win the race)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        write(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # ``final`` appeared meanwhile (a parallel process): keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _openvino_model(
    ov: Any, model: nn.Module, key: str, precision: Precision, threads: int, disk: Path | None
) -> Any:
    """Convert (or read from ``disk``) ``model`` for OpenVINO, the module ``ov`` already imported."""
    core = ov.Core()
    folder = disk / "openvino" / ov.get_version().split("-")[0] if disk is not None else None
    ir = folder / key / "model.xml" if folder is not None else None
    if folder is not None:
        try:
            core.set_property({"CACHE_DIR": str(folder / "blobs")})
        except Exception as exc:
            logger.warning("OpenVINO: no compiled-model cache (%s)", exc)
    if ir is not None and ir.exists():
        ov_model = core.read_model(str(ir))
        logger.info("OpenVINO: model read from the cache %s", ir.parent)
    else:
        channels = int(getattr(model, "in_channels", 2))
        with torch.no_grad():
            ov_model = ov.convert_model(
                model.float().cpu().eval(),
                example_input=_example(model),
                input=[ov.PartialShape([-1, channels, -1, -1, -1])],
            )
        _CONVERSIONS["openvino"] += 1
        if ir is not None:
            try:
                _write_dir_atomically(
                    ir.parent,
                    lambda tmp: ov.save_model(ov_model, str(tmp / "model.xml"), compress_to_fp16=False),
                )
                logger.info("OpenVINO: converted model cached in %s", ir.parent)
            except OSError as exc:
                logger.warning("OpenVINO: could not cache the converted model in %s (%s)", ir.parent, exc)
    return _OpenVINOModel(ov_model, core, precision, threads)


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
