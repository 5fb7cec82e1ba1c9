"""MP4s as the seeds write them: matplotlib's ffmpeg writer finds imageio-ffmpeg's binary
(only where matplotlib has none and the user chose none), and mg.viz's fast frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import callbacks as cb
from microgradnet import viz
from microgradnet.layers import Activation, Dense
from microgradnet.models import Sequential

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

KEY = "animation.ffmpeg_path"
SHOW = (f"import sys, matplotlib, matplotlib.animation as animation; "
        f"print(animation.writers.is_available('ffmpeg'), matplotlib.rcParams[{KEY!r}], "
        f"any(type(f).__name__ == '_AfterMatplotlibImport' for f in sys.meta_path))")


def gif_frames(path) -> list[np.ndarray]:
    from PIL import Image

    image = Image.open(path)
    frames = []
    for i in range(image.n_frames):
        image.seek(i)
        frames.append(np.asarray(image.convert("RGB"), dtype=np.int16))
    return frames


def _run(code: str, tmp_path: Path, path_dirs: tuple[Path, ...] = ()) -> list[str]:
    """Run code in a fresh interpreter whose PATH holds only path_dirs (no system ffmpeg)."""
    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).resolve().parent.parent),
           "PATH": os.pathsep.join(str(d) for d in path_dirs) or str(tmp_path)}
    env.pop("IMAGEIO_FFMPEG_EXE", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("order", ["matplotlib first", "microgradnet first"])
def test_the_ffmpeg_writer_finds_imageio_ffmpeg(tmp_path, order):
    first = ("import matplotlib.pyplot; import microgradnet" if order == "matplotlib first"
             else "import microgradnet; import matplotlib.pyplot")
    available, path, hook_left = _run(f"{first}; {SHOW}", tmp_path)
    assert available == "True" and path == imageio_ffmpeg.get_ffmpeg_exe()
    assert hook_left == "False"  # the import hook removed itself


def test_the_seeds_animation_cell_writes_an_mp4(tmp_path):
    code = """
import numpy as np, matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import microgradnet
import matplotlib.animation as animation
Writer = animation.writers['ffmpeg']
writer = Writer(fps=15, metadata=dict(artist='Me'), bitrate=1800)
fig = plt.figure(figsize=(5, 2.5))
line, = plt.plot(np.arange(5), np.zeros(5))
ani = animation.FuncAnimation(fig, lambda i: line.set_ydata(np.full(5, i)) or (line,),
                              frames=4, blit=True)
ani.save('neuron_training.mp4', writer=writer)
"""
    _run(code, tmp_path)
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "neuron_training.mp4"))
    assert frames == 4


def test_a_users_ffmpeg_path_is_left_alone(tmp_path):
    code = (f"import matplotlib; matplotlib.rcParams[{KEY!r}] = '/opt/my/ffmpeg'; "
            f"import microgradnet; {SHOW}")
    assert _run(code, tmp_path)[1] == "/opt/my/ffmpeg"
    code = f"import microgradnet, matplotlib; matplotlib.rcParams[{KEY!r}] = 'mine'; {SHOW}"
    assert _run(code, tmp_path)[1] == "mine"  # set after ours: the user's wins


def test_an_ffmpeg_on_the_path_is_left_alone(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").write_text("#!/bin/sh\n")
    (bin_dir / "ffmpeg").chmod(0o755)
    assert _run(f"import microgradnet; {SHOW}", tmp_path, (bin_dir,))[:2] == ["True", "ffmpeg"]


def test_without_imageio_ffmpeg_nothing_changes(tmp_path):
    code = f"import sys; sys.modules['imageio_ffmpeg'] = None; import microgradnet; {SHOW}"
    assert _run(code, tmp_path) == ["False", "ffmpeg", "False"]


def test_animation_frames_match_a_full_redraw(tmp_path):
    # Each frame draws the moving artists on the saved background: it must look like the
    # whole figure drawn afresh (nothing of the frame before left behind).
    x = np.linspace(0, 2, 200).reshape(-1, 1)
    y = np.maximum(0, 2 * (x - 1))
    mg.manual_seed(0)
    model = Sequential([Dense(1, input_dim=1), Activation("relu")])
    model.compile(optimizer="sgd", loss="mse")
    rec = cb.PredictionRecorder(x, every=40)
    model.fit(x, y, epochs=40, batch_size=50, verbose=0, callbacks=[rec])
    fast = gif_frames(viz.animate_predictions(rec, x, y, tmp_path / "fast.gif"))
    original = viz._save_animation
    try:
        viz._save_animation = lambda *a, animated=(), **k: original(*a, **k)  # full redraws
        full = gif_frames(viz.animate_predictions(rec, x, y, tmp_path / "full.gif"))
    finally:
        viz._save_animation = original
    assert len(fast) == len(full) == len(rec.predictions)
    for a, b in zip(fast, full, strict=True):
        assert np.mean(np.abs(a - b) > 40) < 0.002  # a few pixels where antialiasing differs
