"""Exports of a run: the Python script that trains the same model to the same weights, the
trained model as the framework's .npz, and the run as a GIF (or MP4)."""

from __future__ import annotations

import base64
import inspect
import io
import os
import tempfile

import numpy as np

from . import datasets
from .session import Run, loss_name
from .settings import output_activation

__all__ = ["KINDS", "code", "gif", "make", "mp4", "npz"]

KINDS = ("code", "npz", "gif", "mp4")


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def make(what: str, run: Run) -> tuple[str, str, bytes]:
    """(file name, content type, bytes) of one export of `run`."""
    stem = _stem(run)
    if what == "code":
        return f"{stem}.py", "text/x-python", code(run).encode("utf-8")
    if what == "npz":
        return f"{stem}.npz", "application/octet-stream", npz(run)
    if what == "gif":
        return f"{stem}.gif", "image/gif", gif(run)
    return f"{stem}.mp4", "video/mp4", mp4(run)


def _stem(run: Run) -> str:
    return f"playground_{run.setting['dataset']}_{run.name}"


# ---------------------------------------------------------------------- code
def _optimizer_code(s: dict) -> str:
    lr = repr(s["learning_rate"])
    if s["optimizer"] == "sgd":
        return f"mg.optimizers.SGD(learning_rate={lr}, momentum={s['momentum']!r})"
    if s["optimizer"] == "adam":
        return f"mg.optimizers.Adam(learning_rate={lr})"
    if s["optimizer"] == "rmsprop":
        return f"mg.optimizers.RMSprop(learning_rate={lr}, momentum={s['momentum']!r})"
    return f"mg.optimizers.Adagrad(learning_rate={lr})"


def _layers_code(s: dict, in_dim: int) -> list[str]:
    lines = []
    if s["regularization"] != "none":
        cls = s["regularization"].upper()
        lines.append(f"reg = mg.regularizers.{cls}({s['regularization_rate']!r})  # every kernel")
    reg = ", kernel_regularizer=reg" if s["regularization"] != "none" else ""
    lines += [f"init = {s['initializer']!r}  # every kernel; biases start at zero",
              "model = Sequential(["]
    widths = [*s["layers"], 1]
    for i, width in enumerate(widths):
        act = output_activation(s) if i == len(widths) - 1 else s["activation"]
        act_arg = "" if act == "linear" else f", activation={act!r}"
        first = f", input_dim={in_dim}" if i == 0 else ""
        lines.append(f"    Dense({width}{act_arg}{first}, kernel_initializer=init{reg}),")
    return [*lines, "])"]


def _replay_code(run: Run) -> list[str]:
    lines = []
    bs = run.batch_size
    for op in run.ops:
        if op[0] == "fit":
            _, epochs, times = op
            call = (f"model.fit(x_train, y_train, batch_size={bs}, epochs={epochs}, "
                    f"shuffle=True, verbose=0)")
            lines.append(call if times == 1 else f"for _ in range({times}):\n    {call}")
        else:
            _, first, count = op
            lines.append(
                f"for k in range({first}, {first + count}):  # single batches, in order\n"
                f"    start = (k % {run.steps_per_epoch}) * {bs}\n"
                f"    model.train_on_batch(x_train[start:start + {bs}], "
                f"y_train[start:start + {bs}])")
    return lines or ["# (the page had not trained yet)"]


def code(run: Run) -> str:
    """A runnable script, seeded, that trains the run's model to the same weights."""
    s, spec = run.setting, run.data.spec
    make_src = inspect.getsource(spec.make).rstrip()
    if spec.dims == 1:
        feats = "x = x_all.astype(np.float32)"
    else:
        cols = ", ".join(datasets.FEATURES[f] for f in s["features"])
        feats = (f"x1, x2 = x_all[:, 0], x_all[:, 1]\n"
                 f"x = np.stack([{cols}], axis=1).astype(np.float32)  # {s['features']}")
    in_dim = run.x_train.shape[1]
    lines = [
        f'"""Exported from the microgradnet playground (run {run.name}): the {s["dataset"]} '
        f'data and\nthe model as set on the page, trained as the page trained it: this script '
        f'reaches the\nsame weights, bit for bit.\n\nRun: python {_stem(run)}.py '
        f'[model.npz]  (saves the trained model when given a path)\n"""',
        "",
        "import sys",
        "",
        "import numpy as np",
        "",
        "import microgradnet as mg",
        "from microgradnet.layers import Dense",
        "from microgradnet.models import Sequential",
        "",
        "",
        make_src,
        "",
        "",
        "# The data: the same generator, noise and seed as the page; the same train/test split.",
        f"x_all, y_all = {spec.make.__name__}({s['points']}, {s['noise']!r}, "
        f"np.random.default_rng({s['data_seed']}))",
        f"order = np.random.default_rng([{s['data_seed']}, 1]).permutation({s['points']})",
        f"cut = min(max(int(round({s['points']} * {s['train_ratio']!r})), 1), {s['points']})",
        "train, test = np.sort(order[:cut]), np.sort(order[cut:])",
        feats,
        "y = y_all.astype(np.float32)[:, None]",
        "x_train, y_train, x_test, y_test = x[train], y[train], x[test], y[test]",
        "",
        f"mg.manual_seed({s['seed']})  # the initial weights and the shuffling",
        *_layers_code(s, in_dim),
        f"model.compile(optimizer={_optimizer_code(s)}, loss={loss_name(s)!r})",
        "",
        f"# What the page did: {run.epoch} epochs, {run.steps} steps.",
        *_replay_code(run),
        "",
        'print("train loss", model.evaluate(x_train, y_train, batch_size=len(x_train)))',
    ]
    if len(run.x_test):
        lines.append('print("test loss", model.evaluate(x_test, y_test, batch_size=len(x_test)))')
    lines += ["if len(sys.argv) > 1:", "    model.save(sys.argv[1])", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- model file
def npz(run: Run) -> bytes:
    """The trained model as model.save writes it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        run.model.save(path)
        with open(path, "rb") as f:
            return f.read()


# ---------------------------------------------------------------------- animation
_SIDE = 256  # pixels of a GIF frame's plot


def _colormap(u: np.ndarray) -> np.ndarray:
    """bytes 0..255 to RGB: orange (low) through white to blue (high), as the page."""
    t = (u.astype(np.float64) / 255.0)[..., None]
    low, mid, high = np.array([245, 147, 34]), np.array([232, 234, 235]), np.array([8, 119, 189])
    rgb = np.where(t < 0.5, low + (mid - low) * (t / 0.5), mid + (high - mid) * ((t - 0.5) / 0.5))
    return rgb.astype(np.uint8)


def _images(run: Run) -> list:
    from PIL import Image, ImageDraw

    data, spec = run.data, run.data.spec
    lo, hi = spec.domain
    train, ty = data.x[data.train], data.y[data.train]
    ylo, yhi = (float(data.y.min()), float(data.y.max())) if len(data.y) else (0.0, 1.0)
    if spec.dims == 1:
        pad = (yhi - ylo) * 0.1 or 1.0
        ylo, yhi = ylo - pad, yhi + pad

    def to_px(xs: np.ndarray, ys: np.ndarray) -> tuple:
        """1-D plots: data coordinates to pixels."""
        return ((xs - lo) / (hi - lo) * (_SIDE - 1), (yhi - ys) / (yhi - ylo) * (_SIDE - 1))

    images = []
    for f in run.gif_frames:
        out = f["output"]
        u = np.frombuffer(base64.b64decode(out["b64"]), dtype=np.uint8)
        if spec.dims == 2:
            res = out["res"]
            img = Image.fromarray(_colormap(u.reshape(res, res))).resize(
                (_SIDE, _SIDE), Image.NEAREST)
            draw = ImageDraw.Draw(img)
            px = (train[:, 0] - lo) / (hi - lo) * (_SIDE - 1)
            py = (hi - train[:, 1]) / (hi - lo) * (_SIDE - 1)
            colors = _colormap(np.clip((ty - ylo) / ((yhi - ylo) or 1.0) * 255, 0, 255))
            for x0, y0, c in zip(px, py, colors, strict=True):
                draw.ellipse([x0 - 2, y0 - 2, x0 + 2, y0 + 2], fill=tuple(int(v) for v in c),
                             outline=(40, 40, 40))
        else:
            img = Image.new("RGB", (_SIDE, _SIDE), (255, 255, 255))
            draw = ImageDraw.Draw(img)
            px, py = to_px(train[:, 0], ty)
            for x0, y0 in zip(px, py, strict=True):
                draw.ellipse([x0 - 1.5, y0 - 1.5, x0 + 1.5, y0 + 1.5], fill=(8, 119, 189))
            vals = out["lo"] + (out["hi"] - out["lo"]) * u / 255.0
            cx, cy = to_px(np.linspace(lo, hi, len(u)), vals)
            draw.line(list(zip(cx.tolist(), cy.tolist(), strict=True)), fill=(245, 100, 0),
                      width=2)
        loss = f["train_loss"]
        label = f"epoch {f['epoch']}"
        if loss is not None and np.isfinite(loss):
            label += f"  loss {loss:.4g}"
        draw.text((4, 4), label, fill=(0, 0, 0))
        images.append(img)
    return images


def gif(run: Run) -> bytes:
    """The frames kept while training, as an animated GIF."""
    images = _images(run)
    if not images:
        raise ValueError("no frames to animate yet: train first")
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=80,
                   loop=0)
    return buf.getvalue()


def mp4(run: Run) -> bytes:
    """The frames kept while training, as an MP4 (needs imageio-ffmpeg)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError("MP4 export needs imageio-ffmpeg (pip install imageio-ffmpeg); "
                         "GIF works without it") from None
    images = _images(run)
    if not images:
        raise ValueError("no frames to animate yet: train first")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.mp4")
        writer = imageio_ffmpeg.write_frames(path, (_SIDE, _SIDE), fps=12, quality=7,
                                             macro_block_size=16)
        writer.send(None)
        for img in images:
            writer.send(np.ascontiguousarray(np.asarray(img.convert("RGB"))))
        writer.close()
        with open(path, "rb") as f:
            return f.read()

