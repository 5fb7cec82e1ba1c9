"""Pictures of training: histories, prediction animations, decision boundaries, comparison
grids, gradient norms and weight histograms.

Every function returns a matplotlib Figure (or, for animations, the path it wrote). Figures
are made with matplotlib's object API, never pyplot, so nothing opens a window or blocks
training and everything works headless; a notebook shows a returned Figure as it is.
Animations are GIF (Pillow, which matplotlib brings) or MP4 (the ffmpeg binary that the
imageio-ffmpeg package ships: `pip install "microgradnet[video]"`), chosen by the extension.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["animate_decision_boundary", "animate_predictions", "plot_comparison",
           "plot_decision_boundary", "plot_gradient_norms", "plot_history", "plot_sweep",
           "plot_weights"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a canvas that renders off screen
    return fig


def _histories(history: Any) -> tuple[dict, dict, list]:
    """(per-epoch dict, per-batch dict, batches done at each epoch's end) from a History, a
    fit result or plain dicts; the last is empty when unknown."""
    if isinstance(history, Mapping) and "history" in history:
        return (dict(history["history"]), dict(history.get("batch_history", {})),
                list(history.get("epoch_ends", [])))
    if isinstance(history, Mapping):
        return dict(history), {}, []
    return (dict(getattr(history, "history", {})), dict(getattr(history, "batch_history", {})),
            list(getattr(history, "epoch_ends", [])))


def _epoch_ends(n_epochs: int, n_batches: int, recorded: list) -> np.ndarray:
    """The x of each epoch's end on the batch axis: the recorded counts (an epoch stopped
    early is shorter), else evenly spread; 1..n on an epoch axis without batches."""
    if not n_batches:
        return np.arange(1, n_epochs + 1, dtype=float)
    if len(recorded) == n_epochs:
        return np.asarray(recorded, dtype=float)
    return np.arange(1, n_epochs + 1) * (n_batches / n_epochs)


def _plot_series(ax, x: np.ndarray, values: Sequence[float], **style: Any) -> None:
    # A series recorded for fewer epochs (e.g. validation that began later) takes the x of
    # its own epochs, the last ones, instead of failing on a length mismatch.
    values = list(values)
    ax.plot(x[len(x) - len(values):] if len(values) <= len(x) else np.arange(1, len(values) + 1),
            values, **style)


def plot_history(history: Any, metrics: Sequence[str] | None = None):
    """Loss per batch and per epoch (and val_loss), then one panel per metric."""
    epochs, batches, recorded_ends = _histories(history)
    names = list(metrics) if metrics is not None else [
        k for k in epochs if k != "loss" and not k.startswith("val_") and k != "learning_rate"]
    fig = _figure(4.5 * (1 + len(names)), 3.2)
    axes = fig.subplots(1, 1 + len(names), squeeze=False)[0]
    ax = axes[0]
    batch_loss = batches.get("loss", [])
    n_epochs = len(epochs.get("loss", []))
    if batch_loss:
        ax.plot(np.arange(1, len(batch_loss) + 1), batch_loss, color="tab:blue", alpha=0.35,
                linewidth=0.8, label="loss (batch)")
    if n_epochs:
        # Epoch values sit at the epoch's end on the batch axis, validation with them.
        steps = _epoch_ends(n_epochs, len(batch_loss), recorded_ends)
        ax.plot(steps, epochs["loss"], color="tab:blue", marker="o", markersize=3,
                label="loss (epoch)")
        if "val_loss" in epochs:
            _plot_series(ax, steps, epochs["val_loss"], color="tab:orange", marker="o",
                         markersize=3, label="val_loss")
    ax.set_xlabel("training step (batch)" if batch_loss else "epoch")
    ax.set_ylabel("loss")
    ax.set_title("training error")
    if _positive(batch_loss or epochs.get("loss", [])):
        ax.set_yscale("log")
    ax.legend(loc="best", fontsize=8)
    for ax, name in zip(axes[1:], names, strict=True):
        x = np.arange(1, len(epochs.get(name, [])) + 1)
        ax.plot(x, epochs.get(name, []), marker="o", markersize=3, label=name)
        if f"val_{name}" in epochs:
            _plot_series(ax, x, epochs[f"val_{name}"], marker="o", markersize=3,
                         label=f"val_{name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend(loc="best", fontsize=8)
    return fig


def _positive(values: Sequence[float]) -> bool:
    arr = np.asarray(values, dtype=float)
    return arr.size > 0 and bool(np.all(arr[np.isfinite(arr)] > 0)) and (
        np.nanmax(arr) / max(np.nanmin(arr), 1e-300) > 20)


class _GifFrames:
    """Frames kept as Pillow images, written as one looping GIF at the end."""

    def __init__(self, path: str, size: tuple[int, int], fps: int) -> None:
        self.path, self.fps, self.frames = path, fps, []

    def send(self, rgba: np.ndarray) -> None:
        from PIL import Image

        self.frames.append(Image.fromarray(np.array(rgba)))

    def close(self) -> None:
        if self.frames:
            self.frames[0].save(self.path, save_all=True, append_images=self.frames[1:],
                                duration=int(1000 / self.fps), loop=0)


class _Mp4Frames:
    """Frames piped to imageio-ffmpeg's ffmpeg, encoded as H.264 (yuv420p: plays anywhere)."""

    def __init__(self, path: str, size: tuple[int, int], fps: int) -> None:
        import imageio_ffmpeg

        self.writer = imageio_ffmpeg.write_frames(
            path, size, fps=fps, codec="libx264", pix_fmt_in="rgba", pix_fmt_out="yuv420p",
            macro_block_size=2, ffmpeg_log_level="error")
        self.writer.send(None)  # starts ffmpeg

    def send(self, rgba: np.ndarray) -> None:
        self.writer.send(rgba)

    def close(self) -> None:
        self.writer.close()


def _frame_sink(path: str) -> type:
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        return _GifFrames
    if ext == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "writing .mp4 needs the ffmpeg binary of the imageio-ffmpeg package: "
                "pip install \"microgradnet[video]\" (or save a .gif instead)"
            ) from exc
        return _Mp4Frames
    raise ValueError(f"unknown animation format {ext!r}: use .gif or .mp4")


def _even_inches(inches: float, dpi: int) -> float:
    """A size in inches that Agg renders as an even number of pixels (H.264 in yuv420p needs
    an even width and height) and no fewer than that (Agg truncates)."""
    pixels = int(inches * dpi) // 2 * 2
    size = pixels / dpi
    while int(size * dpi) < pixels:
        size = float(np.nextafter(size, np.inf))
    return size


def _save_animation(fig, update, frames: int, path: str, fps: int, dpi: int = 80,
                    animated: Sequence[Any] = ()) -> str:
    """Render frames 0..frames-1 (update(i) sets frame i's data) into path, .gif or .mp4.

    The figure is laid out and drawn once; each frame then restores that background and
    draws only the `animated` artists on it (all of them when none are given), straight
    from the Agg canvas's buffer to the file: a savefig per frame, as matplotlib's writers
    do, redraws the whole figure and was most of the time.
    """
    sink_type = _frame_sink(path)
    fig.set_dpi(dpi)
    fig.set_size_inches(*(_even_inches(float(n), dpi) for n in fig.get_size_inches()))
    canvas = fig.canvas
    update(0)
    canvas.draw()  # lays the figure out, once
    fig.set_layout_engine("none")
    for artist in animated:
        artist.set_animated(True)  # left out of the background
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox) if animated else None
    sink = sink_type(path, canvas.get_width_height(), fps)
    try:
        for i in range(frames):
            update(i)
            if animated:
                canvas.restore_region(background)
                for artist in animated:
                    fig.draw_artist(artist)
            else:
                canvas.draw()
            sink.send(np.asarray(canvas.buffer_rgba()))
    finally:
        sink.close()
    return path


def animate_predictions(recorder: Any, x: Any, y: Any, path: str | os.PathLike, fps: int = 15,
                        title: str | None = None) -> str:
    """The seeds' animation: the data and the prediction line at every snapshot of a
    PredictionRecorder, with the training error curve beside it advancing frame by frame."""
    preds = [np.asarray(p).reshape(-1) for p in recorder.predictions]
    if not preds:
        raise ValueError("the recorder has no predictions: train with it in callbacks first")
    xs = np.asarray(x, dtype=float).reshape(len(preds[0]), -1)
    if xs.shape[1] != 1:
        raise ValueError(f"animate_predictions draws 1-feature inputs, x has {xs.shape[1]}")
    xs = xs[:, 0]
    ys = np.asarray(y, dtype=float).reshape(-1)
    order = np.argsort(xs)
    losses = np.asarray(recorder.losses, dtype=float)
    fig = _figure(9, 3.2)
    left, right = fig.subplots(1, 2)
    left.plot(xs[order], ys[order], ".", color="tab:gray", markersize=3, label="data")
    (line,) = left.plot(xs[order], preds[0][order], color="tab:red", linewidth=2,
                        label="prediction")
    lo, hi = min(ys.min(), min(p.min() for p in preds)), max(ys.max(), max(p.max() for p in preds))
    pad = 0.05 * (hi - lo or 1)
    left.set_ylim(lo - pad, hi + pad)
    legend = left.legend(loc="upper left", fontsize=8)
    left.set_title(title or "predictions while training")
    right.set_title("training error")
    right.set_xlabel("training step (batch)")
    if losses.size:
        right.plot(np.arange(1, losses.size + 1), losses, color="tab:blue", alpha=0.15)
        if _positive(losses):
            right.set_yscale("log")
    (trace,) = right.plot([], [], color="tab:blue")
    (dot,) = right.plot([], [], "o", color="tab:red")
    label = left.text(0.98, 0.04, "", transform=left.transAxes, ha="right", fontsize=8)

    steps = np.arange(1, losses.size + 1)

    def update(i: int):
        line.set_ydata(preds[i][order])
        step = recorder.steps[i]
        label.set_text(f"step {step}")
        if losses.size and step:
            trace.set_data(steps[:step], losses[:step])
            dot.set_data([step], [losses[step - 1]])
        return line, trace, dot, label

    # The legend is drawn after the prediction line, to stay on top of it.
    return _save_animation(fig, update, len(preds), os.fspath(path), fps,
                           animated=(line, label, legend, trace, dot))


def _grid(X: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.1 * (hi - lo + 1e-9)
    gx, gy = np.meshgrid(np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution),
                         np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution))
    return gx, gy, np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)


def _class_surface(model: Any, points: np.ndarray, shape: tuple) -> tuple[np.ndarray, str]:
    """The model's answer over the grid and what it is: the probability of class 1 for one
    output unit, else the arg max over the classes."""
    out = model.predict(points)
    if out.ndim == 1 or out.shape[1] == 1:
        return out.reshape(shape), "P(class 1)"
    return np.argmax(out, axis=1).reshape(shape).astype(float), "predicted class"


def _draw_boundary(ax, gx, gy, surface, X, y, levels, labels: tuple[str, str]):
    """Draw the regions and the data on ax; return the regions' contour set."""
    regions = ax.contourf(gx, gy, surface, levels=levels, cmap="RdBu_r", alpha=0.6)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", linewidths=0.3, s=12)
    ax.set_xlim(gx.min(), gx.max())
    ax.set_ylim(gy.min(), gy.max())
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    return regions


def plot_decision_boundary(model: Any, X: Any, y: Any, resolution: int = 200,
                           title: str | None = None, xlabel: str = "x[:, 0]",
                           ylabel: str = "x[:, 1]"):
    """A 2-feature classifier's decision regions with the data on top, the features on the
    axes and the predicted probability (or class) on a colorbar."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2 features, X has shape {X.shape}")
    gx, gy, points = _grid(X, resolution)
    surface, meaning = _class_surface(model, points, gx.shape)
    fig = _figure(5.2, 4)
    ax = fig.subplots()
    regions = _draw_boundary(ax, gx, gy, surface, X, np.asarray(y).reshape(-1),
                             np.linspace(0, 1, 11) if surface.max() <= 1 else None,
                             (xlabel, ylabel))
    fig.colorbar(regions, ax=ax, label=meaning)
    ax.set_title(title or "decision boundary")
    return fig


def animate_decision_boundary(model: Any, recorder: Any, X: Any, y: Any,
                              path: str | os.PathLike, fps: int = 10,
                              resolution: int = 100, xlabel: str = "x[:, 0]",
                              ylabel: str = "x[:, 1]") -> str:
    """The decision regions at every snapshot of a WeightRecorder (the model's weights are
    put back as they were afterwards), with axis labels and a colorbar."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    X = np.asarray(X, dtype=np.float32)
    if not recorder.weights:
        raise ValueError("the recorder has no weights: train with it in callbacks first")
    gx, gy, points = _grid(X, resolution)
    current = model.get_weights()
    surfaces = []
    meaning = ""
    try:
        for snapshot in recorder.weights:
            model.set_weights(snapshot)
            surface, meaning = _class_surface(model, points, gx.shape)
            surfaces.append(surface)
    finally:
        model.set_weights(current)
    fig = _figure(5.2, 4)
    ax = fig.subplots()
    labels = np.asarray(y).reshape(-1)
    top = max(1.0, max(float(s.max()) for s in surfaces))
    # One colorbar for every frame (each frame redraws the axes, not the bar).
    fig.colorbar(ScalarMappable(Normalize(0, top), cmap="RdBu_r"), ax=ax,
                 label=meaning)

    def update(i: int):
        ax.clear()
        _draw_boundary(ax, gx, gy, surfaces[i], X, labels, np.linspace(0, 1, 11),
                       (xlabel, ylabel))
        ax.set_title(f"decision boundary, step {recorder.steps[i]}")
        return ()

    return _save_animation(fig, update, len(surfaces), os.fspath(path), fps)


def plot_comparison(histories: Mapping[Any, Any], metrics: Sequence[str] = ("loss", "accuracy")):
    """The seed-003 grid: one row per metric; with (line, column) tuple keys such as
    (activation, initialization), one column per second element, one line per first."""
    keys = list(histories)
    if not keys:
        raise ValueError("plot_comparison needs at least one history")
    columns = sorted({k[1] for k in keys}, key=str) if all(
        isinstance(k, tuple) and len(k) == 2 for k in keys) else [None]
    metrics = [m for m in metrics if any(m in _histories(h)[0] for h in histories.values())]
    fig = _figure(4.2 * len(columns), 3 * len(metrics))
    axes = fig.subplots(len(metrics), len(columns), squeeze=False, sharex=True, sharey="row")
    for j, column in enumerate(columns):
        for key in keys:
            if column is not None and key[1] != column:
                continue
            epochs, *_ = _histories(histories[key])
            name = str(key[0] if column is not None else key)
            for i, metric in enumerate(metrics):
                values = epochs.get(metric, [])
                axes[i][j].plot(np.arange(1, len(values) + 1), values, label=name)
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            ax.set_title(f"{metric}" + (f" ({column})" if column is not None else ""))
            ax.legend(loc="best", fontsize=8)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
    return fig


def plot_gradient_norms(monitor: Any):
    """The gradient norm of each layer at every batch (log scale), from a GradientMonitor."""
    fig = _figure(6, 3.5)
    ax = fig.subplots()
    for name, norms in monitor.norms.items():
        values = np.asarray(norms, dtype=float)
        ax.plot(np.arange(1, values.size + 1), np.where(values > 0, values, np.nan), label=name,
                linewidth=1)
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch)")
    ax.set_ylabel("gradient norm")
    ax.set_title("gradient norms by layer")
    ax.legend(loc="best", fontsize=8)
    return fig


def plot_weights(recorder: Any, snapshots: Sequence[int] = (0, -1), bins: int = 30):
    """Histograms of every weight array at the given snapshots of a WeightRecorder."""
    if not recorder.weights:
        raise ValueError("the recorder has no weights: train with it in callbacks first")
    names = recorder.names
    fig = _figure(3.2 * len(names), 3)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for k, (ax, name) in enumerate(zip(axes, names, strict=True)):
        for s in snapshots:
            values = np.asarray(recorder.weights[s][k]).ravel()
            ax.hist(values, bins=bins, alpha=0.5, label=f"step {recorder.steps[s]}")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="best", fontsize=7)
    return fig


# --------------------------------------------------------------------------- sweeps

_SWEEP_KINDS = ("boundary", "curve", "loss", "heatmap")


def _axis_values(results: Any, key: str | None) -> list:
    """The values of config key `key` over the runs, in order of first appearance."""
    if key is None:
        return [None]
    values = [run.config[key] for run in results if key in run.config]
    if not values:
        known = list(dict.fromkeys(k for run in results for k in run.config))
        raise ValueError(f"plot_sweep: no run has config key {key!r}; keys: {known}")
    out: list = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _runs_at(results: Any, row: str | None, r: Any, col: str | None, c: Any) -> list:
    return [run for run in results if (row is None or run.config.get(row) == r)
            and (col is None or run.config.get(col) == c)]


def _run_label(run: Any, varying: list[str]) -> str:
    return ", ".join(f"{k}={run.config.get(k)}" for k in varying) or "run"


def _panel_title(row: str | None, r: Any, col: str | None, c: Any) -> str:
    parts = [f"{k}={v}" for k, v in ((row, r), (col, c)) if k is not None]
    return ", ".join(parts)


def _trained_model(results: Any, run: Any):
    """The run's model, rebuilt by results.build and given its trained weights."""
    if results.build is None:
        raise ValueError("plot_sweep: these results have no build function to remake the "
                         "models (results loaded from disk): mg.sweep.load(path, build=build)")
    if run.weights is None:
        raise ValueError("plot_sweep: the runs kept no weights: sweep with keep_weights=True")
    model = results.build(dict(run.config))
    model.set_weights(run.weights)
    return model


def plot_sweep(results: Any, row: str | None = None, col: str | None = None,
               kind: str = "loss", hue: str | None = None, metric: str = "loss",
               x: Any = None, y: Any = None, resolution: int = 100):
    """A sweep's runs in a grid of panels, one row per value of config key `row`, one column
    per value of `col`: "boundary" (decision regions of 2-feature classifiers), "curve"
    (fitted 1-D curves over the data), "loss" (loss curves, one line per value of `hue` or
    per run) or "heatmap" (`metric` over row x col, averaged over the other keys)."""
    if kind not in _SWEEP_KINDS:
        raise ValueError(f"plot_sweep: unknown kind {kind!r}; known: {list(_SWEEP_KINDS)}")
    if not len(results):
        raise ValueError("plot_sweep: the results hold no runs")
    rows, cols = _axis_values(results, row), _axis_values(results, col)
    if kind == "heatmap":
        return _sweep_heatmap(results, row, rows, col, cols, metric)
    X = np.asarray(results.x if x is None else x)
    Y = None if (results.y if y is None else y) is None else np.asarray(
        results.y if y is None else y)
    if kind in ("boundary", "curve") and X.ndim == 0:
        raise ValueError(f"plot_sweep: kind {kind!r} draws the data: pass x= and y=")
    keys = [k for k in results.config_keys() if k not in (row, col, hue)]
    varying = [k for k in keys if len({repr(run.config.get(k)) for run in results}) > 1]
    fig = _figure(3.4 * len(cols) + (1.2 if kind == "boundary" else 0), 2.9 * len(rows))
    axes = fig.subplots(len(rows), len(cols), squeeze=False, sharex=kind != "loss",
                        sharey=kind == "curve")
    if kind == "boundary":
        if X.ndim != 2 or X.shape[1] != 2:
            raise ValueError(f"plot_sweep: 'boundary' needs 2 features, x has shape {X.shape}")
        gx, gy, points = _grid(X.astype(np.float32), resolution)
    regions = None
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            runs = _runs_at(results, row, r, col, c)
            ax.set_title(_panel_title(row, r, col, c) or "all runs", fontsize=9)
            if kind == "loss":
                _sweep_losses(ax, runs, hue, varying)
                continue
            run = next((rn for rn in runs if rn.status == "ok"), None)
            if run is None:
                ax.text(0.5, 0.5, runs[0].status if runs else "no run", ha="center",
                        va="center", transform=ax.transAxes)
                continue
            model = _trained_model(results, run)
            if kind == "boundary":
                surface, meaning = _class_surface(model, points, gx.shape)
                regions = _draw_boundary(ax, gx, gy, surface, X, Y.reshape(-1),
                                         np.linspace(0, 1, 11), ("x[:, 0]", "x[:, 1]"))
            else:
                _sweep_curve(ax, model, X, Y)
            extra = _run_label(run, varying) if len(runs) > 1 or varying else ""
            ax.text(0.02, 0.98, f"{extra}\nloss {run.loss:.3g}".strip(), fontsize=7,
                    va="top", transform=ax.transAxes,
                    bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0})
    if regions is not None:
        fig.colorbar(regions, ax=axes, label=meaning, shrink=0.8)
    return fig


def _sweep_curve(ax, model: Any, X: np.ndarray, Y: np.ndarray | None) -> None:
    xs = X.reshape(len(X), -1)
    if xs.shape[1] != 1:
        raise ValueError(f"plot_sweep: 'curve' needs 1 feature, x has shape {X.shape}")
    if Y is not None:
        ax.scatter(xs[:, 0], np.asarray(Y).reshape(len(X), -1)[:, 0], s=4, color="0.6",
                   label="data")
    grid = np.linspace(xs.min(), xs.max(), 300).reshape(-1, 1).astype(X.dtype)
    ax.plot(grid[:, 0], model.predict(grid).reshape(len(grid), -1)[:, 0], color="tab:red",
            label="model")


def _sweep_losses(ax, runs: list, hue: str | None, varying: list[str]) -> None:
    import matplotlib as mpl

    hues = _axis_values(runs, hue) if hue is not None and runs else [None]
    colors = mpl.colormaps["tab10"]
    positive = True
    for run in runs:
        losses = run.history.get("loss", [])
        if not losses:
            continue
        ends = np.asarray(run.epoch_ends if len(run.epoch_ends) == len(losses)
                          else np.arange(1, len(losses) + 1), dtype=float)
        k = hues.index(run.config.get(hue)) if hue is not None else None
        label = (f"{hue}={run.config.get(hue)}" if hue is not None
                 else _run_label(run, varying))
        ax.plot(ends, losses, color=colors(k % 10) if k is not None else None,
                linewidth=1, alpha=0.8, label=label)
        positive = positive and _positive(losses)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one legend entry per hue
    if unique and len(unique) <= 12:
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    if positive and handles:
        ax.set_yscale("log")
    ax.set_xlabel("training step (batch)")
    ax.set_ylabel("loss")


def _sweep_heatmap(results: Any, row: str | None, rows: list, col: str | None, cols: list,
                   metric: str):
    if row is None or col is None:
        raise ValueError("plot_sweep: kind 'heatmap' needs row= and col= (two config keys)")
    table = np.full((len(rows), len(cols)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            values = [run.get(metric) for run in _runs_at(results, row, r, col, c)
                      if run.status == "ok"]
            values = [float(v) for v in values if isinstance(v, (int, float))]
            if values:
                table[i, j] = float(np.mean(values))
    fig = _figure(1.6 + 1.3 * len(cols), 1.2 + 0.8 * len(rows))
    ax = fig.subplots()
    image = ax.imshow(table, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols])
    ax.set_yticks(range(len(rows)), [str(r) for r in rows])
    ax.set_xlabel(col)
    ax.set_ylabel(row)
    finite = table[np.isfinite(table)]
    middle = float(finite.mean()) if finite.size else 0.0
    for i in range(len(rows)):
        for j in range(len(cols)):
            text = "failed" if np.isnan(table[i, j]) else f"{table[i, j]:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if np.isnan(table[i, j]) or table[i, j] < middle else "k")
    fig.colorbar(image, ax=ax, label=metric)
    ax.set_title(f"{metric} (mean over the other keys)")
    return fig
