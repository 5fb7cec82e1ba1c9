"""Screenshots of the playground, one per preset after training, for the README.

    python examples/playground_screenshots.py                 # into examples/images/
    python examples/playground_screenshots.py --out DIR --quick

Starts the playground's server on 127.0.0.1 (a free port), opens the page in headless
Chromium (Debian's `chromium` and `chromedriver`, driven by Selenium), and for each preset:
selects it, plays until the run has trained its steps (the seeds' own numbers of steps), pauses,
and saves the page as `playground_<preset>.png` (256 colours, to keep the files small).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Steps each preset trains before its picture (about the seeds' runs); others: DEFAULT_STEPS.
STEPS = {"000": 8000, "002": 10000, "003": 3200, "004": 10000}
DEFAULT_STEPS = 5000
# A TF Playground classic beside the presets: the spiral on every feature, 6 layers.
EXTRA = {"spiral, 6 layers": ("#dataset=spiral&noise=0&layers=8,8,8,8,6,4&activation=tanh"
                              "&features=x1,x2,x1%5E2,x2%5E2,x1x2,sin%20x1,sin%20x2"
                              "&learning_rate=0.03&batch_size=10", 20000)}


def make_driver(width: int = 1500, height: int = 1150):
    """Headless Debian Chromium through Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        raise SystemExit("needs Debian's chromium and chromedriver: "
                         "apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))


def slug(name: str) -> str:
    """A file-name part of a preset's name: '004 sine 1x60 vs 2x10' -> '004_sine_1x60_vs_2x10'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _wait(driver, script: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def _train_and_shoot(driver, steps: int, timeout: float, path: Path) -> int:
    """Play until `steps` steps (or the timeout), pause, save the page; the steps trained."""
    from PIL import Image

    driver.find_element("id", "play").click()
    _wait(driver, f"const f = window.playground.state.runs.A.frame; return f && f.step >= {steps}",
          timeout)
    driver.find_element("id", "play").click()
    _wait(driver, "return !window.playground.state.serverPlaying", 10)
    # the last frame drawn (a frame may still arrive after the pause's click)
    time.sleep(0.3)
    drawn = driver.execute_script("return window.playground.stats.framesDrawn")
    _wait(driver, f"return window.playground.stats.framesDrawn >= {drawn}", 5)
    driver.save_screenshot(str(path))
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return driver.execute_script("return window.playground.state.runs.A.frame.step")


def main(argv: list[str] | None = None) -> int:
    """Write one PNG per preset (and the extra settings); print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "images")
    parser.add_argument("--quick", action="store_true",
                        help="one preset, a few hundred steps (what the tests run)")
    args = parser.parse_args(argv)
    import microgradnet.playground as playground
    from microgradnet.playground.settings import PRESETS

    args.out.mkdir(parents=True, exist_ok=True)
    handle = playground.serve(port=0, host="127.0.0.1", open_browser=False, block=False)
    driver = make_driver()
    written = []
    try:
        from selenium.webdriver.support.ui import Select

        driver.get(handle.url)
        _wait(driver, "return window.playground && window.playground.state.runs.A.frame", 30)
        presets = list(PRESETS)[:1] if args.quick else list(PRESETS)
        for name in presets:
            steps = 300 if args.quick else STEPS.get(name[:3], DEFAULT_STEPS)
            Select(driver.find_element("id", "preset")).select_by_value(name)
            _wait(driver, "const s = window.playground.state; return s.runs.A.frame && "
                  "s.runs.A.frame.step === 0 && s.data", 30)
            path = args.out / f"playground_{slug(name)}.png"
            done = _train_and_shoot(driver, steps, 10 if args.quick else 60, path)
            written.append(path)
            print(f"{path}: {name}, {done:,} steps", flush=True)
        if not args.quick:
            for name, (fragment, steps) in EXTRA.items():
                driver.get("about:blank")
                driver.get(handle.url + fragment)
                _wait(driver, "return window.playground && window.playground.state.runs.A.frame",
                      30)
                path = args.out / f"playground_{slug(name)}.png"
                done = _train_and_shoot(driver, steps, 60, path)
                written.append(path)
                print(f"{path}: {name}, {done:,} steps", flush=True)
    finally:
        driver.quit()
        handle.close()
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
