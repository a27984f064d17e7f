"""Labels → DICOM-SEG (highdicom) → labels: exact, and valid for dciodvfy."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
from dicom_helpers import dciodvfy_errors

from hecktorseg.data import Phantom
from hecktorseg.dicom import (
    StudyStyle,
    index_dicom,
    labels_to_seg,
    load_series,
    select_series,
    write_dicom_study,
)
from hecktorseg.io import image_to_array


def test_seg_round_trip_is_exact(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    phantom = phantoms["HN-A"]
    write_dicom_study(tmp_path, "P", phantom.ct, phantom.pet, None, style=StudyStyle(distractors=False))
    ct = load_series(select_series("P", index_dicom(tmp_path).series["P"]).ct)
    labels = np.asarray(image_to_array(phantom.label)).astype(np.uint8)
    seg = labels_to_seg(labels, ct.datasets)
    path = tmp_path / "seg.dcm"
    seg.save_as(path)
    back = hd.seg.segread(path)
    assert [str(d.SegmentLabel) for d in back.SegmentSequence] == ["GTVp", "GTVn"]
    uids = [str(d.SOPInstanceUID) for d in ct.datasets]
    pixels = back.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(pixels, labels)
    assert str(back.ReferencedSeriesSequence[0].SeriesInstanceUID) == str(ct.datasets[0].SeriesInstanceUID)
    assert dciodvfy_errors(path) == []
