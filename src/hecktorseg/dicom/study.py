"""Writing a PET/CT study as DICOM files with vendor-like headers (for ``synth --format dicom`` and tests).

The CT is stored as int16 with RescaleIntercept -1024; the PET in the units of
:attr:`StudyStyle.units` with its own RescaleSlope per slice (as scanners do), decayed per
:attr:`StudyStyle.decay_correction`, with the injection before midnight and the scan after it
by default. A label map becomes an RTSTRUCT on the CT. Optional distractors: a localizer and a
PET without attenuation correction. Files are written flat without suffixes (as many PACS
exports) or as ``<PID>/<series>/<n>.dcm``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import numpy.typing as npt
import pydicom
import SimpleITK as sitk
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from hecktorseg.dicom.rtstruct_write import IMPLEMENTATION_UID, labels_to_rtstruct
from hecktorseg.io import Geometry, image_to_array
from hecktorseg.typing import PathLike

__all__ = ["CT_SOP_CLASS", "PET_SOP_CLASS", "StudyStyle", "write_dicom_study"]

CT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.2"
"""SOP Class UID of a CT Image (DICOM PS3.4), the class of the CT slices written."""
PET_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.128"
"""SOP Class UID of a PET Image (DICOM PS3.4), the class of the PET slices written."""
F18_HALF_LIFE_S = 6586.2


@attrs.frozen
class StudyStyle:
    """How :func:`write_dicom_study` writes the headers (the SUV inputs among them).

    Attributes
    ----------
    manufacturer
        Manufacturer (0008,0070).
    weight_kg, dose_bq, half_life_s
        PatientWeight, RadionuclideTotalDose, RadionuclideHalfLife.
    injection, scan
        Injection start and series start (default: 23:20 and 00:25:30 the next day).
    decay_correction
        ``START`` (decayed to the series start) or ``ADMIN`` (to the injection).
    units
        ``BQML``, ``GML`` (SUV) or ``CNTS`` (with the Philips factor (7053,1000)).
    start_datetime
        Write RadiopharmaceuticalStartDateTime (else only RadiopharmaceuticalStartTime).
    philips_factor
        Write the Philips private SUV factor (7053,1000).
    shuffle_instances
        Give the slices shuffled InstanceNumbers (the position alone orders them).
    distractors
        Also write a localizer and a non-attenuation-corrected PET.
    flat
        All files in one folder with hashed names and no suffix.
    roi_names
        Label → ROI name in the RTSTRUCT (clinical spellings).
    """

    manufacturer: str = "SIEMENS"
    weight_kg: float = 72.5
    dose_bq: float = 3.1e8
    half_life_s: float = F18_HALF_LIFE_S
    injection: dt.datetime = dt.datetime(2024, 3, 1, 23, 20, 0)
    scan: dt.datetime = dt.datetime(2024, 3, 2, 0, 25, 30)
    decay_correction: Literal["START", "ADMIN"] = "START"
    units: Literal["BQML", "GML", "CNTS"] = "BQML"
    start_datetime: bool = True
    philips_factor: bool = False
    shuffle_instances: bool = True
    distractors: bool = True
    flat: bool = True
    roi_names: dict[int, str] = attrs.field(factory=lambda: {1: "GTVp", 2: "GTVn"})

    def bqml_per_suv(self) -> float:
        """Bq/ml per SUV unit in the written PET (``dose × decay / weight_g``)."""
        decay = 1.0
        if self.decay_correction == "START":
            decay = 2.0 ** (-(self.scan - self.injection).total_seconds() / self.half_life_s)
        return self.dose_bq * decay / (self.weight_kg * 1000.0)


def _base(pid: str, study: dict[str, str], sop_class: str, style: StudyStyle) -> pydicom.FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_UID)
    ds = pydicom.FileDataset("", pydicom.Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = f"Phantom^{pid}"
    ds.PatientID = pid
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "O"
    ds.PatientWeight = f"{style.weight_kg:g}"
    ds.StudyInstanceUID = study["study"]
    ds.StudyDate = style.scan.strftime("%Y%m%d")
    ds.StudyTime = style.scan.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.FrameOfReferenceUID = study["frame"]
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = style.manufacturer
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = style.scan.strftime("%Y%m%d")
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = style.scan.strftime("%H%M%S")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    return ds


def _slices(
    image: sitk.Image, stored: npt.NDArray[np.int16], slopes: npt.NDArray[np.float64], intercept: float
) -> list[dict[str, Any]]:
    g = Geometry.from_image(image)
    d = g.direction_matrix
    out = []
    for k in range(stored.shape[0]):
        position = np.asarray(g.origin) + d @ (np.array([0.0, 0.0, k]) * np.asarray(g.spacing))
        out.append(
            {
                "ImagePositionPatient": [f"{v:.6g}" for v in position],
                "ImageOrientationPatient": [f"{v:.8g}" for v in (*d[:, 0], *d[:, 1])],
                "PixelSpacing": [f"{g.spacing[1]:.8g}", f"{g.spacing[0]:.8g}"],
                "SliceThickness": f"{g.spacing[2]:.8g}",
                "Rows": stored.shape[1],
                "Columns": stored.shape[2],
                "RescaleSlope": f"{slopes[k]:.8g}",
                "RescaleIntercept": f"{intercept:g}",
                "PixelData": stored[k].astype("<i2").tobytes(),
            }
        )
    return out


def _write_series(
    out: Path, pid: str, number: int, slices: list[dict[str, Any]], header: dict[Any, Any], study: dict[str, str],
    sop_class: str, style: StudyStyle, rng: np.random.Generator,
) -> tuple[list[pydicom.Dataset], list[Path]]:  # fmt: skip
    series_uid = generate_uid()
    numbers = rng.permutation(len(slices)) + 1 if style.shuffle_instances else np.arange(len(slices)) + 1
    written: list[pydicom.Dataset] = []
    paths: list[Path] = []
    for k, fields in enumerate(slices):
        ds = _base(pid, study, sop_class, style)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.InstanceNumber = int(numbers[k])
        for key, value in {**header, **fields}.items():
            if isinstance(key, tuple):
                ds.add_new(key, *value)
            else:
                setattr(ds, key, value)
        ds["PixelData"].VR = "OW"
        if style.flat:
            path = out / hashlib.sha1(str(ds.SOPInstanceUID).encode()).hexdigest()[:16]
        else:
            path = out / pid / f"{number:03d}" / f"{ds.InstanceNumber:04d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        written.append(ds)
        paths.append(path)
    return written, paths


def _pet_header(style: StudyStyle) -> dict[Any, Any]:
    item = pydicom.Dataset()
    item.Radiopharmaceutical = "Fluorodeoxyglucose"
    item.RadionuclideTotalDose = f"{style.dose_bq:.6g}"
    item.RadionuclideHalfLife = f"{style.half_life_s:g}"
    item.RadiopharmaceuticalStartTime = style.injection.strftime("%H%M%S")
    if style.start_datetime:
        item.RadiopharmaceuticalStartDateTime = style.injection.strftime("%Y%m%d%H%M%S")
    header: dict[Any, Any] = {
        "Modality": "PT",
        "SeriesDescription": "PET AC",
        "ImageType": ["ORIGINAL", "PRIMARY"],
        "CorrectedImage": ["DECY", "ATTN", "SCAT", "DTIM", "NORM"],
        "Units": style.units,
        "DecayCorrection": style.decay_correction,
        "SeriesType": ["STATIC", "IMAGE"],
        "RadiopharmaceuticalInformationSequence": DicomSequence([item]),
    }
    return header


def write_dicom_study(
    out_dir: PathLike,
    pid: str,
    ct: sitk.Image,
    pet_suv: sitk.Image,
    label: sitk.Image | None = None,
    *,
    style: StudyStyle | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write one patient's CT, PET (from SUV) and RTSTRUCT (from ``label``) as DICOM files.

    Parameters
    ----------
    out_dir
        Folder (created).
    pid
        PatientID.
    ct, pet_suv, label
        CT in HU, PET in SUVbw, label map on the CT grid (0/1/2; ``None``: no RTSTRUCT).
    style
        Header values and file arrangement.
    seed
        Seed of the instance-number shuffle.

    Returns
    -------
    dict
        ``ct_series``, ``pet_series``, ``rtstruct`` (UIDs or path), ``files`` (all paths).
    """
    st = style or StudyStyle()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study = {"study": str(generate_uid()), "frame": str(generate_uid())}
    ct_hu = np.asarray(image_to_array(ct), dtype=np.float64)
    ct_stored = np.clip(np.round(ct_hu + 1024.0), -32768, 32767).astype(np.int16)
    ct_header = {"Modality": "CT", "SeriesDescription": "CT head-neck", "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
                 "KVP": "120", "RescaleType": "HU"}  # fmt: skip
    ct_ds, files = _write_series(
        out,
        pid,
        2,
        _slices(ct, ct_stored, np.ones(len(ct_stored)), -1024.0),
        ct_header,
        study,
        CT_SOP_CLASS,
        st,
        rng,
    )
    suv = np.asarray(image_to_array(pet_suv), dtype=np.float64)
    per_suv = {"BQML": st.bqml_per_suv(), "GML": 1.0, "CNTS": 1.0 / 2.5e-4}[st.units]
    values = np.maximum(suv, 0.0) * per_suv
    slopes = np.maximum(values.reshape(len(values), -1).max(axis=1), 1e-6) / 32000.0
    stored = np.round(values / slopes[:, None, None]).astype(np.int16)
    header = _pet_header(st)
    if st.philips_factor or st.units == "CNTS":
        factor = 2.5e-4 if st.units == "CNTS" else 1.0 / per_suv
        header[(0x7053, 0x0010)] = ("LO", "Philips PET Private Group")
        header[(0x7053, 0x1000)] = ("DS", f"{factor:.8g}")
    pet_ds, pet_files = _write_series(
        out, pid, 4, _slices(pet_suv, stored, slopes, 0.0), header, study, PET_SOP_CLASS, st, rng
    )
    files += pet_files
    result: dict[str, Any] = {
        "ct_series": ct_ds[0].SeriesInstanceUID,
        "pet_series": pet_ds[0].SeriesInstanceUID,
    }
    if st.distractors:
        nac = {**header, "SeriesDescription": "PET NAC", "CorrectedImage": ["DECY", "DTIM", "NORM"]}
        _, more = _write_series(
            out, pid, 5, _slices(pet_suv, stored, slopes, 0.0), nac, study, PET_SOP_CLASS, st, rng
        )
        files += more
        scout = {
            **ct_header,
            "SeriesDescription": "Topogram",
            "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"],
        }
        _, more = _write_series(out, pid, 1, _slices(ct, ct_stored, np.ones(len(ct_stored)), -1024.0)[:2], scout,
                                study, CT_SOP_CLASS, st, rng)  # fmt: skip
        files += more
    if label is not None:
        labels = np.asarray(image_to_array(label)).astype(np.uint8)
        rt = labels_to_rtstruct(
            labels, Geometry.from_image(ct), ct_ds, series_description="physician contours"
        )
        for roi in rt.StructureSetROISequence:
            label_value = {"GTVp": 1, "GTVn": 2}[str(roi.ROIName)]
            roi.ROIName = st.roi_names.get(label_value, roi.ROIName)
        rt.InstanceCreationDate = rt.StructureSetDate = rt.SeriesDate = st.scan.strftime("%Y%m%d")
        path = out / (
            hashlib.sha1(str(rt.SOPInstanceUID).encode()).hexdigest()[:16] if st.flat else f"{pid}/RS.dcm"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        pydicom.dcmwrite(path, rt, enforce_file_format=True)
        result["rtstruct"] = str(path)
        files.append(path)
    result["files"] = [str(p) for p in files]
    return result
