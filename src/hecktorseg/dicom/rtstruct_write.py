"""A label map to an RTSTRUCT on its CT series, written with pydicom.

Contours are traced at the 0.5 level of each label's mask on every CT slice with
``contourpy`` (the contour generator matplotlib uses; no new dependency), so every voxel
centre of the mask lies inside its contour and every other outside. Holes become inner
contours (readers apply the even-odd rule). ROIs are named ``GTVp`` and ``GTVn``, or
``GTVn_1``, ``GTVn_2``, … (one per connected node) with ``split_nodes``.

Why our own writer: highdicom writes DICOM-SEG but not RTSTRUCT; rt-utils writes RTSTRUCT but
traces contours with OpenCV (a large extra dependency) and is maintained only occasionally.
The RT Structure Set module is small; writing it on pydicom keeps the UIDs, references and
geometry under our control, and ``dciodvfy`` checks the result in the tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pydicom
from contourpy import LineType, contour_generator
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from hecktorseg._version import __version__
from hecktorseg.io import Geometry

__all__ = ["ROI_COLOURS", "RTSTRUCT_SOP_CLASS", "labels_to_rtstruct", "mask_contours", "roi_masks"]

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
"""SOP Class UID of an RT Structure Set (DICOM PS3.4), the class of the files written here."""
DETACHED_STUDY_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1420.1"
ROI_COLOURS: dict[int, tuple[int, int, int]] = {1: (255, 0, 0), 2: (0, 160, 255)}
"""Display colour per label (GTVp red, GTVn blue)."""
_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def roi_masks(
    labels: npt.NDArray[np.integer], *, split_nodes: bool = False
) -> list[tuple[str, int, npt.NDArray[np.bool_]]]:
    """(ROI name, label, mask): GTVp and GTVn, even when empty (or GTVn_1, GTVn_2, … one per node)."""
    out: list[tuple[str, int, npt.NDArray[np.bool_]]] = [("GTVp", 1, labels == 1)]
    nodes = labels == 2
    parts, n = ndimage.label(nodes, structure=np.ones((3, 3, 3), dtype=bool)) if split_nodes else (None, 0)
    if n > 0:
        out += [(f"GTVn_{i}", 2, np.asarray(parts == i, dtype=bool)) for i in range(1, n + 1)]
    else:
        out.append(("GTVn", 2, nodes))
    return out


def mask_contours(mask: npt.NDArray[np.bool_]) -> list[npt.NDArray[np.float64]]:
    """Closed contours (x = column, y = row; open end, last point ≠ first) of a 2-D mask at 0.5."""
    padded = np.pad(mask.astype(np.float64), 1)
    generator = contour_generator(z=padded, line_type=LineType.Separate, corner_mask=False)
    lines = []
    for line in generator.lines(0.5):
        points = np.asarray(line, dtype=np.float64) - 1.0
        if len(points) > 1 and np.allclose(points[0], points[-1]):
            points = points[:-1]
        if len(points) >= 3:
            lines.append(points)
    return lines


def _ds(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def labels_to_rtstruct(
    labels: npt.NDArray[np.integer],
    geometry: Geometry,
    ct_datasets: Sequence[pydicom.Dataset],
    *,
    split_nodes: bool = False,
    series_description: str = "hecktorseg contours",
) -> pydicom.FileDataset:
    """An RTSTRUCT dataset for a ``(z, y, x)`` label map on the grid of a CT series.

    Parameters
    ----------
    labels
        0 background, 1 GTVp, 2 GTVn, on the CT grid (one slice per instance of ``ct_datasets``).
    geometry
        The CT grid.
    ct_datasets
        The CT slices' headers, in the order of the label map's slices.
    split_nodes
        One ROI per connected node (``GTVn_1``, ``GTVn_2``, …) instead of one ``GTVn``.
    series_description
        SeriesDescription of the new series.
    """
    first = ct_datasets[0]
    now = dt.datetime.now()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RTSTRUCT_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    meta.ImplementationVersionName = f"HECKTORSEG{__version__}"[:16]
    ds = pydicom.FileDataset("", pydicom.Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = RTSTRUCT_SOP_CLASS
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    for keyword in _PATIENT_STUDY:
        setattr(ds, keyword, first.get(keyword, ""))
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 901
    ds.SeriesDescription = series_description
    ds.SeriesDate, ds.SeriesTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.OperatorsName = ""
    ds.InstanceNumber = 1
    ds.Manufacturer = "hecktorseg"
    ds.ManufacturerModelName = "hecktorseg"
    ds.SoftwareVersions = __version__
    ds.StructureSetLabel = "hecktorseg"
    ds.StructureSetName = "GTVp and GTVn"
    ds.StructureSetDate, ds.StructureSetTime = ds.InstanceCreationDate, ds.InstanceCreationTime
    ds.ApprovalStatus = "UNAPPROVED"
    frame = str(first.FrameOfReferenceUID)
    ds.FrameOfReferenceUID = frame
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")

    def image_ref(slice_ds: pydicom.Dataset) -> pydicom.Dataset:
        ref = pydicom.Dataset()
        ref.ReferencedSOPClassUID = slice_ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = slice_ds.SOPInstanceUID
        return ref

    series_ref = pydicom.Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ContourImageSequence = DicomSequence([image_ref(s) for s in ct_datasets])
    study_ref = pydicom.Dataset()
    study_ref.ReferencedSOPClassUID = DETACHED_STUDY_SOP_CLASS
    study_ref.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study_ref.RTReferencedSeriesSequence = DicomSequence([series_ref])
    frame_ref = pydicom.Dataset()
    frame_ref.FrameOfReferenceUID = frame
    frame_ref.RTReferencedStudySequence = DicomSequence([study_ref])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame_ref])

    to_world = geometry.direction_matrix * np.asarray(geometry.spacing)[None, :]
    origin = np.asarray(geometry.origin)
    rois, contours, observations = [], [], []
    for number, (name, label, mask) in enumerate(roi_masks(labels, split_nodes=split_nodes), start=1):
        roi = pydicom.Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame
        roi.ROIName = name
        roi.ROIGenerationAlgorithm = "AUTOMATIC"
        rois.append(roi)
        items: list[pydicom.Dataset] = []
        for k in np.flatnonzero(mask.any(axis=(1, 2))):
            for line in mask_contours(mask[k]):
                index = np.column_stack([line, np.full(len(line), float(k))])
                world = index @ to_world.T + origin
                item = pydicom.Dataset()
                item.ContourImageSequence = DicomSequence([image_ref(ct_datasets[int(k)])])
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(world)
                item.ContourNumber = len(items) + 1
                item.ContourData = [_ds(v) for v in world.ravel()]
                items.append(item)
        contour = pydicom.Dataset()
        contour.ReferencedROINumber = number
        contour.ROIDisplayColor = list(ROI_COLOURS.get(label, (255, 255, 0)))
        if items:  # an empty ROI has no ContourSequence (type 3, but 1-n items when present)
            contour.ContourSequence = DicomSequence(items)
        contours.append(contour)
        observation = pydicom.Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = "GTV"
        observation.ROIInterpreter = ""
        observations.append(observation)
    ds.StructureSetROISequence = DicomSequence(rois)
    ds.ROIContourSequence = DicomSequence(contours)
    ds.RTROIObservationsSequence = DicomSequence(observations)
    return ds
