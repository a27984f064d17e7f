"""The review tests' hand-made cohort (every flag and error once) and where a browser is (imported by name)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

SHAPE = (20, 36, 40)  # z, y, x
SPACING = (2.0, 2.0, 3.0)  # x, y, z (mm)
ORIGIN = (-40.0, -36.0, -30.0)
VOXEL_ML = 2.0 * 2.0 * 3.0 / 1000.0

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")


def _image(array: npt.NDArray[Any], spacing: tuple[float, ...] = SPACING) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(ORIGIN)
    return image


def _labels(*boxes: tuple[int, tuple[slice, slice, slice]]) -> npt.NDArray[np.uint8]:
    out = np.zeros(SHAPE, dtype=np.uint8)
    for value, where in boxes:
        out[where] = value
    return out


GTVP = (slice(8, 12), slice(14, 22), slice(16, 24))
NODE_A = (slice(9, 12), slice(10, 14), slice(30, 34))
NODE_B = (slice(6, 9), slice(20, 24), slice(6, 9))


class Cohort:
    """A 2022-layout dataset, its predictions and what the test expects of each case."""

    def __init__(self, root: Path) -> None:
        self.data, self.pred = root / "data", root / "pred"
        self.gt: dict[str, npt.NDArray[np.uint8]] = {}
        self.masks: dict[str, npt.NDArray[np.uint8]] = {}
        self.pet: dict[str, npt.NDArray[np.float32]] = {}
        for folder in (self.data / "imagesTr", self.data / "labelsTr", self.pred / "uncertainty"):
            folder.mkdir(parents=True)
        # a box table wider than every CT: the viewer grid is then the CT grid itself
        (self.data / "boxes.csv").write_text("PatientID,x1,x2,y1,y2,z1,z2\n", encoding="utf-8")

    def add(
        self,
        pid: str,
        gt: npt.NDArray[np.uint8] | None,
        pred: npt.NDArray[np.uint8] | None,
        *,
        seed: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        z, y, x = np.indices(SHAPE)
        body = ((x - 20) / 17.0) ** 2 + ((y - 18) / 15.0) ** 2 <= 1.0
        ct = np.where(body, 40.0, -1000.0) + rng.normal(0, 5, SHAPE)
        pet = np.where(body, 1.0, 0.05) + 0.01 * z
        pet[GTVP] = 6.0 + 0.25 * np.arange(4)[:, None, None] + 0.01 * np.arange(8)[None, :, None]
        self.pet[pid] = pet.astype(np.float32)
        sitk.WriteImage(_image(ct.astype(np.float32)), self.data / "imagesTr" / f"{pid}__CT.nii.gz")
        sitk.WriteImage(_image(self.pet[pid]), self.data / "imagesTr" / f"{pid}__PT.nii.gz")
        if gt is not None:
            self.gt[pid] = gt
            sitk.WriteImage(_image(gt), self.data / "labelsTr" / f"{pid}.nii.gz")
        if pred is not None:
            self.masks[pid] = pred
            sitk.WriteImage(_image(pred), self.pred / f"{pid}.nii.gz")
        with (self.data / "boxes.csv").open("a", encoding="utf-8") as table:
            table.write(f"{pid},-500,500,-500,500,-500,500\n")


def build_cohort(root: Path) -> Cohort:
    """Seven cases and one stray prediction, each showing one thing the review must do."""
    c = Cohort(root)
    gt1 = _labels((1, GTVP), (2, NODE_A), (2, NODE_B))
    pred1 = np.roll(gt1, 1, axis=2)  # one voxel to the right: a Dice below 1
    c.add("HM-001", gt1, pred1, seed=1)
    variance = np.zeros(SHAPE, dtype=np.float32)
    variance[4:16, 5:30, 5:35] = 0.09  # std 0.3 over far more than the prediction: models disagree
    sitk.WriteImage(_image(variance), c.pred / "uncertainty" / "HM-001.nii.gz")
    c.add("HM-002", _labels((1, GTVP)), _labels(), seed=2)  # empty prediction
    c.add("HM-003", _labels((1, GTVP)), None, seed=3)  # no prediction
    c.add("HM-004", _labels((1, GTVP)), None, seed=4)  # prediction on another grid
    sitk.WriteImage(_image(_labels((1, GTVP)), spacing=(1.0, 1.0, 1.0)), c.pred / "HM-004.nii.gz")
    lone = _labels((2, NODE_A))
    lone[15, 28, 12] = 2  # one voxel: 0.012 ml
    c.add("HM-005", None, lone, seed=5)  # no ground truth; GTVn only; a small component
    c.add("HM-006", None, _labels((1, (slice(8, 12), slice(14, 22), slice(0, 5)))), seed=6)  # at the border
    c.add("HM-007", _labels((1, GTVP)), None, seed=7)
    (c.pred / "HM-007.nii.gz").write_bytes(b"not an image")  # unreadable
    shutil.copy(c.pred / "HM-002.nii.gz", c.pred / "XX-999.nii.gz")  # a prediction without a case
    return c
