"""A prediction on the original CT grid: :class:`CasePrediction` and the back-mapping that builds it.

:func:`map_to_ct_grid` resamples the (ensemble-averaged) class probabilities from the
network's reference grid onto the CT grid, *then* thresholds (one channel) or arg-maxes
(several) them, post-processes the mask and, if asked, maps the probabilities and the
ensemble × mirroring variance back as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from hecktorseg.inference.postprocess import postprocess_mask
from hecktorseg.io import BBox, Geometry, array_to_image
from hecktorseg.preprocessing import PreprocessedCase, to_original_grid

__all__ = ["CasePrediction", "map_to_ct_grid"]


@attrs.define
class CasePrediction:
    """A prediction on the original CT grid.

    Attributes
    ----------
    patient_id
        The case.
    mask
        uint8 label map with the CT's size, spacing, origin and direction
        (binary models: 0/1; multi-class: the argmax label).
    probabilities
        float32 probability map on the CT grid (binary: foreground; multi-class:
        a vector image with one component per class), if asked for.
    uncertainty
        float32 variance of the foreground probability over ensemble members ×
        mirrorings on the CT grid (multi-class: mean over the foreground
        classes), if asked for.
    reference
        The reference grid the network saw.
    bbox
        The box used.
    box_source
        Where the box came from (``"table"``, ``"pet"``, ``"given"``).
    """

    patient_id: str
    mask: sitk.Image
    probabilities: sitk.Image | None
    uncertainty: sitk.Image | None
    reference: Geometry
    bbox: BBox
    box_source: str


def _argmax_uint8(channels: Sequence[npt.NDArray[np.floating[Any]]]) -> npt.NDArray[np.uint8]:
    """``np.argmax(np.stack(channels), 0)`` as uint8 (first maximum wins), without stacking.

    On a 512×512×200 CT grid this saves the stacked copy and the int64 index array (about 1 GB
    for three classes).
    """
    best = np.array(channels[0], dtype=np.float32, copy=True)
    mask = np.zeros(best.shape, dtype=np.uint8)
    for label, channel in enumerate(channels[1:], start=1):
        better = channel > best
        mask[better] = label
        np.maximum(best, channel, out=best)
    return mask


def map_to_ct_grid(
    pre: PreprocessedCase,
    probs: npt.NDArray[np.float32],
    variance: npt.NDArray[np.float32] | None,
    *,
    threshold: float,
    largest_component: bool,
    min_gtvn_volume: float,
    with_probabilities: bool,
) -> CasePrediction:
    """Map probabilities on ``pre.reference`` back onto ``pre.ct_geometry`` and label them.

    Each class probability (ensemble members and mirrorings already averaged per class)
    is resampled onto the CT grid with the same linear interpolation; one channel is
    thresholded at ``threshold``, several are arg-maxed (ties: the lower label).
    Post-processing (:func:`~hecktorseg.inference.postprocess_mask`) follows on
    the CT grid. ``variance`` (if given) becomes the uncertainty map (multi-class: the mean
    over the foreground classes).
    """
    target = pre.ct_geometry
    channels = [
        sitk.GetArrayFromImage(to_original_grid(probs[c], pre.reference, target, kind="probability"))
        for c in range(probs.shape[0])
    ]
    mask = (channels[0] > threshold).astype(np.uint8) if len(channels) == 1 else _argmax_uint8(channels)
    mask = postprocess_mask(
        mask,
        target.spacing,
        largest_component=largest_component,
        min_gtvn_volume_mm3=min_gtvn_volume,
    )
    prob_image: sitk.Image | None = None
    if with_probabilities:
        if len(channels) == 1:
            prob_image = array_to_image(channels[0].astype(np.float32), target)
        else:
            prob_image = sitk.Compose(*[array_to_image(c.astype(np.float32), target) for c in channels])
    unc_image: sitk.Image | None = None
    if variance is not None:
        fg = variance if variance.shape[0] == 1 else variance[1:]
        unc_image = to_original_grid(
            fg.mean(axis=0).astype(np.float32), pre.reference, target, kind="probability"
        )
    return CasePrediction(
        patient_id=pre.patient_id,
        mask=array_to_image(mask, target),
        probabilities=prob_image,
        uncertainty=unc_image,
        reference=pre.reference,
        bbox=pre.bbox,
        box_source=pre.box_source,
    )
