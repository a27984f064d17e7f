"""Draw the pictures of the "Preprocessing explained" page from a synthetic phantom.

Run by ``docs/conf.py`` at build time (or by hand: ``python docs/_scripts/preprocessing_figures.py OUT``).
Every panel is a coronal slice (x across, z up) through the tumour, drawn in world
millimetres so that grids with different spacings and origins line up as they do in space.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import SimpleITK as sitk
from matplotlib.patches import Rectangle

FIGURES = ("grids.png", "reference.png", "roundtrip.png")


def _coronal(image: sitk.Image, y_mm: float) -> tuple[np.ndarray, list[float]]:
    """The coronal slice of ``image`` nearest to world ``y_mm`` and its world extent (x0, x1, z0, z1)."""
    array = sitk.GetArrayFromImage(image)  # (z, y, x)
    ox, oy, oz = image.GetOrigin()
    sx, sy, sz = image.GetSpacing()
    nx, ny, nz = image.GetSize()
    j = int(np.clip(round((y_mm - oy) / sy), 0, ny - 1))
    extent = [ox - sx / 2, ox + (nx - 0.5) * sx, oz - sz / 2, oz + (nz - 0.5) * sz]
    return array[:, j, :], extent


def _frame(ax: Any, image: sitk.Image, colour: str, label: str) -> None:
    """Outline an image's field of view in the (x, z) plane."""
    ox, _, oz = image.GetOrigin()
    sx, _, sz = image.GetSpacing()
    nx, _, nz = image.GetSize()
    ax.add_patch(
        Rectangle(
            (ox - sx / 2, oz - sz / 2), nx * sx, nz * sz, fill=False, ec=colour, lw=1.5, ls="--", label=label
        )
    )


def _box(ax: Any, bbox: Any) -> None:
    ax.add_patch(
        Rectangle(
            (bbox.x1, bbox.z1),
            bbox.x2 - bbox.x1,
            bbox.z2 - bbox.z1,
            fill=False,
            ec="yellow",
            lw=2,
            label="box",
        )
    )


def _finish(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (mm)", fontsize=8)
    ax.set_ylabel("z (mm)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_aspect("equal")


def main(out_dir: Path) -> list[Path]:
    """Write the figures into ``out_dir`` (skipped when they are already there) and return their paths."""
    out_dir = Path(out_dir)
    paths = [out_dir / name for name in FIGURES]
    if all(p.exists() for p in paths):
        return paths
    out_dir.mkdir(parents=True, exist_ok=True)

    from hecktorseg.data.synthetic import make_phantom
    from hecktorseg.preprocessing import PreprocessConfig, preprocess_images, to_original_grid

    phantom = make_phantom("CHGJ007", seed=3)
    config = PreprocessConfig()
    pre = preprocess_images(phantom.ct, phantom.pet, phantom.label, config, bbox=phantom.bbox)
    y_mm = phantom.tumour_center_mm[1]

    # 1. The original grids: CT and PET cover different regions with different voxels.
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2), constrained_layout=True)
    ct, ct_ext = _coronal(phantom.ct, y_mm)
    pet, pet_ext = _coronal(phantom.pet, y_mm)
    axes[0].imshow(
        ct, extent=ct_ext, origin="lower", cmap="gray", vmin=-300, vmax=800, interpolation="nearest"
    )
    axes[1].imshow(
        pet, extent=pet_ext, origin="lower", cmap="magma", vmin=0, vmax=12, interpolation="nearest"
    )
    for ax in axes:
        _frame(ax, phantom.ct, "deepskyblue", "CT field of view")
        _frame(ax, phantom.pet, "orange", "PET field of view")
        _box(ax, phantom.bbox)
        ax.set_xlim(min(ct_ext[0], pet_ext[0]) - 10, max(ct_ext[1], pet_ext[1]) + 10)
        ax.set_ylim(min(ct_ext[2], pet_ext[2]) - 10, max(ct_ext[3], pet_ext[3]) + 10)
    sx, _, sz = phantom.ct.GetSpacing()
    px, _, pz = phantom.pet.GetSpacing()
    _finish(axes[0], f"CT ({sx:.2f}×{sz:.2f} mm voxels in x×z)")
    _finish(axes[1], f"PET ({px:.1f}×{pz:.1f} mm voxels in x×z)")
    axes[1].legend(loc="lower right", fontsize=7, framealpha=0.8)
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    # 2. The reference grid: one 1 mm grid, starting at the box corner, shared by CT, PET and label.
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6), constrained_layout=True)
    rct, ext = _coronal(pre.ct, y_mm)
    rpet, _ = _coronal(pre.pet, y_mm)
    assert pre.label is not None
    rlab, _ = _coronal(pre.label, y_mm)
    axes[0].imshow(rct, extent=ext, origin="lower", cmap="gray", vmin=-300, vmax=800)
    axes[1].imshow(rpet, extent=ext, origin="lower", cmap="magma", vmin=0, vmax=12)
    axes[2].imshow(rct, extent=ext, origin="lower", cmap="gray", vmin=-300, vmax=800)
    axes[2].imshow(rpet, extent=ext, origin="lower", cmap="magma", vmin=0, vmax=12, alpha=0.45)
    axes[2].contour(rlab == 1, levels=[0.5], colors="lime", linewidths=1.2, extent=ext, origin="lower")
    _finish(axes[0], "CT on the reference grid")
    _finish(axes[1], "PET on the same grid")
    _finish(axes[2], "fused, with the GTVt (green)")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)

    # 3. Round trip: the label mapped back from the reference grid onto the original CT grid.
    back = to_original_grid(pre.label, pre.reference, pre.ct_geometry, kind="label")
    orig, ct_ext = _coronal(phantom.label, y_mm)
    mapped, _ = _coronal(back, y_mm)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), constrained_layout=True)
    ax.imshow(ct, extent=ct_ext, origin="lower", cmap="gray", vmin=-300, vmax=800, interpolation="nearest")
    ax.contour(orig == 1, levels=[0.5], colors="lime", linewidths=2.0, extent=ct_ext, origin="lower")
    ax.contour(mapped == 1, levels=[0.5], colors="red", linewidths=1.0, extent=ct_ext, origin="lower")
    _box(ax, phantom.bbox)
    cx, _, cz = phantom.tumour_center_mm
    ax.set_xlim(cx - 40, cx + 40)
    ax.set_ylim(cz - 40, cz + 40)
    _finish(ax, "original GTVt (green) vs. mapped back (red)")
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    return paths


if __name__ == "__main__":
    for path in main(Path(sys.argv[1] if len(sys.argv) > 1 else "figures")):
        print(path)
