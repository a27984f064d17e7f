"""The demo's ``report.md``: scores, per-case tables, pictures and how the demo departs from the paper."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hecktorseg.io import atomic_write_text

if TYPE_CHECKING:
    from hecktorseg.demo.run import DemoConfig
    from hecktorseg.training import TrainResult

__all__ = ["departures_from_paper", "write_report", "write_report_nodes"]


def _where(result: TrainResult | None) -> str:
    """Where the demo trained, from the run's own record (never assumed)."""
    runtime = result.runtime if result is not None else None
    if runtime is None:
        return "(not recorded)"
    return f"{runtime.device} ({runtime.device_name})" if runtime.on_gpu else "the CPU"


def departures_from_paper(cfg: DemoConfig, result: TrainResult | None = None) -> list[tuple[str, str, str]]:
    """Every setting in which the demo departs from the paper: ``(setting, paper, demo)`` rows.

    The hardware row states what the training ``result`` ran on (device, batch, precision).

    The demo trains with these values (see :func:`run_demo`); they make it fit in a few minutes
    on a CPU, and they make its Dice a phantom figure, not comparable with the paper's 0.759.
    """
    return [
        (
            "data",
            "201 HECKTOR 2020 patients (4 centres), real PET/CT",
            f"{cfg.n_train + cfg.n_test} synthetic phantoms",
        ),
        (
            "folds / models",
            "8 models (4 centre + 4 random folds), probabilities averaged",
            f"1 model, fixed split ({cfg.n_train - cfg.n_val} train / {cfg.n_val} validation)",
        ),
        ("test set", "53 CHUV patients", f"{cfg.n_test} held-out phantoms"),
        ("grid", "144³ voxels of 1 mm", f"{cfg.size}³ voxels of {cfg.spacing:g} mm"),
        (
            "preprocessing",
            "rounded crop, 0 HU outside the CT, PET statistics over the box",
            "hecktorseg's: world-coordinate grid, −1024 HU, PET statistics over its field of view",
        ),
        ("filters (first level)", "24", str(cfg.n_filters)),
        ("learning rate", "1e-3", f"{cfg.lr:g}"),
        (
            "schedule",
            "cosine warm restarts, 25-epoch cycles, 300 epochs",
            f"one cosine cycle of {cfg.epochs} epochs",
        ),
        ("rotation", "p 0.5, 1–3 axes one after the other, 0–44° with random sign, 0 fill", "none"),
        ("mirroring", "p 0.5 over 0–3 axes (flipped at all: 0.375)", "p 0.5 over 1–3 axes (flipped: 0.5)"),
        (
            "hardware",
            "two GPUs, batch 1 each",
            result.runtime.hardware()
            if result is not None and result.runtime is not None
            else "(not recorded)",
        ),
    ]


def write_report(
    out: Path,
    cfg: DemoConfig,
    mean_dice: float,
    per_case: dict[str, float],
    best_val: float,
    seconds: float,
    result: TrainResult | None = None,
) -> Path:
    """Write ``out/report.md`` of the 2020 demo: scores, per-case Dice, departures from the paper, pictures.

    ``result`` (the training's) gives the device, batch and precision the report states.
    """
    departures = departures_from_paper(cfg, result)
    lines = [
        "# hecktorseg demo report",
        "",
        f"Synthetic HECKTOR 2020-style phantoms: {cfg.n_train} for training ({cfg.n_val} of them validate), "
        f"{cfg.n_test} held out. Preprocessed to {cfg.size}³ voxels of {cfg.spacing} mm; "
        f"SE-norm U-Net with {cfg.n_filters} filters trained for {cfg.epochs} epochs on {_where(result)}.",
        "",
        f"- Best validation Dice (reference grid): **{best_val:.3f}**",
        f"- Held-out mean Dice, official 2020 rules (original CT grids): **{mean_dice:.3f}**",
        f"- Total time: {seconds / 60:.1f} min",
        "",
        "| patient | Dice |",
        "|---|---|",
        *(f"| {pid} | {dice:.3f} |" for pid, dice in sorted(per_case.items())),
        "",
        "## How this demo departs from the paper",
        "",
        "These Dice values are measured on synthetic phantoms with a deliberately small and short "
        "recipe; they are not comparable with the paper's 0.759 (53 real CHUV test patients). "
        "To train as the paper did, use `hecktorseg preprocess --preset paper` and "
        "`hecktorseg train --preset paper --all-folds` on the HECKTOR 2020 data.",
        "",
        "| setting | paper | this demo |",
        "|---|---|---|",
        *(f"| {name} | {paper} | {demo} |" for name, paper, demo in departures),
        "",
    ]
    return _write(out, lines, sorted(per_case))


def _fmt(value: Any, *, count: bool = False) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        return str(round(value)) if count else f"{value:.3f}"
    return str(value)


def write_report_nodes(
    out: Path,
    cfg: DemoConfig,
    summary: dict[str, Any],
    per_case: dict[str, dict[str, float]],
    best_score: float,
    seconds: float,
    *,
    depth: int,
    result: TrainResult | None = None,
) -> Path:
    """Write ``out/report.md`` of the GTVp + GTVn demo (``depth``: the z side of its grid; ``result``: the training's)."""
    columns = ("dice_GTVp", "dice_GTVn", "gtvn_lesions_gt", "gtvn_tp", "gtvn_fp", "gtvn_fn")
    rows = [
        f"| {pid} | "
        + " | ".join(_fmt(m.get(c, float("nan")), count=c.startswith("gtvn_")) for c in columns)
        + " |"
        for pid, m in sorted(per_case.items())
    ]
    nan = float("nan")
    lines = [
        f"# hecktorseg demo report: HECKTOR {cfg.edition} (GTVp + GTVn)",
        "",
        f"Synthetic phantoms in the HECKTOR {cfg.edition} layout (a primary tumour and 0–4 FDG-avid "
        f"lymph nodes each): {cfg.n_train} for training ({cfg.n_val} of them validate), {cfg.n_test} held "
        f"out. Preprocessed to {cfg.size}×{cfg.size}×{depth} voxels of {cfg.spacing} mm; "
        f"SE-norm U-Net with {cfg.n_filters} filters and 3 outputs (background / GTVp / GTVn) trained "
        f"for {cfg.epochs} epochs on {_where(result)}"
        + (f" ({result.runtime.hardware()})." if result is not None and result.runtime is not None else "."),
        "",
        "Held-out scores by the HECKTOR 2025 rules (labels 0/1/2 on the original CT grids):",
        "",
        f"- GTVp mean Dice: **{_fmt(summary.get('gtvp_mean_dice', nan))}**",
        f"- GTVn aggregated Dice (DSCagg): **{_fmt(summary.get('gtvn_dsc_agg', nan))}**",
        f"- GTVn aggregated F1 of lesion detection (IoU > 0.3): **{_fmt(summary.get('gtvn_f1_agg', nan))}** "
        f"(TP {summary.get('gtvn_tp', '–')}, FP {summary.get('gtvn_fp', '–')}, FN {summary.get('gtvn_fn', '–')})",
        f"- Best validation score (mean of GTVp Dice and GTVn DSCagg, reference grid): **{_fmt(best_score)}**",
        f"- Total time: {seconds / 60:.1f} min",
        "",
        "| patient | Dice GTVp | Dice GTVn | GTVn lesions | TP | FP | FN |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return _write(out, lines, sorted(per_case))


def _write(out: Path, lines: list[str], patients: list[str]) -> Path:
    """Add the learning curves and the pictures of ``patients`` to ``lines``; write ``out/report.md``."""
    lines = [
        *lines,
        "## Learning curves",
        "",
        "![learning curves](model/fold_0/learning_curves.png)",
        "",
        "## Held-out predictions (green: GTVp, magenta: GTVn; solid: ground truth, dashed: prediction)",
        "",
        *(f"![{pid}](pictures/{pid}.png)" for pid in patients),
        "",
    ]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
