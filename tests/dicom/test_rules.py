"""The rule tables: ROI names → labels (the usual spellings), series skipped."""

from __future__ import annotations

import pytest

from hecktorseg.dicom import DEFAULT_ROI_RULES, SERIES_SKIP_RULES, roi_rules
from hecktorseg.errors import ConfigError


def label_of(name: str, rules: tuple = DEFAULT_ROI_RULES) -> int | None:  # type: ignore[type-arg]
    return next((r.label for r in rules if r.matches(name)), None)


@pytest.mark.parametrize(
    "name", ["GTVp", "GTV-P", "GTV_primary", "GTVt", "gtv_t", "GTV P", "GTVp1", "GTV_Primary_Tumor"]
)
def test_gtvp_spellings(name: str) -> None:
    assert label_of(name) == 1


@pytest.mark.parametrize(
    "name", ["GTVn", "GTV_N1", "GTVn_L2", "GTV-LN", "GTV node", "GTVn_R_3", "GTV_LN_2", "gtvn"]
)
def test_gtvn_spellings(name: str) -> None:
    assert label_of(name) == 2


@pytest.mark.parametrize("name", ["GTV", "CTVp", "PTV_70", "BODY", "Parotid_L", "GTVp_ring", "zGTVn_opt"])
def test_other_structures_are_not_matched(name: str) -> None:
    assert label_of(name) is None


def test_custom_patterns_replace_the_defaults() -> None:
    rules = roi_rules(gtvp="Tumour.*", gtvn=None)
    assert label_of("Tumour_main", rules) == 1
    assert label_of("GTVp", rules) is None
    assert label_of("GTV_N1", rules) == 2
    with pytest.raises(ConfigError, match="pattern"):
        roi_rules(gtvp="(")


@pytest.mark.parametrize(
    ("modality", "image_type", "corrected", "sop", "reason"),
    [
        ("CT", ("ORIGINAL", "PRIMARY", "LOCALIZER"), (), "1.2.840.10008.5.1.4.1.1.2", "localizer"),
        ("CT", ("DERIVED", "SECONDARY", "MPR"), (), "1.2.840.10008.5.1.4.1.1.2", "derived"),
        ("CT", ("ORIGINAL", "PRIMARY"), (), "1.2.840.10008.5.1.4.1.1.7", "secondary capture"),
        ("PT", ("ORIGINAL", "PRIMARY"), ("DECY", "NORM"), "1.2.840.10008.5.1.4.1.1.128", "attenuation"),
        ("PT", ("ORIGINAL", "PRIMARY"), ("DECY", "ATTN"), "1.2.840.10008.5.1.4.1.1.128", None),
        ("CT", ("ORIGINAL", "PRIMARY", "AXIAL"), (), "1.2.840.10008.5.1.4.1.1.2", None),
    ],
)
def test_skip_rules(modality: str, image_type: tuple, corrected: tuple, sop: str, reason: str | None) -> None:  # type: ignore[type-arg]
    hit = next((r.reason for r in SERIES_SKIP_RULES if r.matches(modality, image_type, corrected, sop)), None)
    if reason is None:
        assert hit is None
    else:
        assert hit is not None and reason in hit
