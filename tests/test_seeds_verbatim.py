"""The seeds' code cells as written, only their imports changed (examples/seeds_verbatim/),
run as their notebooks ran them: they make their pictures, MP4s and printed numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg

SEEDS = Path(__file__).resolve().parent.parent / "examples" / "seeds_verbatim"


def run_seed(script: str, out: Path) -> str:
    """Run the script's cells with run.py in `out` (headless); return what it printed."""
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": str(Path(mg.__file__).resolve().parent.parent)}
    result = subprocess.run([sys.executable, str(SEEDS / "run.py"), script, "--out", str(out)],
                            capture_output=True, text=True, cwd=out, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def picture(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("L"), dtype=float)


@pytest.mark.slow  # 12,000 training steps with a callback per batch, and a 160-frame MP4
def test_seed_000_single_neuron(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    out = run_seed("seed_000.py", tmp_path)
    # np.random.seed(0) and (2): Keras 1's glorot_uniform weights, and the dying ReLU.
    assert "'neural net initialized with weights w0: 0.17, w1: 0.00'" in out
    assert "neural net initialized with weigths w0: -0.22, w1: 0.00" in out
    assert "neural net weigths after training w0: -0.22, w1: 0.00" in out
    figures = sorted(tmp_path.glob("seed_000_fig*.png"))
    # data; training error; the animation's figure; batch 200's error; the dead neuron's two
    assert len(figures) == 6
    for path in figures:
        assert picture(path).std() > 10, path  # not blank
    video = tmp_path / "neuron_training.mp4"
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames == 160 and video.stat().st_size > 10_000  # 8,000 steps / save_every 50


def test_seed_002_perceptron(tmp_path):
    out = run_seed("seed_002.py", tmp_path)
    # The cells that seed numpy print the seed's own numbers.
    for printed in ("[[-0.16595599]\n [ 0.44064899]\n [-0.99977125]]",
                    "[[-0.55601366]\n [ 0.74146461]\n [-0.58656169]]",
                    "[[2.70951758]\n [0.18477801]\n [0.32502783]]",
                    "[[2001.04892878]\n [   7.6022605 ]\n [2000.41343831]]"):
        assert printed in out


def test_seed_003_setup_cells(tmp_path):
    pytest.importorskip("IPython")  # its second cell configures IPython, as written
    assert run_seed("seed_003.py", tmp_path).strip() == "Done"
