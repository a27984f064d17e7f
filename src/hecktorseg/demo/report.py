"""The demo's ``report.md``: scores, per-case tables, pictures and how the demo departs from the paper."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hecktorseg.io import atomic_write_text

if TYPE_CHECKING:
    from hecktorseg.demo.run import DemoConfig
    from hecktorseg.training import RunInfo, TrainConfig

__all__ = [
    "departures_from_paper",
    "describe_hardware",
    "describe_loss",
    "write_report",
    "write_report_nodes",
]


_LOSS_NAMES = {
    "dice_focal": "Dice + focal (γ 2)",
    "dice_ce": "Dice + cross-entropy",
    "dice": "Dice",
    "focal": "focal (γ 2)",
}


def describe_loss(ran: TrainConfig) -> str:
    """The loss of a run, in words (``ran``: its configuration as recorded, ``loss`` resolved)."""
    text = _LOSS_NAMES.get(ran.loss, ran.loss)
    if ran.loss != "focal":
        text += ", Dice over the batch" if ran.batch_dice else ", Dice per sample"
        if ran.dice_skip_absent:
            text += ", classes absent from a sample left out of its Dice term"
    return text


def describe_hardware(ran: TrainConfig, runtime: RunInfo | None = None) -> str:
    """Device, batch and precision of a run: from what it recorded having used (``runtime``,
    :class:`~hecktorseg.training.RunInfo`), else from its recorded configuration."""
    if runtime is not None:
        return runtime.hardware() + (" + channels-last" if runtime.channels_last else "")
    device = {"cpu": "CPU", "cuda": "CUDA GPU"}.get(ran.device, ran.device)
    if not ran.amp:
        precision = "fp32"
    elif ran.amp_dtype != "auto":
        precision = {"bfloat16": "bf16", "float16": "fp16"}[ran.amp_dtype] + " autocast"
    else:
        precision = ("fp16" if ran.device == "cuda" else "bf16") + " autocast"
    if ran.channels_last:
        precision += " + channels-last"
    return f"{device}, batch {ran.batch_size}, {precision}"


def departures_from_paper(
    cfg: DemoConfig,
    ran: TrainConfig | None = None,
    *,
    min_gtvn_volume: float = 0.0,
    runtime: RunInfo | None = None,
) -> list[tuple[str, str, str]]:
    """Every setting in which the demo departs from the paper: ``(setting, paper, demo)`` rows.

    The hardware row states what the training ``result`` ran on (device, batch, precision).

    The demo trains with these values (see :func:`run_demo`); they make it fit in a few minutes
    on a CPU, and they make its Dice a phantom figure, not comparable with the paper's 0.759.

    Parameters
    ----------
    cfg
        The demo's settings.
    ran
        The training configuration as the run recorded it (``config.yaml``: loss, device and
        precision as they ran); default: the configuration the demo asks for.
    min_gtvn_volume
        The GTVn post-processing the held-out predictions used (mm³; GTVp + GTVn tasks).
    runtime
        What the training run recorded having used (device, precision, batch).
    """
    from hecktorseg.demo.run import _taller, _train_config_values

    ran = ran if ran is not None else _train_config_values(cfg)
    size, spacing = cfg.grid_size, cfg.grid_spacing
    grid = f"{size}³" if not cfg.nodes else f"{size}×{size}×{_taller(size)}"
    rotation = f"p {ran.rotation_p:g}, up to {ran.max_angle:g}°" if ran.rotation_p > 0 else "none"
    rows = [
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
        ("grid", "144³ voxels of 1 mm", f"{grid} voxels of {spacing:g} mm"),
        (
            "preprocessing",
            "rounded crop, 0 HU outside the CT, PET statistics over the box",
            "hecktorseg's: world-coordinate grid, −1024 HU, PET statistics over its field of view",
        ),
        ("filters (first level)", "24", str(ran.n_filters)),
        ("learning rate", "1e-3", f"{ran.lr:g}"),
        (
            "schedule",
            "cosine warm restarts, 25-epoch cycles, 300 epochs",
            f"one cosine cycle of {ran.t_0} epochs" if ran.t_0 == ran.epochs else f"{ran.epochs} epochs",
        ),
        ("rotation", "p 0.5, 1–3 axes one after the other, 0–44° with random sign, 0 fill", rotation),
        ("mirroring", "p 0.5 over 0–3 axes (flipped at all: 0.375)", "p 0.5 over 1–3 axes (flipped: 0.5)"),
        ("hardware", "two GPUs, batch 1 each, fp32", describe_hardware(ran, runtime)),
    ]
    if cfg.nodes:
        rows += [
            (
                "task",
                "GTVt: one sigmoid output, HECKTOR 2020 rules",
                "GTVp + GTVn: 3 softmax outputs (background, GTVp, GTVn), HECKTOR 2025 rules",
            ),
            ("loss", "Dice + focal (γ 2), Dice per sample", describe_loss(ran)),
            (
                "model selection",
                "mean validation Dice",
                "mean of the GTVp Dice and the GTVn aggregated Dice on validation",
            ),
            (
                "post-processing",
                "none",
                f"GTVn components under {min_gtvn_volume:g} mm³ removed" if min_gtvn_volume > 0 else "none",
            ),
        ]
    return rows


def write_report(
    out: Path,
    cfg: DemoConfig,
    ran: TrainConfig,
    mean_dice: float,
    per_case: dict[str, float],
    best_val: float,
    seconds: float,
    runtime: RunInfo | None = None,
) -> Path:
    """Write ``out/report.md`` of the 2020 demo: scores, per-case Dice, departures from the paper, pictures.

    ``ran`` is the training configuration as the run recorded it (its ``config.yaml``),
    ``runtime`` what the run recorded having used (device, precision, batch).
    """
    departures = departures_from_paper(cfg, ran, runtime=runtime)
    lines = [
        "# hecktorseg demo report",
        "",
        f"Synthetic HECKTOR 2020-style phantoms: {cfg.n_train} for training ({cfg.n_val} of them validate), "
        f"{cfg.n_test} held out. Preprocessed to {cfg.grid_size}³ voxels of {cfg.grid_spacing:g} mm; "
        f"SE-norm U-Net with {ran.n_filters} filters trained for {ran.epochs} epochs "
        f"({describe_hardware(ran, runtime)}).",
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
        *_table(departures),
    ]
    return _write(out, lines, sorted(per_case))


def _table(departures: list[tuple[str, str, str]]) -> list[str]:
    return [
        "| setting | paper | this demo |",
        "|---|---|---|",
        *(f"| {name} | {paper} | {demo} |" for name, paper, demo in departures),
        "",
    ]


def _fmt(value: Any, *, count: bool = False) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        return str(round(value)) if count else f"{value:.3f}"
    return str(value)


def write_report_nodes(
    out: Path,
    cfg: DemoConfig,
    ran: TrainConfig,
    summary: dict[str, Any],
    per_case: dict[str, dict[str, float]],
    best_score: float,
    seconds: float,
    *,
    min_gtvn_volume: float = 0.0,
    runtime: RunInfo | None = None,
) -> Path:
    """Write ``out/report.md`` of the GTVp + GTVn demo.

    ``ran`` is the training configuration as the run recorded it (its ``config.yaml``);
    ``min_gtvn_volume`` the GTVn post-processing of the held-out predictions (mm³).
    A patient without lymph nodes has no GTVn Dice ("–"): an empty prediction there is no
    skill, and a false positive there shows in the FP column and in the aggregated scores.
    """
    from hecktorseg.demo.run import _taller

    columns = ("dice_GTVp", "dice_GTVn", "gtvn_lesions_gt", "gtvn_tp", "gtvn_fp", "gtvn_fn")
    rows = []
    for pid, m in sorted(per_case.items()):
        values = dict(m)
        if not values.get("gtvn_lesions_gt"):
            values["dice_GTVn"] = float("nan")
        rows.append(
            f"| {pid} | "
            + " | ".join(_fmt(values.get(c, float("nan")), count=c.startswith("gtvn_")) for c in columns)
            + " |"
        )
    nan = float("nan")
    size = cfg.grid_size
    lines = [
        f"# hecktorseg demo report: HECKTOR {cfg.edition} (GTVp + GTVn)",
        "",
        f"Synthetic phantoms in the HECKTOR {cfg.edition} layout (a primary tumour and 0–4 FDG-avid "
        f"lymph nodes each): {cfg.n_train} for training ({cfg.n_val} of them validate), {cfg.n_test} held "
        f"out. Preprocessed to {size}×{size}×{_taller(size)} voxels of {cfg.grid_spacing:g} mm; "
        f"SE-norm U-Net with {ran.n_filters} filters and 3 outputs (background / GTVp / GTVn) trained "
        f"for {ran.epochs} epochs ({describe_hardware(ran, runtime)}; loss: {describe_loss(ran)}).",
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
        "## GTVn detections per patient",
        "",
        "TP: predicted node components that overlap a true node with IoU > 0.3; FP: predicted "
        "components matching none; FN: true nodes found by none. Dice GTVn is given only where the "
        "patient has nodes (–: none there).",
        "",
        "| patient | Dice GTVp | Dice GTVn | GTVn lesions | TP | FP | FN |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "## How this demo departs from the paper",
        "",
        "These scores are measured on synthetic phantoms with a small and short recipe; they are not "
        "comparable with real-data results.",
        "",
        *_table(departures_from_paper(cfg, ran, min_gtvn_volume=min_gtvn_volume, runtime=runtime)),
    ]
    return _write(out, lines, sorted(per_case))


def _write(out: Path, lines: list[str], patients: list[str]) -> Path:
    """Add the learning curves and the pictures of ``patients`` to ``lines``; write ``out/report.md``."""
    lines = [
        *lines,
        "[Review every held-out case](review/index.html): the table with flags, and each case's PET/CT "
        "with the outlines (opens offline in a browser).",
        "",
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
