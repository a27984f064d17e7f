"""Fixtures of the review tests: the hand-made cohort and its review, and one headless Chromium per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_cohort import CHROMEDRIVER, CHROMIUM, Cohort, build_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Cohort:
    """The hand-made cohort (read-only: tests that write use their own folders)."""
    return build_cohort(tmp_path_factory.mktemp("cohort"))


@pytest.fixture(scope="module")
def reviewed(cohort: Cohort, tmp_path_factory: pytest.TempPathFactory) -> tuple[Cohort, Any]:
    """The cohort and its review (``write_review`` result), written once per module."""
    from hecktorseg.review import write_review

    out = tmp_path_factory.mktemp("review")
    result = write_review(cohort.pred, cohort.data, out, layout="2022", bbox_table=cohort.data / "boxes.csv")
    return cohort, result


def _first(paths: tuple[str, ...]) -> str | None:
    return next((p for p in paths if Path(p).is_file()), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Selenium with the system chromedriver (nothing is downloaded)."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
    )
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = _first(CHROMIUM), _first(CHROMEDRIVER)
    if chromium is None or driver_path is None:
        pytest.skip("no Chromium / chromedriver: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    options.binary_location = chromium
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # an explicit driver path: Selenium Manager never runs, so nothing is fetched from the network
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()
