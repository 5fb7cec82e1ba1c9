"""The playground page in a real browser: headless Chromium driven by Selenium.

The server (mg.playground.serve) runs in this process on 127.0.0.1, port 0; one browser is
shared by the module's tests, each test opening the page anew. The tests skip only where
Chromium or chromedriver is missing and the environment variable CI is unset: CI installs
them (.ci/run) and fails without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _browser_missing() -> str | None:
    for module in ("selenium", "aiohttp"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (the test extra has it)"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) or shutil.which(os.path.basename(path))):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


_MISSING = _browser_missing()
if _MISSING and not os.environ.get("CI"):
    pytest.skip(_MISSING, allow_module_level=True)
if _MISSING:  # in CI the browser tests must run: a missing browser is a failure
    raise RuntimeError(f"CI is set but the browser tests cannot run: {_MISSING}")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

import microgradnet as mg  # noqa: E402


def make_driver(download_dir: Path | None = None):
    """Headless Chromium (Debian's), its console log kept, downloads into download_dir."""
    options = Options()
    options.binary_location = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1500,1000", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if download_dir is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
        })
    service = Service(CHROMEDRIVER if os.path.exists(CHROMEDRIVER)
                      else shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


@pytest.fixture(scope="module")
def server():
    handle = mg.playground.serve(port=0, host="127.0.0.1", open_browser=False, block=False)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(downloads):
    d = make_driver(downloads)
    d.set_script_timeout(20)
    try:
        yield d
    finally:
        d.quit()


@pytest.fixture
def page(driver, server):
    """The page opened anew (a fresh session on the server), checked for script errors after."""
    driver.get("about:blank")
    driver.get_log("browser")  # drop what earlier tests left
    yield Page(driver, server.url)
    severe = [e for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not severe, severe


class Page:
    """The page under test: wait for the state it shows, read its canvases."""

    def __init__(self, driver, url: str):
        self.d = driver
        self.url = url.rstrip("/") + "/"

    def open(self, hash_: str = "") -> Page:
        self.d.get(self.url + hash_)
        self.wait("return !!(window.playground && window.playground.state.data "
                  "&& window.playground.state.runs.A.frame)", what="the first frame")
        return self

    def js(self, script: str, *args):
        return self.d.execute_script(script, *args)

    def wait(self, condition: str, timeout: float = 15.0, what: str = "") -> object:
        end = time.monotonic() + timeout
        while True:
            value = self.js(condition)
            if value:
                return value
            if time.monotonic() > end:
                errors = self.js("return window.playground ? window.playground.state.errors : []")
                raise AssertionError(f"timed out waiting for {what or condition}; "
                                     f"errors on the page: {errors}")
            time.sleep(0.05)

    def frame(self, run: str = "A") -> dict:
        return self.js(f"const f = window.playground.state.runs.{run}.frame; "
                       "return f && {step: f.step, epoch: f.epoch, train_loss: f.train_loss, "
                       "test_loss: f.test_loss, layers: (f.neurons || []).map(l => l.length)};")

    def step(self) -> int:
        return self.js("const f = window.playground.state.runs.A.frame; return f ? f.step : -1;")

    def setting(self) -> dict:
        return self.js("return window.playground.state.setting;")

    def pixels(self, canvas_id: str) -> np.ndarray:
        """The canvas's RGBA pixels, as drawn."""
        data = self.js(
            "const c = document.getElementById(arguments[0]);"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let s = ''; for (let i = 0; i < d.length; i += 8192) "
            "s += String.fromCharCode.apply(null, d.subarray(i, i + 8192));"
            "return [c.width, c.height, btoa(s)];", canvas_id)
        import base64

        w, h, b64 = data
        return np.frombuffer(base64.b64decode(b64), np.uint8).reshape(h, w, 4)

    def key(self, key: str) -> None:
        self.d.find_element(By.TAG_NAME, "body").send_keys(key)

    def click(self, element_id: str) -> None:
        self.d.find_element(By.ID, element_id).click()

    def error_text(self) -> str:
        return self.js("const e = document.getElementById('errors');"
                       "return e.hidden ? '' : e.textContent;")


SMALL = ("#dataset=circle&noise=0&train_ratio=0.5&seed=3&features=x1,x2&layers=4,2"
         "&activation=tanh&learning_rate=0.03&batch_size=10")


def test_play_trains_pause_stops_and_keys_step(page):
    """Play: the loss falls and the decision surface changes (the canvas's pixels); space
    pauses (no more steps); the right arrow trains exactly one batch."""
    page.open(SMALL)
    before = page.pixels("output-A")
    loss0 = page.frame()["train_loss"]
    assert page.step() == 0
    page.click("play")
    page.wait("const f = window.playground.state.runs.A.frame; return f && f.step >= 4000",
              what="4,000 steps of training")
    page.wait("return window.playground.stats.framesDrawn > 3")
    after = page.pixels("output-A")
    frame = page.frame()
    assert frame["train_loss"] < 0.5 * loss0, (loss0, frame)
    changed = np.abs(after[..., :3].astype(int) - before[..., :3]).max(axis=2) > 30
    assert changed.mean() > 0.05, changed.mean()
    # circle: class 1 (blue) inside the disc, class 0 (orange) on the ring
    h, w = after.shape[:2]
    rgb = after[..., :3].astype(int)
    centre = np.median(rgb[h // 2 - 8:h // 2 + 8, w // 2 - 8:w // 2 + 8], axis=(0, 1))
    corner = np.median(rgb[4:20, 4:20], axis=(0, 1))
    assert centre[2] > centre[0] + 60, centre
    assert corner[0] > corner[2] + 60, corner

    page.key(Keys.SPACE)
    page.wait("return !window.playground.state.serverPlaying", what="the pause")
    page.wait("return window.playground.state.runs.A.loss.length > 0")
    paused_at = page.step()
    time.sleep(0.4)
    assert page.step() == paused_at
    frame = page.frame()
    assert page.d.find_element(By.ID, "train-loss").text == f"{frame['train_loss']:.3f}"
    assert page.d.find_element(By.ID, "steps").text == str(paused_at)
    page.key(Keys.ARROW_RIGHT)
    page.wait(f"return window.playground.state.runs.A.frame.step === {paused_at + 1}",
              what="one more step")
    time.sleep(0.2)
    assert page.step() == paused_at + 1
    page.click("step")
    page.wait(f"return window.playground.state.runs.A.frame.step === {paused_at + 2}",
              what="one more step (button)")
    # the loss chart has drawn the run (dark pixels on its white background)
    chart = page.pixels("losschart")[..., :3]
    assert (chart.sum(axis=2) < 400).sum() > 50


def _layers(page) -> list[int]:
    return page.frame()["layers"]


def test_activation_and_layers_change_the_model(page):
    """The controls change the setting the server trains: activation, layers and units (the
    frame's heat maps per layer follow), the hash too; the editor stops at 6 layers."""
    page.open(SMALL)
    assert _layers(page) == [4, 2, 1]
    Select(page.d.find_element(By.ID, "ctl-activation")).select_by_value("relu")
    page.wait("return window.playground.state.setting.activation === 'relu' && "
              "window.playground.state.runs.A.frame", what="the relu setup")
    assert "activation=relu" in page.d.current_url
    page.click("layer-add")
    page.wait("const f = window.playground.state.runs.A.frame;"
              "return f && f.neurons && f.neurons.length === 4", what="a third hidden layer")
    assert _layers(page) == [4, 2, 2, 1]
    page.click("layer-0-add")
    page.wait("const f = window.playground.state.runs.A.frame;"
              "return f && f.neurons[0].length === 5", what="a fifth unit in layer 1")
    page.click("layer-1-remove")
    page.wait("const f = window.playground.state.runs.A.frame;"
              "return f && f.neurons[1].length === 1", what="layer 2 down to one unit")
    assert _layers(page) == [5, 1, 2, 1]
    assert page.setting()["layers"] == [5, 1, 2]
    assert page.setting()["activation"] == "relu"
    # every unit drawn: a relu net's dead units are marked, per layer a dead fraction shown
    assert page.js("return document.querySelectorAll('.deadfrac').length") == 4
    for _ in range(3):
        page.click("layer-add")
        time.sleep(0.05)
    page.wait("return window.playground.state.setting.layers.length === 6 && "
              "window.playground.state.runs.A.frame.neurons.length === 7", what="6 layers")
    assert not page.d.find_element(By.ID, "layer-add").is_enabled()
    # heat maps off: the server's frames come without them, the units drawn blank
    page.click("heatmaps")
    page.key(Keys.ARROW_RIGHT)
    page.wait("const f = window.playground.state.runs.A.frame; return f.step === 1", what="a step")
    assert page.js("return window.playground.state.runs.A.frame.neurons") is None


def test_preset_runs_a_b_side_by_side(page):
    """Seed 004's preset: a 1-D regression drawn as points and fitted curve, 1x60 (A) beside
    2x10 (B), both training, the loss curves of both in one chart."""
    page.open(SMALL)
    Select(page.d.find_element(By.ID, "preset")).select_by_value("004 sine 1x60 vs 2x10")
    page.wait("const s = window.playground.state; return s.setting.dataset === 'sine' && "
              "s.runs.A.frame && s.runs.B.frame", what="the preset's two runs")
    assert page.setting()["layers"] == [60]
    assert page.frame("B")["layers"] == [10, 10, 1]
    assert page.d.find_element(By.ID, "fig-B").is_displayed()
    assert "layers=10,10" in page.d.find_element(By.ID, "b-diff").text
    assert "b.layers=10%2C10" in page.d.current_url
    page.click("play")
    page.wait("const s = window.playground.state;"
              "return s.runs.A.loss.length > 5 && s.runs.B.loss.length > 5", what="both train")
    page.click("play")
    page.wait("return !window.playground.state.serverPlaying")
    a, b = page.frame("A"), page.frame("B")
    assert a["step"] == b["step"] > 0
    page.wait("return window.playground.stats.framesDrawn > 5")
    # run B's export: its own model (2x10)
    Select(page.d.find_element(By.ID, "export-run")).select_by_value("B")
    page.d.find_element(By.CSS_SELECTOR, "[data-export='code']").click()
    msg = page.wait("return window.playground.state.lastExport", what="run B's code")
    assert msg["run"] == "B" and msg["text"].count("Dense(10") == 2
    page.d.find_element(By.CSS_SELECTOR, "#codedialog button[value=close]").click()
    # the fitted curve (orange) on both outputs
    for run in ("A", "B"):
        px = page.pixels(f"output-{run}")[..., :3].astype(int)
        orange = (px[..., 0] > 200) & (px[..., 1] > 110) & (px[..., 1] < 190) & (px[..., 2] < 90)
        assert orange.sum() > 100, run


def test_shared_url_reproduces_the_setting(page):
    """A link copied from the address bar opens the same setting, run B included, and the
    same initial weights (the same seed)."""
    page.open("#dataset=xor&layers=3,3&activation=relu&learning_rate=0.1&seed=7"
              "&features=x1,x2,x1x2&b.optimizer=adam")
    Select(page.d.find_element(By.ID, "ctl-initializer")).select_by_value("he_normal")
    page.wait("return window.playground.state.setting.initializer === 'he_normal' && "
              "window.playground.state.runs.B.frame", what="the he_normal setup")
    url = page.d.current_url
    setting = page.setting()
    weights = page.js("return window.playground.state.runs.A.frame.weights")
    page.d.get("about:blank")
    page.d.get(url)
    page.wait("return window.playground && window.playground.state.runs.B.frame",
              what="the shared page's runs")
    assert page.setting() == setting
    assert setting["layers"] == [3, 3] and setting["seed"] == 7
    assert setting["features"] == ["x1", "x2", "x1x2"]
    assert page.js("return window.playground.state.ab.full") == {"optimizer": "adam"}
    assert page.js("return window.playground.state.runs.A.frame.weights") == weights
    assert page.d.find_element(By.ID, "ctl-initializer").get_attribute("value") == "he_normal"
    assert page.d.find_element(By.ID, "ctl-learning_rate").get_attribute("value") == "0.1"


def _download(page, downloads: Path, what: str, timeout: float = 20.0) -> Path:
    """Press an export button; the browser's download of the answer, once complete."""
    before = {p.name for p in downloads.iterdir()}
    page.js("window.playground.state.lastExport = null;")
    page.d.find_element(By.CSS_SELECTOR, f"[data-export='{what}']").click()
    msg = page.wait("return window.playground.state.lastExport", timeout, f"the {what} export")
    if what == "code":
        return msg
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        new = [p for p in downloads.iterdir() if p.name not in before
               and not p.name.endswith(".crdownload") and p.name == msg["filename"]]
        if new and new[0].stat().st_size == msg["size"]:
            return new[0]
        time.sleep(0.05)
    raise AssertionError(f"{msg['filename']} was not downloaded into {downloads}")


def test_export_code_trains_to_the_page_models_weights(page, downloads, tmp_path):
    """The exported script, run on its own, reaches the weights of the page's model (the
    downloaded .npz) bit for bit, after fit chunks and single steps."""
    page.open(SMALL.replace("seed=3", "seed=11"))
    page.click("play")
    page.wait("return window.playground.state.runs.A.frame.step >= 1500")
    page.key(Keys.SPACE)
    page.wait("return !window.playground.state.serverPlaying")
    for _ in range(3):
        n = page.step()
        page.key(Keys.ARROW_RIGHT)
        page.wait(f"return window.playground.state.runs.A.frame.step === {n + 1}")
    msg = _download(page, downloads, "code")
    assert page.d.find_element(By.ID, "codedialog").is_displayed()
    text = page.js("return document.getElementById('code').value")
    assert text == msg["text"] and "mg.manual_seed(11)" in text
    assert page.js("return document.getElementById('code-download').href").startswith("blob:")
    page.d.find_element(By.CSS_SELECTOR, "#codedialog button[value=close]").click()
    npz = _download(page, downloads, "npz")

    script = tmp_path / msg["filename"]
    script.write_text(text)
    out = tmp_path / "from_script.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(mg.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ours = mg.models.load_model(str(out)).get_weights()
    pages = mg.models.load_model(str(npz)).get_weights()
    assert len(ours) == len(pages) == 6
    for a, b in zip(ours, pages, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # ... and the page drew those weights (rounded to 5 decimals in the frame)
    kernels = page.js("return window.playground.state.runs.A.frame.weights.kernels")
    for k, w in zip(kernels, pages[0::2], strict=True):
        np.testing.assert_allclose(np.array(k), w, atol=1e-5)


def test_gif_download(page, downloads):
    """The run as a GIF, downloaded by the browser: frames that change."""
    from PIL import Image, ImageSequence

    page.open(SMALL)
    page.click("play")
    page.wait("return window.playground.state.runs.A.loss.length >= 8")
    page.click("play")
    page.wait("return !window.playground.state.serverPlaying")
    path = _download(page, downloads, "gif")
    with Image.open(path) as im:
        assert im.format == "GIF"
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    assert len(frames) >= 8
    assert frames[0].shape[0] > 100 and frames[0].shape[1] > 100
    assert not np.array_equal(frames[0], frames[-1])


def test_bad_input_shows_an_error_and_the_page_goes_on(page):
    """A bad value typed on the page, and crafted links (1,000 layers, unknown names, huge
    batch sizes, negative sizes), each get the server's error on the page, naming the field;
    the session goes on."""
    page.open(SMALL)
    lr = page.d.find_element(By.ID, "ctl-learning_rate")
    lr.clear()
    lr.send_keys("-1", Keys.TAB)
    page.wait("return document.getElementById('errors').hidden === false", what="the error")
    assert "learning_rate" in page.error_text()
    assert page.js("return document.querySelector('.field.bad [data-key]').dataset.key") == (
        "learning_rate")
    lr.clear()
    lr.send_keys("0.1", Keys.TAB)
    page.wait("return document.getElementById('errors').hidden === true", what="the error gone")
    assert page.setting()["learning_rate"] == 0.1

    crafted = {
        "layers=" + ",".join(["2"] * 1000): "layers",
        "activation=nope": "unknown activation",
        "batch_size=1000000000": "batch_size",
        "layers=-3": "layers[0]",
        "dataset=%3Cscript%3E": "unknown dataset",
        "learning_rate=abc": "learning_rate",
        "colour=blue": "unknown setting field",
    }
    for fragment, expected in crafted.items():
        page.d.get("about:blank")
        page.d.get(page.url + "#" + fragment)
        page.wait("return document.getElementById('errors').hidden === false",
                  what=f"the error for {fragment[:40]}")
        assert expected in page.error_text(), (fragment[:40], page.error_text())
    # the same socket then takes a good setting
    Select(page.d.find_element(By.ID, "ctl-activation")).select_by_value("tanh")
    page.js("window.playground.state.setting = Object.assign({}, "
            "window.playground.state.options.defaults);")
    page.click("layer-remove")
    page.wait("return window.playground.state.runs.A.frame && "
              "document.getElementById('errors').hidden", what="a good setup after errors")


def test_screenshot_script_writes_a_picture_per_preset(tmp_path):
    """examples/playground_screenshots.py (the README's pictures), in its quick form."""
    from _load import load_script
    from PIL import Image

    script = load_script(Path(__file__).resolve().parent.parent / "examples"
                         / "playground_screenshots.py", "example_playground_screenshots")
    assert script.main(["--quick", "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("playground_*.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width >= 1200 and im.height >= 800
        colours = im.convert("RGB").getcolors(1 << 16)
    assert len(colours) > 20  # a drawn page, not a blank one


def test_two_tabs_train_their_own_models(page):
    """Two tabs at once: each its own setting, model and run; one playing does not move the
    other, and a tab closed leaves the other working."""
    page.open(SMALL)
    first = page.d.current_window_handle
    page.d.switch_to.new_window("tab")
    try:
        other = Page(page.d, page.url).open("#dataset=xor&layers=3&activation=relu&seed=5")
        other.click("play")
        other.wait("return window.playground.state.runs.A.frame.step >= 1000")
        page.d.switch_to.window(first)
        assert page.step() == 0 and page.setting()["dataset"] == "circle"
        assert page.frame()["layers"] == [4, 2, 1]
        page.d.switch_to.window(page.d.window_handles[-1])
        assert other.setting()["dataset"] == "xor" and other.frame()["layers"] == [3, 1]
    finally:
        page.d.close()
        page.d.switch_to.window(first)
    page.key(Keys.ARROW_RIGHT)
    page.wait("return window.playground.state.runs.A.frame.step === 1", what="a step after")
