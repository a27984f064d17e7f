"""The demo pipeline: synthetic data → preprocessing → training → prediction → scoring → report."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from hecktorseg.demo.report import write_report, write_report_nodes
from hecktorseg.errors import ConfigError
from hecktorseg.io import atomic_write_text, ensure_output_dir
from hecktorseg.typing import PathLike

if TYPE_CHECKING:
    from hecktorseg.preprocessing import PreprocessConfig
    from hecktorseg.training import TrainConfig, TrainResult

__all__ = [
    "DEMO_EDITIONS",
    "DEMO_RECIPES",
    "DemoConfig",
    "DemoRecipe",
    "DemoResult",
    "StageCallback",
    "run_demo",
]

DEMO_EDITIONS = ("2020", "2025", "2026")
"""Tasks the demo runs: the paper's (2020) and today's GTVp + GTVn (2025, 2026)."""


@attrs.frozen
class DemoRecipe:
    """What the demo uses for one task when ``size``, ``spacing`` or ``lr`` are not given."""

    size: int
    spacing: float
    lr: float


DEMO_RECIPES: dict[str, DemoRecipe] = {
    "2020": DemoRecipe(size=32, spacing=4.5, lr=1e-2),
    "2025": DemoRecipe(size=48, spacing=3.0, lr=1e-2),
    "2026": DemoRecipe(size=48, spacing=3.0, lr=1e-2),
}
"""The demo's grid (side in voxels, mm) and learning rate per task.

The GTVp + GTVn demo uses 3 mm voxels, where a 1 ml lymph node is about 4 voxels across (2.7
at 4.5 mm, where the model found fewer nodes and more false ones: the GTVn ablation in the
training docs, which also shows how much this short CPU training depends on its seed)."""

logger = logging.getLogger(__name__)

StageCallback = Callable[[str, int, int, str], None]
"""``callback(stage, completed, total, message)``: progress of each demo stage."""


@attrs.frozen
class DemoConfig:
    """Settings of the demo; the defaults finish in a few minutes on 2 CPU cores."""

    n_train: int = attrs.field(
        default=16, metadata={"help": "Synthetic patients used for training and validation."}
    )
    n_test: int = attrs.field(
        default=6, metadata={"help": "Held-out synthetic patients predicted and scored."}
    )
    n_val: int = attrs.field(default=4, metadata={"help": "Of the training patients, how many validate."})
    epochs: int = attrs.field(default=30, metadata={"help": "Training epochs."})
    n_filters: int = attrs.field(default=8, metadata={"help": "Filters of the first U-Net level."})
    size: int | None = attrs.field(
        default=None,
        metadata={"help": "Side of the preprocessed grid (voxels); null: 32 (2020), 48 (2025/2026)."},
    )
    spacing: float | None = attrs.field(
        default=None,
        metadata={"help": "Voxel size of the preprocessed grid (mm); null: 4.5 (2020), 3 (2025/2026)."},
    )
    lr: float | None = attrs.field(
        default=None, metadata={"help": "Learning rate; null: the task's (DEMO_RECIPES), 1e-2."}
    )
    seed: int = attrs.field(default=0, metadata={"help": "Seed of data generation and training."})
    backend: str = attrs.field(
        default="auto",
        metadata={"help": "Inference backend: auto, torch, openvino or onnxruntime."},
    )
    precision: str = attrs.field(
        default="auto", metadata={"help": "Inference precision: auto, fp32 or bf16."}
    )
    edition: str = attrs.field(
        default="2020",
        metadata={
            "help": "Task: 2020 (the paper's GTVt, 2020 rules) or 2025 / 2026 (GTVp + GTVn, 2025 rules)."
        },
    )
    train_precision: str = attrs.field(
        default="auto",
        metadata={
            "help": "Training precision: auto (CUDA: fp16 with gradient scaling; CPU, 2025/2026: bf16 + "
            "channels-last where the CPU computes bf16 natively, else fp32; CPU, 2020: fp32), fp32, "
            "bf16 or fp16 (CUDA only)."
        },
    )
    device: str = attrs.field(
        default="auto",
        metadata={
            "help": "Where the demo trains and predicts: auto (CUDA when visible, else the CPU), cpu or "
            "cuda. The report states what ran."
        },
    )

    def __attrs_post_init__(self) -> None:
        if self.edition not in DEMO_EDITIONS:
            raise ConfigError(
                f"demo edition must be one of {', '.join(DEMO_EDITIONS)}, got {self.edition!r}",
                hint="use --edition 2020 (the paper's task) or --edition 2025",
            )
        if self.n_train - self.n_val < 2 or self.n_val < 1 or self.n_test < 1:
            raise ConfigError(
                "demo needs at least 2 training, 1 validation and 1 test patient",
                hint="raise n_train/n_test or lower n_val",
            )
        if self.size is not None and self.size % 16:
            raise ConfigError(f"demo size must be a multiple of 16, got {self.size}")
        if self.train_precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(
                f"demo train_precision must be auto, fp32, bf16 or fp16, got {self.train_precision!r}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(
                f"demo device must be auto, cpu or cuda, got {self.device!r}", hint="use --device cpu"
            )

    @property
    def grid_size(self) -> int:
        """``size``, or the task's default (:data:`DEMO_RECIPES`)."""
        return self.size if self.size is not None else DEMO_RECIPES[self.edition].size

    @property
    def grid_spacing(self) -> float:
        """``spacing``, or the task's default (:data:`DEMO_RECIPES`)."""
        return float(self.spacing) if self.spacing is not None else DEMO_RECIPES[self.edition].spacing

    @property
    def learning_rate(self) -> float:
        """``lr``, or the task's default (:data:`DEMO_RECIPES`)."""
        return float(self.lr) if self.lr is not None else DEMO_RECIPES[self.edition].lr

    @property
    def nodes(self) -> bool:
        """Whether the task has lymph nodes (GTVp + GTVn)."""
        return self.edition != "2020"

    def preprocess_config(self) -> PreprocessConfig:
        """The demo's grid: ``grid_size``³ at ``grid_spacing`` mm; with lymph nodes 1.5 times taller
        (rounded up to a multiple of 16), so the box holds the neck."""
        from hecktorseg.preprocessing import PreprocessConfig

        side = self.grid_size
        return PreprocessConfig(
            spacing=(self.grid_spacing,) * 3, size=(side, side, _taller(side) if self.nodes else side)
        )

    def train_config(self, split_file: str = "split.json") -> TrainConfig:
        """The demo's training settings (device, precision, recipe), with the loss defaults of its task
        resolved; ``split_file`` names the fixed train/validation split."""
        return _train_config_values(self, split_file)


@attrs.frozen
class DemoResult:
    """What the demo produced."""

    out_dir: Path
    report: Path
    mean_dice: float
    per_case_dice: dict[str, float]
    best_val_dice: float
    seconds: float
    edition: str = "2020"
    summary: dict[str, Any] = attrs.field(factory=dict)


def _stage(callback: StageCallback | None, stage: str) -> Callable[[int, int, str], None] | None:
    if callback is None:
        return None

    def update(completed: int, total: int, message: str = "") -> None:
        callback(stage, completed, total, message)

    return update


def run_demo(
    out_dir: PathLike,
    config: DemoConfig | None = None,
    *,
    force: bool = False,
    progress: StageCallback | None = None,
) -> DemoResult:
    """Run the whole pipeline on synthetic phantoms and write a report.

    Parameters
    ----------
    out_dir
        Folder for everything the demo writes (data, model, predictions,
        scores, pictures, ``report.md``). Must be empty or absent unless ``force``.
    config
        Demo settings; :class:`DemoConfig` defaults when ``None``.
    force
        Delete the previous content of ``out_dir`` first.
    progress
        Optional ``callback(stage, completed, total, message)``.

    Returns
    -------
    DemoResult
        Paths and the held-out scores.
    """
    from hecktorseg.data import write_synthetic_dataset
    from hecktorseg.evaluation import evaluate, visualize_case
    from hecktorseg.inference import Predictor, PredictorConfig, predict_dataset
    from hecktorseg.io import discover_cases, write_bbox_table
    from hecktorseg.preprocessing import preprocess_dataset
    from hecktorseg.training import train

    cfg = config or DemoConfig()
    if cfg.edition != "2020":
        return _run_demo_nodes(out_dir, cfg, force=force, progress=progress)
    out = _prepare_out(out_dir, force)
    start = time.perf_counter()

    # 1. synthetic HECKTOR 2020-style data; the last n_test patients are held out.
    raw = out / "data" / "raw"
    n_total = cfg.n_train + cfg.n_test
    cases = write_synthetic_dataset(
        raw, n_cases=n_total, edition="2020", seed=cfg.seed, progress=_stage(progress, "synthesise")
    )
    train_cases, test_cases = cases[: cfg.n_train], cases[cfg.n_train :]
    test_dir = out / "data" / "test"
    for case in test_cases:
        shutil.copytree(case.ct_path.parent, test_dir / case.patient_id)
    write_bbox_table(test_dir / "bbox.csv", {c.patient_id: c.bbox for c in test_cases if c.bbox is not None})
    logger.info("synthesised %d patients (%d held out) in %s", n_total, cfg.n_test, raw)

    # 2. preprocessing of the training patients onto a coarse reference grid.
    pre_cfg = cfg.preprocess_config()
    preprocessed = out / "data" / "preprocessed"
    preprocess_dataset(train_cases, preprocessed, pre_cfg, progress=_stage(progress, "preprocess"))

    # 3. training: a fixed split, the last n_val training patients validate.
    train_cfg = _train_config(cfg, out, [c.patient_id for c in train_cases])
    result = train(preprocessed, out / "model", train_cfg, fold=0, progress=_stage(progress, "train"))

    # 4. prediction of the held-out patients on their original CT grids.
    predictor = Predictor.from_checkpoints(
        [result.best_checkpoint],
        PredictorConfig(device=cfg.device, backend=cfg.backend, precision=cfg.precision),  # type: ignore[arg-type]
    )
    pred_dir = out / "predictions"
    predict_dataset(test_dir, pred_dir, predictor, progress=_stage(progress, "predict"))

    # 5. official HECKTOR 2020 scoring and pictures.
    evaluation = evaluate(pred_dir, test_dir, edition="2020", out_dir=out / "scores")
    _review(pred_dir, test_dir, out, layout=None)
    pictures = out / "pictures"
    for case in discover_cases(test_dir):
        visualize_case(
            case, pictures / f"{case.patient_id}.png", prediction=pred_dir / f"{case.patient_id}.nii.gz"
        )

    seconds = time.perf_counter() - start
    per_case = {str(k): float(v) for k, v in evaluation.per_case_dice.items()}
    report = write_report(
        out, cfg, _ran(result), evaluation.mean_dice, per_case, result.best_dice, seconds, result.runtime
    )
    return DemoResult(
        out_dir=out,
        report=report,
        mean_dice=float(evaluation.mean_dice),
        per_case_dice=per_case,
        best_val_dice=float(result.best_dice),
        seconds=seconds,
    )


def _prepare_out(out_dir: PathLike, force: bool) -> Path:
    """Create the (empty) output folder; with ``force`` empty a non-empty one first."""
    out = ensure_output_dir(out_dir)
    if any(out.iterdir()):
        if not force:
            raise ConfigError(
                "output folder is not empty",
                path=out,
                hint="choose another folder or pass force=True to replace it",
            )
        shutil.rmtree(out)
        ensure_output_dir(out)
    return out


def _run_demo_nodes(
    out_dir: PathLike, cfg: DemoConfig, *, force: bool, progress: StageCallback | None
) -> DemoResult:
    """The GTVp + GTVn demo (2025/2026 layout and rules); see :mod:`hecktorseg.demo.run`."""

    from hecktorseg.data import write_synthetic_dataset
    from hecktorseg.evaluation import evaluate, visualize_case
    from hecktorseg.inference import Predictor, PredictorConfig, predict_dataset
    from hecktorseg.io import discover_cases
    from hecktorseg.preprocessing import preprocess_dataset
    from hecktorseg.training import train

    out = _prepare_out(out_dir, force)
    start = time.perf_counter()
    layout = cfg.edition

    # 1. phantoms in the 2025/2026 layout (GTVp + 0-4 neck nodes); the last n_test are held out.
    raw = out / "data" / "raw"
    n_total = cfg.n_train + cfg.n_test
    cases = write_synthetic_dataset(
        raw, n_cases=n_total, edition=layout, seed=cfg.seed, progress=_stage(progress, "synthesise")
    )
    train_cases, test_cases = cases[: cfg.n_train], cases[cfg.n_train :]
    test_dir = out / "data" / "test"
    for case in test_cases:
        shutil.copytree(case.ct_path.parent, test_dir / case.ct_path.parent.name)

    # 2. a grid 1.5 times taller than the 2020 demo's, so the box holds the neck nodes.
    pre_cfg = cfg.preprocess_config()
    preprocessed = out / "data" / "preprocessed"
    preprocess_dataset(train_cases, preprocessed, pre_cfg, progress=_stage(progress, "preprocess"))

    # 3. training: 3 outputs (from the manifest: the labels include 2), fixed split.
    train_cfg = _train_config(cfg, out, [c.patient_id for c in train_cases])
    result = train(preprocessed, out / "model", train_cfg, fold=0, progress=_stage(progress, "train"))

    # 4. labels 0/1/2 on the original CT grids; 5. the 2025 rules and pictures.
    predictor = Predictor.from_checkpoints(
        [result.best_checkpoint],
        PredictorConfig(device=cfg.device, backend=cfg.backend, precision=cfg.precision),  # type: ignore[arg-type]
    )
    pred_dir = out / "predictions"
    predict_dataset(test_dir, pred_dir, predictor, layout=layout, progress=_stage(progress, "predict"))
    evaluation = evaluate(pred_dir, test_dir, edition=layout, layout=layout, out_dir=out / "scores")
    _review(pred_dir, test_dir, out, layout=layout)
    pictures = out / "pictures"
    for case in discover_cases(test_dir, layout=layout):
        visualize_case(
            case, pictures / f"{case.patient_id}.png", prediction=pred_dir / f"{case.patient_id}.nii.gz"
        )
    seconds = time.perf_counter() - start
    summary = dict(evaluation.summary)
    per_case = {c.patient_id: dict(c.metrics) for c in evaluation.cases}
    report = write_report_nodes(
        out,
        cfg,
        _ran(result),
        summary,
        per_case,
        result.best_dice,
        seconds,
        min_gtvn_volume=predictor.min_gtvn_volume,
        runtime=result.runtime,
    )
    return DemoResult(
        out_dir=out,
        report=report,
        mean_dice=float(summary.get("gtvp_mean_dice", float("nan"))),
        per_case_dice={pid: float(m.get("dice_GTVp", float("nan"))) for pid, m in per_case.items()},
        best_val_dice=float(result.best_dice),
        seconds=seconds,
        edition=cfg.edition,
        summary=summary,
    )


def _train_config(cfg: DemoConfig, out: Path, ids: list[str]) -> TrainConfig:
    """The demo's training settings; writes ``out/split.json`` (the last ``n_val`` of ``ids`` validate)."""
    import json

    split_file = out / "split.json"
    atomic_write_text(
        split_file,
        json.dumps([{"train": ids[: -cfg.n_val], "val": ids[-cfg.n_val :]}], indent=2),
    )
    return _train_config_values(cfg, str(split_file))


def _ran(result: TrainResult) -> TrainConfig:
    """The training configuration as the run recorded it (``config.yaml``: loss, device, precision)."""
    from hecktorseg.config import load_yaml
    from hecktorseg.training import TrainConfig

    return load_yaml(TrainConfig, result.fold_dir / "config.yaml", section="train")


def _train_config_values(cfg: DemoConfig, split_file: str = "split.json") -> TrainConfig:
    """The demo's training settings, with the loss defaults of its task resolved."""
    from hecktorseg.training import TrainConfig, resolve_loss_defaults

    amp, amp_dtype, channels_last = _train_amp(cfg)
    config = TrainConfig(
        n_filters=cfg.n_filters,
        epochs=cfg.epochs,
        lr=cfg.learning_rate,
        split="file",
        split_file=split_file,
        seed=cfg.seed,
        num_workers=0,
        device=cfg.device,  # type: ignore[arg-type]
        rotation_p=0.0,
        mirror_p=0.5,
        t_0=cfg.epochs,  # one cosine cycle over the short run
        amp=amp,
        amp_dtype=amp_dtype,  # type: ignore[arg-type]
        channels_last=channels_last,
    )
    return resolve_loss_defaults(config, 3 if cfg.nodes else 1)


_AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}


def _train_amp(cfg: DemoConfig) -> tuple[bool | None, str, bool]:
    """``(amp, amp_dtype, channels_last)`` of the demo's training (``train_precision`` on ``device``).

    On CUDA ``auto`` leaves the choice to the trainer (fp16 with gradient scaling); on the CPU
    it is bf16 + channels-last for the node tasks where the CPU computes bf16 natively, else fp32.
    """
    import torch

    from hecktorseg.runtime import native_bf16, resolve_device

    cuda = resolve_device(cfg.device).type == "cuda"
    if cfg.train_precision == "fp16" and not cuda:
        raise ConfigError(
            "demo train_precision fp16 needs CUDA, but the demo runs on the CPU",
            hint="use --train-precision bf16 or fp32 on the CPU",
        )
    if cfg.train_precision == "fp32":
        return False, "auto", False
    if cfg.train_precision in _AMP_DTYPES:
        bf16_cpu = cfg.train_precision == "bf16" and not cuda
        return True, _AMP_DTYPES[cfg.train_precision], bf16_cpu
    if cuda:
        return None, "auto", False
    bf16 = cfg.nodes and native_bf16(torch.device("cpu"))
    return bf16, "auto", bf16


def _taller(size: int) -> int:
    """The z side of the GTVp + GTVn grid: 1.5 × ``size`` rounded up to a multiple of 16."""
    return -(-(3 * size // 2) // 16) * 16


def _review(pred_dir: Path, test_dir: Path, out: Path, *, layout: str | None) -> None:
    """The review page of the held-out predictions (``out/review/index.html``), linked from the report."""
    from hecktorseg.review import write_review

    write_review(pred_dir, test_dir, out / "review", scores_dir=out / "scores", layout=layout)
