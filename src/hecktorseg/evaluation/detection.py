"""Lesion detection on label maps: connected components, IoU matching and the aggregated F1.

The HECKTOR 2025 rules score the lymph nodes (GTVn, label 2) also as a
*detection* task:

- a **lesion** is a 26-connected component of the label's voxels (voxels that
  share a face, an edge or only a corner belong to the same lesion), in the
  ground truth and in the prediction alike;
- a ground-truth lesion is **detected** when a predicted lesion overlaps it with
  an intersection over union ``IoU = |G ∩ P| / |G ∪ P|`` strictly greater than
  :data:`IOU_THRESHOLD` (0.3);
- each predicted lesion detects at most one ground-truth lesion and each
  ground-truth lesion is detected at most once. The pairs are chosen by an
  **optimal assignment** (:func:`scipy.optimize.linear_sum_assignment`) over the
  pairs with ``IoU > 0.3``: first the largest possible number of matched pairs,
  then, among those, the largest sum of IoU. (A pair with IoU above 0.5 can
  never compete with another, so the assignment only matters for the rare
  lesions that overlap two others between 0.3 and 0.5.)
- TP = matched pairs, FP = predicted lesions left unmatched, FN = ground-truth
  lesions left unmatched; over a test set they are summed and
  ``F1agg = 2 TP / (2 TP + FP + FN)`` (:func:`aggregated_f1`).

All functions work on NumPy arrays of one case (the prediction on the ground
truth's grid); IoU is a ratio of voxel counts, the same in mm³ on one grid.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

__all__ = [
    "IOU_THRESHOLD",
    "LesionMatch",
    "aggregated_f1",
    "label_lesions",
    "lesion_iou",
    "match_lesions",
]

IOU_THRESHOLD = 0.3
"""A ground-truth lesion is detected by a predicted one with IoU strictly above this."""

_FULL_3X3X3 = np.ones((3, 3, 3), dtype=bool)


def label_lesions(mask: npt.ArrayLike) -> tuple[npt.NDArray[np.int32], int]:
    """The 26-connected components of a 3-D binary mask.

    Parameters
    ----------
    mask
        3-D array; non-zero voxels are lesion voxels.

    Returns
    -------
    tuple
        ``(labels, n)``: an int32 array of the mask's shape with the lesions
        numbered ``1..n`` (0 elsewhere), and ``n``.
    """
    binary = np.asarray(mask) != 0
    if binary.ndim != 3:
        raise ValueError(f"label_lesions expects a 3-D mask, got {binary.ndim} dimensions")
    labels, n = ndimage.label(binary, structure=_FULL_3X3X3, output=np.int32)
    return labels, int(n)


def lesion_iou(
    gt_labels: npt.NDArray[np.integer[Any]],
    n_gt: int,
    pred_labels: npt.NDArray[np.integer[Any]],
    n_pred: int,
) -> npt.NDArray[np.float64]:
    """IoU of every (ground-truth lesion, predicted lesion) pair.

    Parameters
    ----------
    gt_labels, pred_labels
        Lesion numberings of the same shape (as from :func:`label_lesions`).
    n_gt, n_pred
        The numbers of lesions in each.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_gt, n_pred)``; entry ``[i, j]`` is the IoU of ground-truth
        lesion ``i + 1`` and predicted lesion ``j + 1`` (0 when disjoint).
    """
    if gt_labels.shape != pred_labels.shape:
        raise ValueError(f"shapes differ: {gt_labels.shape} vs {pred_labels.shape}")
    if n_gt == 0 or n_pred == 0:
        return np.zeros((n_gt, n_pred), dtype=np.float64)
    g = gt_labels.ravel().astype(np.int64)
    p = pred_labels.ravel().astype(np.int64)
    both = (g > 0) & (p > 0)
    pair_index = g[both] * (n_pred + 1) + p[both]
    inter = np.bincount(pair_index, minlength=(n_gt + 1) * (n_pred + 1)).reshape(n_gt + 1, n_pred + 1)
    size_g = np.bincount(g, minlength=n_gt + 1)
    size_p = np.bincount(p, minlength=n_pred + 1)
    inter = inter[1:, 1:].astype(np.float64)
    union = size_g[1:, None] + size_p[None, 1:] - inter
    iou: npt.NDArray[np.float64] = inter / union
    return iou


@attrs.frozen
class LesionMatch:
    """The lesion detection result of one case.

    Attributes
    ----------
    n_gt, n_pred
        Lesions in the ground truth and in the prediction.
    pairs
        The matched pairs ``(gt_lesion, pred_lesion, iou)`` (1-based lesion
        numbers of :func:`label_lesions`), sorted by ground-truth lesion.
    """

    n_gt: int
    n_pred: int
    pairs: tuple[tuple[int, int, float], ...] = ()

    @property
    def tp(self) -> int:
        """Detected ground-truth lesions (= matched pairs)."""
        return len(self.pairs)

    @property
    def fp(self) -> int:
        """Predicted lesions that detect no ground-truth lesion."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """Ground-truth lesions that no predicted lesion detects."""
        return self.n_gt - self.tp

    @property
    def f1(self) -> float:
        """``2 TP / (2 TP + FP + FN)`` of this case alone; NaN when it has no lesion in either mask."""
        denominator = 2 * self.tp + self.fp + self.fn
        return 2.0 * self.tp / denominator if denominator > 0 else math.nan


def _crop_to_union(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> tuple[slice, ...] | None:
    """The bounding box of ``a | b`` (no lesion leaves it), or ``None`` when both are empty."""
    union = a | b
    window = []
    for axis in range(union.ndim):
        others = tuple(i for i in range(union.ndim) if i != axis)
        hits = np.flatnonzero(union.any(axis=others))
        if hits.size == 0:
            return None
        window.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(window)


def match_lesions(
    prediction: npt.ArrayLike, ground_truth: npt.ArrayLike, *, threshold: float = IOU_THRESHOLD
) -> LesionMatch:
    """Match predicted to ground-truth lesions (26-connected components) by IoU.

    Parameters
    ----------
    prediction, ground_truth
        Binary 3-D masks of the same shape (non-zero = lesion voxel), e.g.
        ``label_map == 2``.
    threshold
        A pair counts only with ``IoU > threshold`` (strictly).

    Returns
    -------
    LesionMatch
        Lesion counts and the matched pairs: the largest set of one-to-one
        pairs with ``IoU > threshold`` (optimal assignment), ties between sets of
        the same size broken by the larger IoU sum.
    """
    pred = np.asarray(prediction) != 0
    gt = np.asarray(ground_truth) != 0
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    window = _crop_to_union(pred, gt)
    if window is None:
        return LesionMatch(0, 0)
    gt_labels, n_gt = label_lesions(gt[window])
    pred_labels, n_pred = label_lesions(pred[window])
    iou = lesion_iou(gt_labels, n_gt, pred_labels, n_pred)
    eligible = iou > threshold
    if not eligible.any():
        return LesionMatch(n_gt, n_pred)
    # any extra matched pair outweighs every possible IoU sum of a smaller matching
    weight = np.where(eligible, (min(n_gt, n_pred) + 1.0) + iou, 0.0)
    rows, cols = optimize.linear_sum_assignment(weight, maximize=True)
    pairs = tuple(
        (int(r) + 1, int(c) + 1, float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if eligible[r, c]
    )
    return LesionMatch(n_gt, n_pred, tuple(sorted(pairs)))


def aggregated_f1(tp: int, fp: int, fn: int) -> float:
    """``F1agg = 2 TP / (2 TP + FP + FN)`` from counts summed over a test set.

    When the denominator is 0 — no lesion in any ground truth and none
    predicted — nothing was missed and nothing was falsely found, and the
    score is 1.0 (the same convention as the 2025 summary's other scores on
    an empty set, see :mod:`hecktorseg.evaluation.scoring_2025`).
    """
    if min(tp, fp, fn) < 0:
        raise ValueError(f"lesion counts must not be negative: tp={tp}, fp={fp}, fn={fn}")
    denominator = 2 * tp + fp + fn
    return 2.0 * tp / denominator if denominator > 0 else 1.0
