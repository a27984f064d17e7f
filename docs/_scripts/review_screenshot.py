"""Take the screenshot of the "Reviewing every prediction" page (``docs/_static/review.png``).

Not run at build time (it needs Chromium): run it by hand on a review, for example the demo's::

    hecktorseg demo /tmp/demo --edition 2025
    python docs/_scripts/review_screenshot.py /tmp/demo/review/index.html docs/_static/review.png

(The picture in the docs shows five ``hecktorseg synth --edition 2025 --seed 4`` phantoms whose
"predictions" are their labels moved two voxels in x and grown by one, emptied (the second) or
stripped of the GTVp (the fourth).)

It opens the page in headless Chromium (Selenium with the system ``chromedriver``), opens the
first case whose prediction is not empty and saves the window as a 256-colour PNG.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait


def main(index: Path, out: Path, width: int = 1360, height: int = 900) -> None:
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(arg)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(index.resolve().as_uri())
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("return document.body.dataset.ready === 'true'")
        )
        row = driver.execute_script(
            "var rows = hsReview.cohort.rows;"
            "for (var i = 0; i < rows.length; i++) { if (rows[i].file && rows[i].gtvp_ml > 0) { return i; } }"
            "return 0;"
        )
        driver.execute_script("hsReview.openCase(arguments[0]);", row)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return hsReview.state.volume !== null"))
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    image.save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
