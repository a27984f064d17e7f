"""Benchmark: the review page's size per case and how fast it opens and scrolls in headless Chromium.

Two cohorts:

* realistic: one case (CT 512×512×120 int16 at 0.98×0.98×3 mm, PET 192×192×110 at
  3.65×3.65×3.27 mm, a GTVp and two GTVn on the CT grid, a 144 mm box table) linked under
  ``--size-cases`` patient ids (2022 layout; each id is read and reviewed as a real case would
  be): seconds of :func:`hecktorseg.review.write_review` per case and the bytes of each case's
  data file;
* ``--cases`` tiny 2025 phantoms (each "predicted" as its own label): the page a cohort of that
  size opens (only ``index.html`` and its two assets load when it opens: the case files load
  when a case is clicked, so their size does not enter the opening time).

In headless Chromium (Selenium, the system ``chromedriver``), for each page: the load time
(navigation start → load event), the time from clicking the first case to its three views
drawn, and the milliseconds per slice while scrolling (mean of 40 steps of the axial view).

No time is asserted; run it on a quiet machine and compare with the targets (≤ 2 MB per case, a
100-case review open in under 3 s).

    python benchmarks/bench_review.py            # 3 realistic cases, a 100-case page
    python benchmarks/bench_review.py --quick    # 1 small case, a 3-case page (smoke run)
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from hecktorseg.review import write_review


def _image(array: np.ndarray, spacing: tuple[float, float, float], origin: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(tuple(float(v) for v in origin))
    return image


def _write_case(
    folder: Path, ct_size: tuple[int, int, int], pet_size: tuple[int, int, int]
) -> dict[str, Path]:
    """A body with a spine, a tumour and two nodes, centred on the world origin: CT, PET, label files."""
    rng = np.random.default_rng(0)
    ct_sp, pet_sp = (0.98, 0.98, 3.0), (3.65, 3.65, 3.27)
    ct_origin = -(np.asarray(ct_size) - 1) / 2 * np.asarray(ct_sp)
    pet_origin = -(np.asarray(pet_size) - 1) / 2 * np.asarray(pet_sp)
    nx, ny, nz = ct_size
    z, y, x = np.ogrid[:nz, :ny, :nx]
    wx, wy, wz = (ct_origin[i] + (x, y, z)[i] * ct_sp[i] for i in range(3))
    body = (wx / 130.0) ** 2 + (wy / 100.0) ** 2 <= 1.0
    ct = np.where(body, 40.0, -1000.0).astype(np.float32) + rng.normal(0, 15, (nz, ny, nx)).astype(np.float32)
    ct[np.broadcast_to((wx / 25.0) ** 2 + ((wy - 40) / 25.0) ** 2 <= 1.0, ct.shape)] = 700.0  # spine
    mask = np.zeros(ct.shape, dtype=np.uint8)
    mask[((wx - 10) ** 2 + (wy + 20) ** 2 + wz**2) <= 18.0**2] = 1
    for cx in (-45.0, 50.0):
        mask[((wx - cx) ** 2 + (wy + 5) ** 2 + (wz + 30) ** 2) <= 8.0**2] = 2
    px, py, pz = pet_size
    qz, qy, qx = np.ogrid[:pz, :py, :px]
    vx, vy, vz = (pet_origin[i] + (qx, qy, qz)[i] * pet_sp[i] for i in range(3))
    pet = np.where((vx / 130.0) ** 2 + (vy / 100.0) ** 2 <= 1.0, 1.0, 0.05).astype(np.float32)
    pet = pet + 12.0 * np.exp(-((vx - 10) ** 2 + (vy + 20) ** 2 + vz**2) / (2 * 12.0**2)).astype(np.float32)
    folder.mkdir(parents=True)
    files = {"ct": folder / "ct.nii.gz", "pt": folder / "pt.nii.gz", "gt": folder / "gt.nii.gz"}
    sitk.WriteImage(_image(np.rint(ct).astype(np.int16), ct_sp, ct_origin), files["ct"])  # as scanners do
    sitk.WriteImage(_image(pet, pet_sp, pet_origin), files["pt"])
    sitk.WriteImage(_image(mask, ct_sp, ct_origin), files["gt"])
    return files


def _cohort(
    root: Path, n_cases: int, ct_size: tuple[int, int, int], pet_size: tuple[int, int, int]
) -> tuple[Path, Path, Path]:
    """The 2022 layout: every patient id a link to the same case; the prediction is the label."""
    source = _write_case(root / "source", ct_size, pet_size)
    data, pred = root / "data", root / "pred"
    for folder in (data / "imagesTr", data / "labelsTr", pred):
        folder.mkdir(parents=True)
    rows = ["PatientID,x1,x2,y1,y2,z1,z2\n"]  # a 144 mm box around the tumour
    for i in range(1, n_cases + 1):
        pid = f"BENCH-{i:03d}"
        (data / "imagesTr" / f"{pid}__CT.nii.gz").symlink_to(source["ct"])
        (data / "imagesTr" / f"{pid}__PT.nii.gz").symlink_to(source["pt"])
        (data / "labelsTr" / f"{pid}.nii.gz").symlink_to(source["gt"])
        (pred / f"{pid}.nii.gz").symlink_to(source["gt"])
        rows.append(f"{pid},-62,82,-92,52,-90,54\n")
    table = data / "boxes.csv"
    table.write_text("".join(rows), encoding="utf-8")
    return data, pred, table


def _browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _page_times(index: Path, rounds: int) -> dict[str, list[float]]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser()
    times: dict[str, list[float]] = {
        "blank page load (s)": [],
        "load event (s)": [],
        "case drawn (s)": [],
        "ms per slice": [],
    }
    blank = index.parent / "blank.html"  # the browser's own cost of opening a file, side by side
    blank.write_text("<!DOCTYPE html><title>blank</title><p>blank</p>", encoding="utf-8")
    load = "var t = performance.getEntriesByType('navigation')[0]; return t.loadEventEnd;"
    try:
        for _ in range(rounds):
            driver.get(blank.resolve().as_uri())
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(load) > 0)
            times["blank page load (s)"].append(driver.execute_script(load) / 1000)
            driver.get(index.resolve().as_uri())
            WebDriverWait(driver, 60).until(
                lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
            )
            WebDriverWait(driver, 60).until(lambda d: d.execute_script(load) > 0)
            times["load event (s)"].append(driver.execute_script(load) / 1000)
            start = time.perf_counter()
            driver.find_element("css selector", "#cohort-table tbody tr").click()
            WebDriverWait(driver, 60).until(
                lambda d: d.execute_script("return hsReview.state.volume !== null")
            )
            times["case drawn (s)"].append(time.perf_counter() - start)
            ms = driver.execute_script(
                "var n = hsReview.state.volume.shape[0], t0 = performance.now();"
                "for (var k = 0; k < 40; k++) { hsReview.setSlice('axial', k % n); }"
                "return (performance.now() - t0) / 40;"
            )
            times["ms per slice"].append(float(ms))
    finally:
        driver.quit()
    return times


def _many(root: Path, n_cases: int) -> tuple[Path, Path]:
    """A cohort of ``n_cases`` tiny 2025 phantoms, each "predicted" as its own label map."""
    from hecktorseg.data import SyntheticConfig, write_synthetic_dataset

    cases = write_synthetic_dataset(
        root / "data", n_cases=n_cases, edition="2025", config=SyntheticConfig.tiny()
    )
    pred = root / "pred"
    pred.mkdir()
    for case in cases:
        if case.label_path is not None:
            shutil.copy(case.label_path, pred / f"{case.patient_id}.nii.gz")
    return root / "data", pred


def _print_times(title: str, times: dict[str, list[float]]) -> None:
    print(f"| {title} | " + " | ".join(f"run {i + 1}" for i in range(len(times["ms per slice"]))) + " |")
    print("|---|" + "---|" * len(times["ms per slice"]))
    for name, values in times.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Small cases, few of them (smoke run).")
    parser.add_argument("--cases", type=int, default=100, help="Patients of the cohort whose page is opened.")
    parser.add_argument(
        "--size-cases", type=int, default=3, help="Realistic cases reviewed for size and speed."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Page openings measured.")
    parser.add_argument("--work", type=Path, default=None, help="Keep the cohorts and the pages here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    n_real, n_many = (1, 3) if args.quick else (args.size_cases, args.cases)
    ct_size, pet_size = ((96, 96, 40), (48, 48, 40)) if args.quick else ((512, 512, 120), (192, 192, 110))
    rounds = 1 if args.quick else args.rounds
    root = args.work or Path(tempfile.mkdtemp(prefix="bench-review-"))
    browser = shutil.which("chromedriver") is not None
    try:
        data, pred, table = _cohort(root / "real", n_real, ct_size, pet_size)
        start = time.perf_counter()
        real = write_review(pred, data, root / "real" / "review", layout="2022", bbox_table=table, force=True)
        seconds = time.perf_counter() - start
        sizes = [(real.index_html.parent / r.data_file).stat().st_size for r in real.rows if r.data_file]
        print(f"realistic cases: {len(real.rows)} (CT {ct_size}, PET {pet_size}), failed: {len(real.errors)}")
        print(f"write_review: {seconds / max(len(real.rows), 1):.2f} s per case")
        print(
            f"case data: median {statistics.median(sizes) / 1e6:.2f} MB, max {max(sizes) / 1e6:.2f} MB per case"
        )
        if browser:
            _print_times("realistic case", _page_times(real.index_html, rounds))

        data, pred = _many(root / "many", n_many)
        many = write_review(pred, data, root / "many" / "review", force=True)
        print(f"cohort: {len(many.rows)} cases, index.html {many.index_html.stat().st_size / 1e3:.1f} kB")
        if browser:
            _print_times(f"{len(many.rows)}-case page", _page_times(many.index_html, rounds))
        else:
            print("no chromedriver: page timings skipped")
        print(f"load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    finally:
        if args.work is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
