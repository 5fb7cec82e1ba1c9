"""One page's state: its data, its run (and the A/B partner), training and frames.

Everything here is plain Python without the web server: server.py calls it from a worker
thread. Each run draws its weights and shuffles from its own generator
(random.using_generator), under one lock, so sessions never share a random stream and a
run is reproducible to the bit; it records what it did (fit chunks, single batches) so
export.py can write a script that replays it.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import warnings
from typing import Any

import numpy as np

from .. import fastpath, training
from ..autograd import Tensor, no_grad
from ..callbacks import DeadUnitMonitor, GradientMonitor
from ..layers import Dense
from ..models import Sequential
from ..optimizers import SGD, Adagrad, Adam, RMSprop
from ..random import using_generator
from ..regularizers import L1, L2
from . import datasets
from .settings import DATA_FIELDS, LIMITS, SettingError, check, output_activation, problem

__all__ = ["TRAIN_LOCK", "Data", "Run", "build_model", "check_model_setting", "encode_grid",
           "loss_name", "make_optimizer", "measure_speed"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


# One lock for all training, frames and model building: the framework's generator is
# process-wide, and each run swaps in its own for the time it trains.
TRAIN_LOCK = threading.Lock()

OUTPUT_RES_2D, NEURON_RES_2D = 64, 32  # heat map sides (pixels of the input plane)
OUTPUT_RES_1D, NEURON_RES_1D = 200, 64  # curve samples over x
CHUNK_WORK = 200_000_000  # at most about this many multiply-adds of training per chunk


def build_model(setting: dict, in_dim: int) -> Sequential:
    """The compiled model of a setting (draws its weights from the current generator)."""
    init = setting["initializer"]
    reg: Any = None
    if setting["regularization"] == "l1":
        reg = L1(setting["regularization_rate"])
    elif setting["regularization"] == "l2":
        reg = L2(setting["regularization_rate"])
    act = setting["activation"]
    widths = [*setting["layers"], 1]
    layers = []
    for i, width in enumerate(widths):
        a = output_activation(setting) if i == len(widths) - 1 else act
        kw: dict[str, Any] = {"activation": None if a == "linear" else a,
                              "kernel_initializer": init}
        if reg is not None:
            kw["kernel_regularizer"] = reg
        if i == 0:
            kw["input_dim"] = in_dim
        layers.append(Dense(width, **kw))
    model = Sequential(layers)
    model.compile(optimizer=make_optimizer(setting), loss=loss_name(setting))
    return model


def make_optimizer(setting: dict) -> Any:
    """The setting's optimizer (momentum applies to SGD and RMSprop)."""
    lr, name = setting["learning_rate"], setting["optimizer"]
    if name == "sgd":
        return SGD(learning_rate=lr, momentum=setting["momentum"])
    if name == "adam":
        return Adam(learning_rate=lr)
    if name == "rmsprop":
        return RMSprop(learning_rate=lr, momentum=setting["momentum"])
    return Adagrad(learning_rate=lr)


def loss_name(setting: dict) -> str:
    """Binary cross-entropy for classification (labels 0/1), MSE for regression."""
    return "binary_crossentropy" if problem(setting) == "classification" else "mean_squared_error"


def check_model_setting(setting: dict) -> None:
    """What check() cannot see field by field."""
    if problem(setting) == "classification" and output_activation(setting) != "sigmoid":
        err = SettingError(f"output_activation: classification trains a sigmoid output with "
                           f"binary cross-entropy; got {setting['output_activation']!r} "
                           f"(use 'auto' or 'sigmoid')")
        err.field = "output_activation"
        raise err


def _b64(u8: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(u8, dtype=np.uint8).tobytes()).decode("ascii")


def encode_grid(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> dict:
    """A grid (or curve) of values as uint8 in base64 with the range they span:
    value = lo + (hi - lo) * byte / 255."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if lo is None or hi is None:
        lo = float(v[finite].min()) if finite.any() else 0.0
        hi = float(v[finite].max()) if finite.any() else 0.0
    span = hi - lo
    scaled = np.zeros(v.shape) if span <= 0 else (np.where(finite, v, lo) - lo) / span
    u8 = np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
    return {"lo": lo, "hi": hi, "b64": _b64(u8)}


class Data:
    """The points of a setting's data fields: all of them, and the train/test split."""

    def __init__(self, setting: dict) -> None:
        self.setting = {k: setting[k] for k in DATA_FIELDS}
        self.spec = datasets.DATASETS[setting["dataset"]]
        self.x, self.y = datasets.make(setting["dataset"], setting["points"], setting["noise"],
                                       setting["data_seed"])
        self.train, self.test = datasets.split(setting["points"], setting["train_ratio"],
                                               setting["data_seed"])

    def message(self) -> dict:
        """The "data" message: the points as [x1, x2, label] (2-D) or [x, y] (1-D)."""
        def rows(idx: np.ndarray) -> list:
            pts = np.concatenate([self.x[idx], self.y[idx, None]], axis=1)
            return np.round(pts, 5).tolist()

        y_range = [float(self.y.min()), float(self.y.max())] if len(self.y) else [0.0, 1.0]
        return {"type": "data", "dataset": self.spec.name, "problem": self.spec.problem,
                "dims": self.spec.dims, "domain": list(self.spec.domain), "y_range": y_range,
                "train": rows(self.train), "test": rows(self.test)}

    def grid(self, res: int) -> np.ndarray:
        """The points of the drawn plane (2-D: row 0 at the top, x2 = domain high; columns
        from x1 = domain low) or line (1-D), float64, as the data's x."""
        lo, hi = self.spec.domain
        s = np.linspace(lo, hi, res)
        if self.spec.dims == 1:
            return s[:, None]
        x1, x2 = np.meshgrid(s, s[::-1])
        return np.stack([x1.ravel(), x2.ravel()], axis=1)


class Run:
    """One model trained on the session's data ("A", or "B" of an A/B comparison)."""

    def __init__(self, name: str, setting: dict, data: Data) -> None:
        check_model_setting(setting)
        self.name, self.setting, self.data = name, setting, data
        dims = data.spec.dims
        x = datasets.features(data.x, setting["features"], dims)
        y = data.y.astype(np.float32)[:, None]
        self.x_train, self.y_train = x[data.train], y[data.train]
        self.x_test, self.y_test = x[data.test], y[data.test]
        self.grid_out = datasets.features(
            data.grid(OUTPUT_RES_1D if dims == 1 else OUTPUT_RES_2D), setting["features"], dims)
        # Nets beyond the editor's 6x8 (presets) get coarser heat maps: a frame stays small.
        self.neuron_res = NEURON_RES_1D if dims == 1 else (
            NEURON_RES_2D if sum(setting["layers"]) <= 64 else NEURON_RES_2D // 2)
        self.grid_neuron = datasets.features(data.grid(self.neuron_res), setting["features"],
                                             dims)
        self.gen = np.random.default_rng(setting["seed"])  # as mg.manual_seed(seed) makes it
        with TRAIN_LOCK, using_generator(self.gen):
            self.model = build_model(setting, x.shape[1])
        self.batch_size = min(setting["batch_size"], len(self.x_train))
        self.steps_per_epoch = -(-len(self.x_train) // self.batch_size)
        self.why_eager = fastpath.explain(self.model)
        self.ops: list[list] = []  # [["fit", epochs, times] | ["steps", first, count]]
        self.epochs = 0  # fit's epochs
        self.single_steps = 0  # batches stepped one at a time
        self.frames = 0
        self.diverged = False
        self.gif_frames: list[dict] = []  # kept for the GIF, thinned to stay bounded
        self.gif_stride = 1
        self._gm = GradientMonitor()
        self._dm = DeadUnitMonitor(x=self.x_train)
        for cb in (self._gm, self._dm):
            cb.set_model(self.model)
        self._gm.on_train_begin()

    # ------------------------------------------------------------------ training
    @property
    def steps(self) -> int:
        """Optimizer steps taken since the start."""
        return self.epochs * self.steps_per_epoch + self.single_steps

    @property
    def epoch(self) -> int:
        """Epochs done (single steps count by whole passes)."""
        return self.epochs + self.single_steps // self.steps_per_epoch

    def epochs_per_frame(self) -> int:
        """Whole epochs (fit's unit) closest to the setting's steps between frames, as many
        as keep a chunk within CHUNK_WORK (a pause waits for the chunk in progress)."""
        wanted = max(1, round(self.setting["steps_per_frame"] / self.steps_per_epoch))
        work = len(self.x_train) * self.model.count_params()  # multiply-adds of an epoch
        return max(1, min(wanted, CHUNK_WORK // max(work, 1)))

    def _record(self, op: list) -> None:
        last = self.ops[-1] if self.ops else None
        if op[0] == "fit" and last is not None and last[0] == "fit" and last[1] == op[1]:
            last[2] += 1
        elif op[0] == "steps" and last is not None and last[0] == "steps" and (
                last[1] + last[2] == op[1]):
            last[2] += 1
        else:
            self.ops.append(op)

    def fit(self, epochs: int) -> None:
        """`epochs` epochs of fit (the captured path when the model allows it)."""
        with TRAIN_LOCK, using_generator(self.gen):
            self.model.fit(self.x_train, self.y_train, batch_size=self.batch_size,
                           epochs=epochs, verbose=0, shuffle=True)
        self._record(["fit", epochs, 1])
        self.epochs += epochs

    def step(self) -> None:
        """One batch: the next one of an epoch in the data's order (train_on_batch)."""
        k = self.single_steps
        start = (k % self.steps_per_epoch) * self.batch_size
        rows = slice(start, start + self.batch_size)
        with TRAIN_LOCK, using_generator(self.gen):
            self.model.train_on_batch(self.x_train[rows], self.y_train[rows])
        self._record(["steps", k, 1])
        self.single_steps += 1

    def ops_full(self) -> bool:
        """Whether the record of what trained is at its cap (export could not replay more)."""
        return len(self.ops) >= LIMITS["max_recorded_ops"]

    # ------------------------------------------------------------------ frames
    def frame(self, heatmaps: bool) -> dict:
        """The "frame" message: losses, output surface, neurons, weights, monitors."""
        with TRAIN_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train_loss = self._loss(self.x_train, self.y_train)
            test_loss = self._loss(self.x_test, self.y_test)
            grad_norms = self._monitor_gradients()
            self._dm.on_epoch_end(max(self.epoch - 1, 0))  # its message names epoch + 1
            outputs = self._layer_outputs(self.x_train)
            grid_out = self.model.predict(self.grid_out, batch_size=len(self.grid_out))
            neurons = self._neurons(outputs) if heatmaps else None
        self.frames += 1
        warns = [str(w.message) for w in caught
                 if issubclass(w.category, UserWarning | RuntimeWarning)]
        if not math.isfinite(train_loss) and not self.diverged:
            self.diverged = True
            warns.append(f"training diverged: the training loss is {train_loss} at step "
                         f"{self.steps}; try a smaller learning rate (paused)")
        last = self.model.layers[-1]
        if problem(self.setting) == "classification" and last.output_activation() == "sigmoid":
            out = encode_grid(grid_out[:, 0], 0.0, 1.0)
        else:
            out = encode_grid(grid_out[:, 0])
        out["res"] = len(grid_out) if self.data.spec.dims == 1 else OUTPUT_RES_2D
        self._keep_for_gif(out, train_loss, test_loss)
        frame = {
            "type": "frame", "run": self.name, "epoch": self.epoch, "step": self.steps,
            "train_loss": train_loss, "test_loss": test_loss, "output": out,
            "neurons": neurons, "weights": self._weights(), "dead": self._dead(outputs),
            "dead_fraction": self._dead_fractions(outputs), "grad_norms": grad_norms,
            "warnings": warns, "path": "eager" if self.why_eager else "captured",
            "why_eager": self.why_eager, "diverged": self.diverged,
        }
        return frame

    def _loss(self, x: np.ndarray, y: np.ndarray) -> float | None:
        if not len(x):
            return None
        with np.errstate(all="ignore"):
            return float(self.model.evaluate(x, y, batch_size=len(x)))

    def _monitor_gradients(self) -> list[float]:
        """Each layer's gradient norm on the whole training set, through GradientMonitor (its
        thresholds and warnings); a frame is its 'epoch'."""
        model, gm = self.model, self._gm
        for values in gm.norms.values():  # bounded: the page keeps the history
            del values[:-64]
        gm.on_epoch_begin(self.frames)
        training.setup(model, build_optimizer=False)
        params = model.parameters()
        with np.errstate(all="ignore"), fastpath.training_fpenv():
            loss, _ = training.forward_loss(model, self.x_train, self.y_train, None, True)
            reg = training.regularization(model)
            total = loss if reg is None else loss + reg
            for p in params:
                p.grad = None
            total.backward()
        gm.on_batch_end(self.steps)
        for p in params:
            p.grad = None  # the next training step computes its own
        gm.on_epoch_end(max(self.epoch - 1, 0))  # a frame is its epoch; it names epoch + 1
        return [gm.norms[layer.name][-1] for layer in model.layers]

    def _layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        h = Tensor(x)
        outs = []
        with no_grad(), np.errstate(all="ignore"):
            for layer in self.model.layers:
                h = layer(h)
                outs.append(h.data)
        return outs

    def _dead(self, outputs: list[np.ndarray]) -> list[list[bool]]:
        """Per unit: a ReLU unit that outputs zero for every training sample (the rule of
        DeadUnitMonitor, unit by unit)."""
        dead = []
        for layer, out in zip(self.model.layers, outputs, strict=True):
            if layer.output_activation() == "relu" and len(out):
                dead.append(np.all(out <= 0, axis=0).tolist())
            else:
                dead.append([False] * out.shape[1])
        return dead

    def _dead_fractions(self, outputs: list[np.ndarray]) -> list[float]:
        fr = self._dm.fractions
        for values in fr.values():
            del values[:-4]
        return [fr[layer.name][-1] if layer.name in fr else 0.0 for layer in self.model.layers]

    def _neurons(self, _outputs: list[np.ndarray]) -> list[list[dict]]:
        res = self.neuron_res
        out = []
        for h in self._layer_outputs(self.grid_neuron):
            layer = []
            for j in range(h.shape[1]):
                g = encode_grid(h[:, j])
                g["res"] = res
                layer.append(g)
            out.append(layer)
        return out

    def _weights(self) -> dict:
        ks, bs = [], []
        for layer in self.model.layers:
            w = layer.get_weights()
            ks.append(np.round(w[0].astype(np.float64), 5).tolist())
            bs.append(np.round(w[1].astype(np.float64), 5).tolist() if len(w) > 1 else [])
        return {"kernels": ks, "biases": bs}

    def _keep_for_gif(self, out: dict, train_loss: float, test_loss: float | None) -> None:
        if self.frames % self.gif_stride:
            return
        self.gif_frames.append({"output": out, "epoch": self.epoch, "train_loss": train_loss,
                                "test_loss": test_loss})
        if len(self.gif_frames) >= LIMITS["max_gif_frames"]:
            # Keep every other frame and take half as many from now on: the GIF covers the
            # whole run in bounded memory.
            del self.gif_frames[1::2]
            self.gif_stride *= 2


def measure_speed(setting: dict | None = None, seconds: float = 2.0) -> dict:
    """Training steps per second on one setting (default: the page's largest net, 6x8 on
    circle): "fit", one long fit; "chunks", the playground's fit chunks without frames;
    "chunks_with_frames", with a frame (all heat maps) after each chunk, as while playing
    unpaced. Also "steps_per_frame", "frame_ms" (median time to build a frame), "captured"."""
    s = check(setting or {"dataset": "circle", "layers": [8] * 6})
    data = Data(s)
    probe = Run("A", s, data)
    per = probe.epochs_per_frame()
    frame_times: list[float] = []

    def rate(mode: str) -> float:
        run = Run("A", s, data)
        epochs, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            k = per * 20 if mode == "fit" else per
            run.fit(k)
            epochs += k
            if mode == "frames":
                t = time.perf_counter()
                run.frame(heatmaps=True)
                frame_times.append(time.perf_counter() - t)
        return epochs * run.steps_per_epoch / (time.perf_counter() - t0)

    out = {"fit": rate("fit"), "chunks": rate("chunks"), "chunks_with_frames": rate("frames")}
    out.update(steps_per_frame=per * probe.steps_per_epoch,
               frame_ms=1e3 * float(np.median(frame_times)),
               captured=probe.why_eager is None)
    return out
