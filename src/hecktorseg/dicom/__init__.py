"""From the clinic and back: DICOM PET/CT in (with SUV), RTSTRUCT and DICOM-SEG out.

- :func:`index_dicom` indexes a folder tree of DICOM files by their headers;
- :func:`import_dicom` turns it into a HECKTOR 2025 dataset: per patient the CT (HU), the
  attenuation-corrected PET as SUVbw (:func:`suv_factor`) and the RTSTRUCT's GTVp/GTVn as a
  label map (:func:`rtstruct_to_labels`), with a record of every choice;
- :func:`export_labels` writes label maps back as RTSTRUCT (:func:`labels_to_rtstruct`) or
  DICOM-SEG (:func:`labels_to_seg`, through highdicom) on each patient's CT series;
- :func:`write_dicom_study` writes a PET/CT study (e.g. a phantom) as DICOM files.

The decisions taken from headers are records in :mod:`hecktorseg.dicom.rules`. The package
needs the ``dicom`` extra (``pip install "hecktorseg[dicom]"``); without it, importing it
raises a one-line :class:`~hecktorseg.errors.ConfigError` with that command. It sits right
above :mod:`hecktorseg.io` in the layers, so inference can export its predictions.
"""

from hecktorseg.dicom._deps import require

require("pydicom")

from hecktorseg.dicom.export import EXPORT_FORMATS, export_labels, export_patient, find_label_maps  # noqa: E402
from hecktorseg.dicom.importer import import_dicom, output_name, read_selection_table  # noqa: E402
from hecktorseg.dicom.index import DicomIndex, FileEntry, SeriesEntry, index_dicom, is_dicom_file  # noqa: E402
from hecktorseg.dicom.patient import ImportOptions, PatientImport, import_patient  # noqa: E402
from hecktorseg.dicom.rtstruct_read import RoiMapping, fill_polygon, rtstruct_to_labels  # noqa: E402
from hecktorseg.dicom.rtstruct_write import labels_to_rtstruct, mask_contours  # noqa: E402
from hecktorseg.dicom.rules import (  # noqa: E402
    DECAY_RULES,
    DEFAULT_ROI_RULES,
    SERIES_SKIP_RULES,
    UNITS_RULES,
    VENDOR_FACTORS,
    DecayRule,
    RoiRule,
    SkipRule,
    UnitsRule,
    VendorFactor,
    roi_rules,
)
from hecktorseg.dicom.seg_write import labels_to_seg  # noqa: E402
from hecktorseg.dicom.select import SeriesChoice, select_series  # noqa: E402
from hecktorseg.dicom.study import StudyStyle, write_dicom_study  # noqa: E402
from hecktorseg.dicom.suv import SuvInputs, suv_factor  # noqa: E402
from hecktorseg.dicom.volume import SeriesVolume, load_series  # noqa: E402

__all__ = [
    "DECAY_RULES",
    "DEFAULT_ROI_RULES",
    "EXPORT_FORMATS",
    "SERIES_SKIP_RULES",
    "UNITS_RULES",
    "VENDOR_FACTORS",
    "DecayRule",
    "DicomIndex",
    "FileEntry",
    "ImportOptions",
    "PatientImport",
    "RoiMapping",
    "RoiRule",
    "SeriesChoice",
    "SeriesEntry",
    "SeriesVolume",
    "SkipRule",
    "StudyStyle",
    "SuvInputs",
    "UnitsRule",
    "VendorFactor",
    "export_labels",
    "export_patient",
    "fill_polygon",
    "find_label_maps",
    "import_dicom",
    "import_patient",
    "index_dicom",
    "is_dicom_file",
    "labels_to_rtstruct",
    "labels_to_seg",
    "load_series",
    "mask_contours",
    "output_name",
    "read_selection_table",
    "roi_rules",
    "rtstruct_to_labels",
    "select_series",
    "suv_factor",
    "write_dicom_study",
]
