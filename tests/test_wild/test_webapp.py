"""``srfer web``: the page's logic without a browser, and the page in headless Chromium (selenium, system driver)."""

from __future__ import annotations

import os
import shutil
import socket
import time

import cv2
import numpy as np
import pytest
from eval_fixtures import tiny_test_setup
from fer_fixtures import TINY_CLASSES

from srfer_plugin.face_scenes import composed_scene

os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')
pytest.importorskip('gradio', reason='the web page needs the web extra: pip install -e ".[web]"')

from srfer_plugin import webapp  # noqa: E402

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver') or '/usr/bin/chromedriver'
CHROME_FLAGS = ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1280,900')


@pytest.fixture(scope='module')
def page(tiny_fer_root, tmp_path_factory):
    work = tmp_path_factory.mktemp('web')
    opt_path, _ = tiny_test_setup(str(work), tiny_fer_root)
    predictor = webapp.load_predictor(webapp.build_parser().parse_args(['--opt', opt_path, '--device', 'cpu']))
    detector, _ = webapp._detector(40)
    return webapp.FacePage(predictor, detector, lr_size=8)


def test_no_model_page_explains_how_to_get_one(capsys):
    assert webapp.load_predictor(webapp.build_parser().parse_args([])) is None
    assert 'srfer-demo --quick' in webapp.NO_MODEL_HELP and 'net_g_latest.pth' in webapp.NO_MODEL_HELP
    webapp.build_app(None)  # builds without a model


def test_analyse_a_face_crop_and_a_photo(page):
    face = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    annotated, gallery, label, summary = page.analyse(face, 'face crop')
    assert annotated.shape == face.shape and len(gallery) == 4  # LR, bicubic, SR-FER, attention
    assert [img.shape for img, _ in gallery] == [(32, 32, 3)] * 4
    assert set(label) == set(TINY_CLASSES) and sum(label.values()) == pytest.approx(1.0, abs=1e-4)
    assert 'one face crop' in summary
    if page.detector is not None:
        scene, _ = composed_scene((48, 96), height=240, width=320, seed=0)
        _, gallery, _, summary = page.analyse(np.ascontiguousarray(scene[..., ::-1]), 'photo')
        assert '2 face(s) detected' in summary and len(gallery) == 8
        _, gallery, label, summary = page.analyse(np.zeros((60, 60, 3), np.uint8), 'photo')
        assert gallery == [] and label is None and 'no face found' in summary
    assert page.analyse(None)[3] == 'Drop a photo or a face first.'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CHROMIUM or not os.path.exists(CHROMEDRIVER), reason='no chromium/chromedriver (Debian: '
                    'apt-get install chromium chromium-driver)')  # fmt: skip
def test_page_in_headless_chromium(page, tmp_path):
    webdriver = pytest.importorskip('selenium.webdriver', reason='the browser test needs selenium (dev extra)')
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / 'photo.png'
    scene, _ = composed_scene((64,), height=200, width=240, seed=1)
    cv2.imwrite(str(photo), scene)
    port = _free_port()
    app = webapp.build_app(page)
    app.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        start = time.time()
        driver.get(f'http://127.0.0.1:{port}/')
        wait = WebDriverWait(driver, 25)
        upload = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#input-image input[type=file]'))
        upload[0].send_keys(str(photo))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#input-image img'))
        driver.find_element(By.CSS_SELECTOR, '#analyse').click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#faces img')) >= 4)
        expression = driver.find_element(By.CSS_SELECTOR, '#expression').text
        assert any(name in expression for name in TINY_CLASSES), expression
        assert driver.find_elements(By.CSS_SELECTOR, '#annotated img')
        assert 'face' in driver.find_element(By.CSS_SELECTOR, '#summary').text
        driver.save_screenshot(str(tmp_path / 'page.png'))
        assert time.time() - start < 30
    finally:
        driver.quit()
        app.close()
