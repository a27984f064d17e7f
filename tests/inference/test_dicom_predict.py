"""``predict_dicom``: a DICOM folder in, NIfTI masks and RTSTRUCT / DICOM-SEG files out that read back."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pydicom")
pytest.importorskip("highdicom")

import highdicom as hd
import pydicom
from dicom_helpers import dciodvfy_errors, dice

from hecktorseg.data import SyntheticConfig, write_synthetic_dicom
from hecktorseg.dicom import index_dicom, load_series, rtstruct_to_labels, select_series
from hecktorseg.errors import ConfigError
from hecktorseg.inference import Predictor, looks_like_dicom, predict_dicom
from hecktorseg.io import Geometry, image_to_array, read_image


@pytest.fixture
def predictor(toys: SimpleNamespace) -> Predictor:
    # toy segmenter: foreground where the CT is above 0 HU (the phantom's bone and tumour)
    return Predictor(
        [toys.CTThreshold(n_classes=3)],
        preprocess=toys.SMALL_CONFIG,
        device="cpu",
        backend="torch",
        precision="fp32",
    )


def test_predict_dicom_writes_rtstruct_and_seg_that_read_back(tmp_path: Path, predictor: Predictor) -> None:
    src = tmp_path / "src"
    write_synthetic_dicom(src, n_cases=1, config=SyntheticConfig.tiny())
    assert looks_like_dicom(src) and not looks_like_dicom(tmp_path / "nothing")
    out = tmp_path / "out"
    report = predict_dicom(src, out, predictor, output_format="rtstruct")
    assert report.ok and len(report.done) == 1, report.failed
    (pid,) = report.done
    mask = np.asarray(image_to_array(read_image(out / f"{pid}.nii.gz")))
    assert np.any(mask == 1)
    index = index_dicom(src)
    ct = load_series(select_series(pid, index.series[pid]).ct)
    rt = out / f"{pid}_RTSTRUCT.dcm"
    back, _ = rtstruct_to_labels(pydicom.dcmread(rt), Geometry.from_image(ct.image))
    assert dice(mask == 1, back == 1) >= 0.97
    assert dciodvfy_errors(rt) == []
    seg_report = predict_dicom(src, out, predictor, output_format="seg")
    assert seg_report.ok
    seg = hd.seg.segread(out / f"{pid}_SEG.dcm")
    uids = [str(d.SOPInstanceUID) for d in ct.datasets]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    np.testing.assert_array_equal(pixels, mask)


def test_unknown_output_format(tmp_path: Path, predictor: Predictor) -> None:
    with pytest.raises(ConfigError, match="output_format"):
        predict_dicom(tmp_path, tmp_path / "o", predictor, output_format="png")
