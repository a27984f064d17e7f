"""The review page in a real browser (headless Chromium from ``file://``): table, sorting, slider, outlines.

One browser serves the whole module; every wait is on an explicit condition in the page.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from review_cohort import GTVP, NODE_A, ORIGIN, SPACING, VOXEL_ML, Cohort
from scipy import ndimage

GREEN, MAGENTA = (0x00, 0xD0, 0x00), (0xFF, 0x33, 0xFF)  # visualize's LABEL_COLOURS

_ROWS = """
return Array.from(document.querySelectorAll('#cohort-table tbody tr')).map(function (tr) {
  var row = {hidden: tr.hidden};
  tr.querySelectorAll('td').forEach(function (td) { row[td.dataset.key] = td.textContent; });
  return row;
});"""

_PIXELS = """
var c = document.getElementById(arguments[0]);
return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)];"""

_SET = """
var el = document.getElementById(arguments[0]);
if (el.type === 'checkbox') { el.checked = arguments[1]; } else { el.value = String(arguments[1]); }
el.dispatchEvent(new Event('input', {bubbles: true}));"""


def _wait(browser: Any, script: str, timeout: float = 15) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout).until(lambda d: d.execute_script(script))


@pytest.fixture(scope="module")
def page(browser: Any, reviewed: tuple[Cohort, Any]) -> tuple[Any, Cohort, Any]:
    cohort, result = reviewed
    browser.get(result.index_html.resolve().as_uri())
    _wait(browser, "return document.body.dataset.ready === 'true'")
    return browser, cohort, result


def _no_script_errors(browser: Any) -> None:
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe


def _open_case(browser: Any, pid: str) -> None:
    browser.find_element("css selector", f"#cohort-table tbody tr[data-patient='{pid}']").click()
    _wait(browser, f"var v = hsReview.state.volume; return v !== null && v.id === '{pid}'")


def _axial(browser: Any) -> npt.NDArray[np.uint8]:
    w, h, data = browser.execute_script(_PIXELS, "view-axial")
    return np.asarray(data, dtype=np.uint8).reshape(h, w, 4)[..., :3]


def test_one_row_per_case_with_the_right_values(page: tuple[Any, Cohort, Any]) -> None:
    browser, cohort, _ = page
    rows = {r["patient"]: r for r in browser.execute_script(_ROWS)}
    assert sorted(rows) == [f"HM-00{i}" for i in range(1, 8)] + ["XX-999"]
    for pid in ("HM-001", "HM-002", "HM-005", "HM-006"):
        mask = cohort.masks[pid]
        assert rows[pid]["gtvp_ml"] == f"{(mask == 1).sum() * VOXEL_ML:.2f}"
        assert rows[pid]["gtvn_ml"] == f"{(mask == 2).sum() * VOXEL_ML:.2f}"
        n_nodes = ndimage.label(mask == 2, structure=np.ones((3, 3, 3)))[1]
        assert rows[pid]["gtvn_components"] == str(n_nodes)
    suvmax = cohort.pet["HM-001"][cohort.masks["HM-001"] == 1].max()
    assert rows["HM-001"]["suvmax_gtvp"] == f"{suvmax:.2f}"
    assert rows["HM-002"]["flags"] == "empty"  # the empty prediction is flagged
    assert rows["HM-002"]["suvmax_gtvp"] == "–"
    assert "not on the CT grid" in rows["HM-004"]["error"] and rows["HM-004"]["flags"] == "error"
    _no_script_errors(browser)


def test_sorting_and_filtering(page: tuple[Any, Cohort, Any]) -> None:
    browser, _, _ = page
    header = browser.find_element("css selector", "#cohort-table th[data-key='gtvp_ml']")

    def column() -> list[float | None]:
        return [None if r["gtvp_ml"] == "–" else float(r["gtvp_ml"]) for r in browser.execute_script(_ROWS)]

    header.click()
    values = column()
    known = [v for v in values if v is not None]
    assert known == sorted(known) and values[len(known) :] == [None] * (len(values) - len(known))
    header.click()
    values = column()
    known = [v for v in values if v is not None]
    assert known == sorted(known, reverse=True) and known[0] > known[-1]
    assert values[len(known) :] == [None] * (len(values) - len(known))  # missing values stay last
    browser.execute_script(_SET, "filter", "empty")
    assert [r["patient"] for r in browser.execute_script(_ROWS) if not r["hidden"]] == ["HM-002"]
    browser.execute_script(_SET, "filter", "")
    _no_script_errors(browser)


def test_slider_wheel_and_keys_change_the_slice(page: tuple[Any, Cohort, Any]) -> None:
    browser, _, _ = page
    _open_case(browser, "HM-001")
    browser.execute_script(_SET, "slice-axial", 3)
    assert browser.find_element("id", "label-axial").text == "axial 4/20"
    before = _axial(browser)
    browser.execute_script(_SET, "slice-axial", 10)
    assert browser.find_element("id", "label-axial").text == "axial 11/20"
    assert not np.array_equal(before, _axial(browser))  # another slice is drawn
    browser.find_element("tag name", "body").send_keys("\ue013")  # arrow up
    assert browser.find_element("id", "label-axial").text == "axial 12/20"
    _no_script_errors(browser)


def _expected_outline(mask2d: npt.NDArray[np.bool_]) -> set[tuple[int, int]]:
    """Pixels of the region that touch a pixel outside it (4-neighbours): its inner boundary."""
    inner = ndimage.binary_erosion(mask2d, structure=ndimage.generate_binary_structure(2, 1), border_value=0)
    return {(int(r), int(c)) for r, c in np.argwhere(mask2d & ~inner)}


def _coloured(pixels: npt.NDArray[np.uint8], colour: tuple[int, int, int]) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in np.argwhere(np.all(pixels == colour, axis=-1))}


def test_outlines_are_drawn_where_the_masks_are(page: tuple[Any, Cohort, Any]) -> None:
    browser, cohort, _ = page
    _open_case(browser, "HM-001")
    for control, value in (
        ("pet-opacity", 0),
        ("outline-opacity", 1),
        ("show-pred", False),
        ("show-gt", True),
    ):
        browser.execute_script(_SET, control, value)
    volume = browser.execute_script("var v = hsReview.state.volume; return [v.origin, v.spacing, v.shape];")
    origin, spacing_zyx = np.asarray(volume[0]), np.asarray(volume[1])[::-1]
    z = 10  # through the primary tumour and node A
    # where the CT voxels of slice z lie on the page's grid, from their world coordinates
    world_z = ORIGIN[2] + z * SPACING[2]
    page_z = round(float(world_z - origin[2]) / float(spacing_zyx[2]))
    browser.execute_script(_SET, "slice-axial", page_z)
    offset = np.rint((np.asarray(ORIGIN[:2]) - origin[:2]) / spacing_zyx[:2]).astype(int)  # x, y
    assert np.allclose(spacing_zyx, SPACING)  # the box covers the CT: the page keeps the CT's grid

    def shifted(points: set[tuple[int, int]]) -> set[tuple[int, int]]:
        return {(r + offset[1], c + offset[0]) for r, c in points}

    gt = cohort.gt["HM-001"][z]
    pixels = _axial(browser)
    assert _coloured(pixels, GREEN) == shifted(_expected_outline(gt == 1))
    assert _coloured(pixels, MAGENTA) == shifted(_expected_outline(gt == 2))
    assert GTVP[0].start <= z < GTVP[0].stop and NODE_A[0].start <= z < NODE_A[0].stop

    browser.execute_script(_SET, "show-gt", False)
    browser.execute_script(_SET, "show-pred", True)
    pred = cohort.masks["HM-001"][z]
    green = _coloured(_axial(browser), GREEN)
    boundary = shifted(_expected_outline(pred == 1))
    assert green <= boundary and len(green) >= len(boundary) // 3  # dashed: part of the prediction's outline
    browser.execute_script(_SET, "show-pred", False)
    assert not _coloured(_axial(browser), GREEN)
    _no_script_errors(browser)


def test_loads_nothing_but_files_beside_the_page(page: tuple[Any, Cohort, Any]) -> None:
    browser, _, result = page
    _open_case(browser, "HM-005")
    names = browser.execute_script(
        "return Array.from(document.querySelectorAll('[src], [href]')).map(e => e.src || e.href);"
    )  # the stylesheet, the script and every case script added so far
    root = result.index_html.parent.resolve().as_uri()
    assert len(names) >= 3 and all(n.startswith(root + "/") for n in names), names
    _no_script_errors(browser)
