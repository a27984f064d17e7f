"""DICOM knowledge as data: which series to skip, which ROI names make which label, SUV rules.

Every decision the importer takes from a header is one record in a table here; the code that
applies them (:mod:`hecktorseg.dicom.select`, :mod:`hecktorseg.dicom.suv`,
:mod:`hecktorseg.dicom.rtstruct_read`) holds no ``if vendor == …`` chains.

Tables
------
:data:`SERIES_SKIP_RULES`
    Series that are never the CT or PET of a case (localizers, derived images, secondary
    captures, PET without attenuation correction).
:data:`DEFAULT_ROI_RULES`
    ROI name (regular expression, case-insensitive) → label value: 1 GTVp, 2 GTVn.
:data:`DECAY_RULES`
    What the PET's ``DecayCorrection`` (0054,1102) means for the SUV decay factor.
:data:`UNITS_RULES`
    What the PET's ``Units`` (0054,1001) means: Bq/ml, already SUV, or counts.
:data:`VENDOR_FACTORS`
    Private SUV scale factors (Philips (7053,1000)).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

__all__ = [
    "DECAY_RULES",
    "DEFAULT_ROI_RULES",
    "SERIES_SKIP_RULES",
    "SOP_CLASS_ENHANCED",
    "SOP_CLASS_SECONDARY_CAPTURE",
    "UNITS_RULES",
    "VENDOR_FACTORS",
    "DecayRule",
    "RoiRule",
    "SkipRule",
    "UnitsRule",
    "VendorFactor",
    "roi_rules",
]

SOP_CLASS_SECONDARY_CAPTURE: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
        "1.2.840.10008.5.1.4.1.1.7.1",
        "1.2.840.10008.5.1.4.1.1.7.2",
        "1.2.840.10008.5.1.4.1.1.7.3",
        "1.2.840.10008.5.1.4.1.1.7.4",
    }
)
"""SOP classes of secondary captures (screenshots, never a volume)."""

SOP_CLASS_ENHANCED: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image Storage
        "1.2.840.10008.5.1.4.1.1.2.2",  # Legacy Converted Enhanced CT
        "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET Image Storage
        "1.2.840.10008.5.1.4.1.1.128.1",  # Legacy Converted Enhanced PET
    }
)
"""SOP classes of enhanced multi-frame CT and PET (one file holds the whole series)."""


def _value_set(values: Iterable[str]) -> frozenset[str]:
    return frozenset(values)


@attrs.frozen
class SkipRule:
    """A series that matches is never chosen as a case's CT or PET.

    Attributes
    ----------
    reason
        Why, as listed in a patient's record and in the error listing the candidates.
    field
        What the rule looks at: ``image_type`` (the values of (0008,0008)), ``corrected``
        (CorrectedImage (0028,0051)) or ``sop_class`` (the SOP class UID).
    test
        ``has``: the field holds one of ``values``; ``lacks``: it holds none of them;
        ``first``: its first value is one of them.
    values
        The values looked for (upper case).
    modality
        Only series of this modality (``CT``, ``PT``); ``None``: all.
    """

    reason: str
    field: Literal["image_type", "corrected", "sop_class"]
    test: Literal["has", "lacks", "first"]
    values: frozenset[str] = attrs.field(converter=_value_set)
    modality: str | None = None

    def matches(
        self, modality: str, image_type: Sequence[str], corrected: Sequence[str], sop_class: str
    ) -> bool:
        """Whether a series with these header values is skipped by this rule."""
        if self.modality is not None and modality != self.modality:
            return False
        found = {"image_type": image_type, "corrected": corrected, "sop_class": (sop_class,)}[self.field]
        upper = [v.upper() for v in found]
        if self.test == "first":
            return bool(upper) and upper[0] in self.values
        hit = any(v in self.values for v in upper)
        return hit if self.test == "has" else not hit


SERIES_SKIP_RULES: tuple[SkipRule, ...] = (
    SkipRule("localizer/scout", "image_type", "has", {"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW"}),
    SkipRule("derived image", "image_type", "first", {"DERIVED"}),
    SkipRule("secondary capture", "image_type", "has", {"SECONDARY", "SCREEN SAVE"}),
    SkipRule("secondary capture", "sop_class", "has", SOP_CLASS_SECONDARY_CAPTURE),
    SkipRule(
        "PET without attenuation correction (no ATTN in CorrectedImage)", "corrected", "lacks", {"ATTN"}, "PT"
    ),
)
"""Series never chosen as CT or PET, in the order they are checked (the first match is reported)."""


@attrs.frozen
class RoiRule:
    """RTSTRUCT ROIs whose name matches ``pattern`` (case-insensitive, whole name) go to ``label``.

    Attributes
    ----------
    label
        Label value: 1 GTVp, 2 GTVn.
    name
        Name of the structure (``GTVp``, ``GTVn``).
    pattern
        Regular expression matched against the whole ROI name (surrounding blanks removed).
    """

    label: int
    name: str
    pattern: str = attrs.field()

    @pattern.validator
    def _compiles(self, _attr: attrs.Attribute[str], value: str) -> None:
        re.compile(value)

    def matches(self, roi_name: str) -> bool:
        """Whether ``roi_name`` belongs to this rule's label."""
        return re.fullmatch(self.pattern, roi_name.strip(), flags=re.IGNORECASE) is not None


_SEP = r"[\s_\-.]*"
GTVP_PATTERN = rf"gtv{_SEP}(p|t|prim|primary|primary{_SEP}tumou?r|tumou?r|t{_SEP}primary)({_SEP}\d+)?"
"""Default GTVp names: GTVp, GTV-P, GTV_primary, GTVt, GTV_T, GTVp1, GTV primary tumour, …"""
GTVN_PATTERN = (
    rf"gtv{_SEP}(n|ln|nd|node|nodes|nodal|lymph{_SEP}nodes?)({_SEP}(l|r|left|right))?({_SEP}[a-z]?\d+[a-z]?)?"
)
"""Default GTVn names: GTVn, GTV_N1, GTVn_L2, GTV-LN, GTV node 3, GTVn_R_IIa, …"""

DEFAULT_ROI_RULES: tuple[RoiRule, ...] = (
    RoiRule(1, "GTVp", GTVP_PATTERN),
    RoiRule(2, "GTVn", GTVN_PATTERN),
)
"""ROI name rules; a voxel in both GTVp and GTVn counts as GTVp (with a warning)."""


def roi_rules(gtvp: str | None = None, gtvn: str | None = None) -> tuple[RoiRule, ...]:
    """The ROI name rules with the GTVp and/or GTVn pattern replaced (``None``: the default).

    Raises
    ------
    ConfigError
        A pattern is not a valid regular expression.
    """
    from hecktorseg.errors import ConfigError

    try:
        return (
            RoiRule(1, "GTVp", GTVP_PATTERN if gtvp is None else gtvp),
            RoiRule(2, "GTVn", GTVN_PATTERN if gtvn is None else gtvn),
        )
    except re.error as exc:
        raise ConfigError(
            f"invalid ROI name pattern: {exc}", hint="give gtvp_roi=/gtvn_roi= a Python regular expression"
        ) from None


@attrs.frozen
class DecayRule:
    """What one ``DecayCorrection`` value means for SUV.

    Attributes
    ----------
    code
        The header value (``START``, ``ADMIN``, ``NONE``).
    decay_to
        ``series``: the pixels are decay-corrected to the series start, so the dose is decayed
        from injection to the series time; ``acquisition``: not decay-corrected, so the dose is
        decayed to each image's acquisition time; ``none``: already corrected to the injection
        time (no decay factor).
    """

    code: str
    decay_to: Literal["series", "acquisition", "none"]


DECAY_RULES: dict[str, DecayRule] = {
    "START": DecayRule("START", "series"),
    "ADMIN": DecayRule("ADMIN", "none"),
    "NONE": DecayRule("NONE", "acquisition"),
}
"""``DecayCorrection`` → rule; another value is a per-patient error."""


@attrs.frozen
class UnitsRule:
    """What one PET ``Units`` value means.

    Attributes
    ----------
    code
        The header value.
    kind
        ``activity``: Bq/ml, converted with weight, dose and decay; ``suv``: already SUVbw;
        ``counts``: only with a vendor factor or an explicit ``suv_factor``.
    """

    code: str
    kind: Literal["activity", "suv", "counts"]


UNITS_RULES: dict[str, UnitsRule] = {
    "BQML": UnitsRule("BQML", "activity"),
    "GML": UnitsRule("GML", "suv"),
    "CNTS": UnitsRule("CNTS", "counts"),
}
"""``Units`` → rule; another value is a per-patient error."""


@attrs.frozen
class VendorFactor:
    """A private tag holding the factor from (rescaled) pixel values to SUVbw.

    Attributes
    ----------
    name
        What it is called in records.
    manufacturer
        Regular expression matched (case-insensitive, anywhere) against ``Manufacturer``.
    group, element
        The private tag (its private creator is not checked: vendors spell it differently).
    units
        The ``Units`` values for which the factor is used; with other units it is recorded only.
    """

    name: str
    manufacturer: str
    group: int
    element: int
    units: frozenset[str] = attrs.field(converter=_value_set)


VENDOR_FACTORS: tuple[VendorFactor, ...] = (
    VendorFactor("Philips SUV scale factor", "philips", 0x7053, 0x1000, {"CNTS"}),
)
"""Private SUV factors, checked in order."""
