"""Mask → RTSTRUCT → mask: the exporter (contourpy) against the even-odd point-in-polygon reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import dciodvfy_errors, dice

from hecktorseg.data import Phantom
from hecktorseg.dicom import (
    StudyStyle,
    fill_polygon,
    index_dicom,
    labels_to_rtstruct,
    load_series,
    rtstruct_to_labels,
    select_series,
    write_dicom_study,
)
from hecktorseg.io import Geometry, image_to_array


def test_fill_polygon_square_by_hand() -> None:
    # a square from (1.5, 1.5) to (4.5, 3.5): columns 2..4 and rows 2..3 have their centres inside
    mask = fill_polygon([1.5, 4.5, 4.5, 1.5], [1.5, 1.5, 3.5, 3.5], (6, 7))
    expected = np.zeros((6, 7), dtype=bool)
    expected[2:4, 2:5] = True
    np.testing.assert_array_equal(mask, expected)


def test_fill_polygon_triangle_counts_centres_only() -> None:
    # right triangle (0,0),(10,0),(0,10): centre (x, y) inside iff x + y < 10 (none lies on the edge here)
    mask = fill_polygon([-0.5, 9.5, -0.5], [-0.5, -0.5, 9.5], (12, 12))
    ys, xs = np.mgrid[0:12, 0:12]
    np.testing.assert_array_equal(mask, (xs + ys < 9) & (xs >= 0) & (ys >= 0))


def _study(tmp_path: Path, phantom: Phantom, labels: np.ndarray | None = None):  # type: ignore[no-untyped-def]
    write_dicom_study(tmp_path, "P", phantom.ct, phantom.pet, None, style=StudyStyle(distractors=False))
    index = index_dicom(tmp_path)
    ct = load_series(select_series("P", index.series["P"]).ct)
    return ct, Geometry.from_image(ct.image)


def test_round_trip_on_phantoms_dice(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    phantom = phantoms["HN-A"]
    ct, geometry = _study(tmp_path, phantom)
    labels = np.asarray(image_to_array(phantom.label)).astype(np.uint8)
    assert {1, 2} <= set(np.unique(labels).tolist())
    ds = labels_to_rtstruct(labels, geometry, ct.datasets)
    path = tmp_path / "rs.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    back, mapping = rtstruct_to_labels(pydicom.dcmread(path), geometry)
    assert mapping.labels == {"GTVp": 1, "GTVn": 2}
    for value in (1, 2):
        assert dice(labels == value, back == value) >= 0.97, value
    assert dciodvfy_errors(path) == []


def test_hole_and_split_nodes(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    ct, geometry = _study(tmp_path, phantoms["HN-B"])
    labels = np.zeros(geometry.shape_zyx, dtype=np.uint8)
    labels[5:9, 10:30, 10:30] = 1
    labels[5:9, 16:24, 16:24] = 0  # a hole: an inner contour
    labels[12:14, 5:9, 30:34] = 2
    labels[12:14, 30:34, 30:34] = 2  # a second, separate node
    ds = labels_to_rtstruct(labels, geometry, ct.datasets, split_nodes=True)
    names = [str(r.ROIName) for r in ds.StructureSetROISequence]
    assert names == ["GTVp", "GTVn_1", "GTVn_2"]
    back, _ = rtstruct_to_labels(ds, geometry)
    np.testing.assert_array_equal(back, labels)  # axis-aligned shapes come back exactly
    # each contour references the CT slice it lies on
    by_uid = {str(d.SOPInstanceUID): k for k, d in enumerate(ct.datasets)}
    for roi in ds.ROIContourSequence:
        for contour in roi.ContourSequence:
            z = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3) @ geometry.direction_matrix[:, 2]
            k = by_uid[str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)]
            slice_z = (
                np.asarray(ct.datasets[k].ImagePositionPatient, dtype=float) @ geometry.direction_matrix[:, 2]
            )
            assert np.allclose(z, slice_z, atol=1e-3)


def test_overlap_counts_as_gtvp_with_a_warning(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    ct, geometry = _study(tmp_path, phantoms["HN-B"])
    p = np.zeros(geometry.shape_zyx, dtype=np.uint8)
    p[5:8, 10:20, 10:20] = 1
    n = np.zeros_like(p)
    n[5:8, 15:25, 15:25] = 2
    ds_p = labels_to_rtstruct(p, geometry, ct.datasets)
    ds_n = labels_to_rtstruct(n, geometry, ct.datasets)
    # merge: the nodes' ROI contours into the first RTSTRUCT under a new number
    roi = ds_n.StructureSetROISequence[1]
    roi.ROINumber = 7
    contour = ds_n.ROIContourSequence[1]
    contour.ReferencedROINumber = 7
    ds_p.StructureSetROISequence.append(roi)
    ds_p.ROIContourSequence.append(contour)
    back, mapping = rtstruct_to_labels(ds_p, geometry)
    assert np.all(back[p == 1] == 1)
    assert np.count_nonzero(back == 2) == np.count_nonzero((n == 2) & (p == 0))
    assert any("both GTVp and GTVn" in w for w in mapping.warnings)


def test_contour_off_the_ct_slices_is_an_error(tmp_path: Path, phantoms: dict[str, Phantom]) -> None:
    from hecktorseg.errors import DataError

    ct, geometry = _study(tmp_path, phantoms["HN-B"])
    labels = np.zeros(geometry.shape_zyx, dtype=np.uint8)
    labels[5, 10:20, 10:20] = 1
    ds = labels_to_rtstruct(labels, geometry, ct.datasets)
    item = ds.ROIContourSequence[0].ContourSequence[0]
    data = np.asarray(item.ContourData, dtype=float).reshape(-1, 3)
    data += geometry.direction_matrix[:, 2] * geometry.spacing[2] * 0.5  # halfway between two slices
    item.ContourData = [f"{v:.4f}" for v in data.ravel()]
    with pytest.raises(DataError, match="does not lie on a CT slice"):
        rtstruct_to_labels(ds, geometry)
