"""The web page at ``/`` in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
selenium): upload examples/cat.jpg and see the top-1 label; type sentences and see the similarity matrix; upload a
WAV and see the transcript. A screenshot of each is saved in the test's tmp dir."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from servekit import CAT, close_top5, library_embeddings, library_top5, library_transcript, require_serve_extra

require_serve_extra()
pytest.importorskip("selenium", reason="the page test drives Chromium with selenium: pip install 'hubkit[test]'")
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
if CHROMIUM is None or DRIVER is None:
    pytest.skip("no Chromium and chromedriver installed (Debian: apt-get install chromium chromium-driver)",
                allow_module_level=True)  # fmt: skip

import requests  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def _wait_text(driver, element_id: str, timeout: float = 120) -> str:
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.ID, element_id).text.strip()
                                         or d.find_element(By.ID, "error").is_displayed())  # fmt: skip
    error = driver.find_element(By.ID, "error")
    assert not error.is_displayed(), error.text
    return driver.find_element(By.ID, element_id).text.strip()


def test_upload_cat_and_see_the_top1_label(server, assets, browser, tmp_path):
    want = library_top5("shufflenet_v2_x0_5", assets.shufflenet_v2_x0_5, CAT)
    browser.get(f"{server.inference}/")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("shuf")
    assert browser.find_element(By.ID, "panel-image").is_displayed()
    assert not browser.find_element(By.ID, "panel-text").is_displayed()
    browser.find_element(By.ID, "image-input").send_keys(str(CAT))
    top1 = _wait_text(browser, "top1")
    assert top1 == next(iter(want))
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#bars .bar-label")]
    values = [float(e.text.rstrip("%")) / 100 for e in browser.find_elements(By.CSS_SELECTOR, "#bars .bar-value")]
    assert close_top5(dict(zip(labels, values)), want, tol=1e-2)
    assert browser.find_element(By.ID, "health").text == "Healthy"
    shot = tmp_path / "serve-page-image.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def test_type_sentences_and_see_the_similarity_matrix(server, assets, browser, tmp_path):
    browser.get(f"{server.inference}/")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("st")
    box = browser.find_element(By.ID, "sentences")
    box.clear()
    sentences = ["the cat sat on the mat", "a dog", "the cat sat"]
    box.send_keys("\n".join(sentences))
    browser.find_element(By.ID, "embed").click()
    WebDriverWait(browser, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#matrix td")) == 9)
    cells = [float(td.text) for td in browser.find_elements(By.CSS_SELECTOR, "#matrix td")]
    emb = library_embeddings(assets.text, sentences)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(np.array(cells).reshape(3, 3), unit @ unit.T, atol=0.006)  # shown with 2 decimals
    browser.save_screenshot(str(tmp_path / "serve-page-text.png"))


def test_upload_a_wav_and_see_the_transcript(server, assets, browser, tmp_path):
    browser.get(f"{server.inference}/")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("asr")
    browser.find_element(By.ID, "audio-input").send_keys(str(assets.wav))
    want = library_transcript(assets.asr, assets.wav)
    assert want  # the random recognizer still says something
    assert _wait_text(browser, "transcript") == want
    browser.save_screenshot(str(tmp_path / "serve-page-audio.png"))


def test_the_page_shows_json_errors(server, browser, tmp_path):
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"definitely not a PNG")
    browser.get(f"{server.inference}/")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#model option")) == 3)
    Select(browser.find_element(By.ID, "model")).select_by_value("shuf")
    browser.find_element(By.ID, "image-input").send_keys(str(bad))
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "400" in browser.find_element(By.ID, "error").text
    assert requests.get(f"{server.inference}/ping", timeout=30).json() == {"status": "Healthy"}
