"""A label map to a DICOM-SEG on its CT series, written by highdicom (imported on first use)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.sr.codedict import codes

from hecktorseg._version import __version__
from hecktorseg.dicom._deps import require

__all__ = ["SEGMENTS", "labels_to_seg"]

SEGMENTS: dict[int, tuple[str, str]] = {
    1: ("GTVp", "primary tumour (gross tumour volume)"),
    2: ("GTVn", "lymph node metastases (gross tumour volume)"),
}
"""Label value → (segment label, description)."""


def labels_to_seg(labels: npt.NDArray[np.integer], ct_datasets: Sequence[pydicom.Dataset]) -> pydicom.Dataset:
    """A binary DICOM-SEG with the segments GTVp (number 1) and GTVn (number 2), empty or not.

    Parameters
    ----------
    labels
        ``(z, y, x)`` label map, one slice per instance of ``ct_datasets`` in that order.
    ct_datasets
        The CT slices (headers), in the order of the label map's slices.
    """
    hd: Any = require("highdicom")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="hecktorseg", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = []
    for number, (name, _) in SEGMENTS.items():
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=codes.SCT.Neoplasm,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    return hd.seg.Segmentation(  # type: ignore[no-any-return]
        source_images=list(ct_datasets),
        pixel_array=np.where(np.isin(labels, list(SEGMENTS)), labels, 0).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=902,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="hecktorseg",
        manufacturer_model_name="hecktorseg",
        software_versions=__version__,
        device_serial_number="none",
        series_description="hecktorseg segmentation",
    )
