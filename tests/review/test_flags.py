"""The review flags as records: each predicate on hand-made statistics, and the table's shape."""

from __future__ import annotations

import math

import attrs
import pytest

from hecktorseg.review import REVIEW_FLAGS, CaseStats, ReviewSettings, flags_of

PLAIN = CaseStats(gtvp_ml=12.0, gtvn_ml=3.0, gtvn_components=1, suvmax_gtvp=9.0, component_ml=(12.0, 3.0))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, ()),
        ({"gtvp_ml": 0.0, "gtvn_ml": 0.0, "gtvn_components": 0, "component_ml": ()}, ("empty",)),
        ({"touches_border": True}, ("box border",)),
        ({"gtvp_ml": 0.0, "component_ml": (3.0,)}, ("GTVn without GTVp",)),
        ({"component_ml": (12.0, 3.0, 0.05)}, ("small component",)),
        ({"uncertain_ml": 7.4}, ()),  # under half of the 15 ml predicted
        ({"uncertain_ml": 7.6}, ("models disagree",)),
    ],
)
def test_each_flag_applies_where_it_should(change: dict[str, object], expected: tuple[str, ...]) -> None:
    assert flags_of(attrs.evolve(PLAIN, **change), ReviewSettings()) == expected


def test_thresholds_come_from_the_settings() -> None:
    small = attrs.evolve(PLAIN, component_ml=(12.0, 0.3))
    assert flags_of(small, ReviewSettings()) == ()
    assert flags_of(small, ReviewSettings(min_component_ml=0.5)) == ("small component",)


def test_flag_table_is_data() -> None:
    names = [f.name for f in REVIEW_FLAGS]
    assert len(set(names)) == len(names) and "error" not in names
    assert all(f.description and callable(f.predicate) for f in REVIEW_FLAGS)
    assert math.isnan(CaseStats(0, 0, 0, math.nan).suvmax_gtvp)
