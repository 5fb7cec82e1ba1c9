"""What fit prints (issue 12, item 7): Keras 3's layout, on a terminal and off it."""

from __future__ import annotations

import io
import os
import re
import shutil
import sys

import numpy as np
import pytest

import microgradnet as mg
from microgradnet import callbacks as cb
from microgradnet.layers import Dense
from microgradnet.models import Sequential

RNG = np.random.default_rng(5)
X = RNG.normal(size=(64, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
YC = (X[:, :1] > 0).astype(np.float32)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP_TIME = r"\d+(s|ms|us)/step"


class FakeStream(io.StringIO):
    """stdout as fit sees it: a terminal or not, in some encoding."""

    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self.tty, self._encoding = tty, encoding

    def isatty(self) -> bool:
        return self.tty

    @property
    def encoding(self) -> str:
        return self._encoding


@pytest.fixture
def terminal(monkeypatch):
    """Make stdout a FakeStream of the given kind and the terminal `columns` wide."""

    def make(tty: bool, columns: int = 80, encoding: str = "utf-8") -> FakeStream:
        stream = FakeStream(tty, encoding)
        monkeypatch.setattr(sys, "stdout", stream)
        monkeypatch.setattr(shutil, "get_terminal_size",
                            lambda fallback=(80, 24): os.terminal_size((columns, 24)))
        monkeypatch.setattr(cb.ProgbarLogger, "interval", 0.0)  # draw at every batch
        return stream

    return make


def regressor(**compile_args) -> Sequential:
    mg.manual_seed(0)
    model = Sequential([Dense(8, activation="tanh", input_dim=3), Dense(1)])
    model.compile(optimizer=mg.optimizers.Adam(learning_rate=0.05), loss="mse", **compile_args)
    return model


def keras_line(logs: dict, steps: str = "2/2") -> str:
    return rf"{steps} ━{{20}} \d+s {STEP_TIME} - " + re.escape(cb.format_logs(logs))


def test_logs_are_formatted_and_sorted_as_keras():
    logs = {"loss": 0.61478, "val_loss": 0.7, "accuracy": 0.85251, "val_accuracy": 0.8,
            "learning_rate": 0.0001234}
    assert cb.format_logs(logs) == ("accuracy: 0.8525 - learning_rate: 1.2340e-04 - "
                                    "loss: 0.6148 - val_accuracy: 0.8000 - val_loss: 0.7000")
    assert cb.format_logs({}) == ""


@pytest.mark.parametrize(("seconds", "text"), [(2.4, "2s/step"), (0.0, "0s/step"),
                                               (0.0021, "2ms/step"), (0.00042, "420us/step"),
                                               (2.1e-6, "2us/step")])
def test_time_per_step_in_keras_units(seconds, text):
    assert cb._format_step_time(seconds) == text


def test_not_a_terminal_one_clean_line_per_epoch(terminal):
    out = terminal(tty=False)
    model = regressor(metrics=["mae"])
    history = model.fit(X, Y, epochs=3, batch_size=32, validation_data=(X, Y))
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text and "\b" not in text
    lines = text.splitlines()
    assert len(lines) == 6 and text.endswith("\n")
    for epoch in range(3):
        assert lines[2 * epoch] == f"Epoch {epoch + 1}/3"
        logs = {k: v[epoch] for k, v in history.history.items()}
        assert re.fullmatch(keras_line(logs), lines[2 * epoch + 1]), lines[2 * epoch + 1]
    assert lines[1].index("loss:") < lines[1].index("mae:") < lines[1].index("val_loss:") < (
        lines[1].index("val_mae:"))


def test_not_a_terminal_leaves_fit_between_batches_to_c(terminal):
    terminal(tty=False)
    model = regressor()
    for verbose in (1, 2):
        logger = cb.ProgbarLogger(verbose)
        assert not cb.CallbackList([logger], model, {"epochs": 1, "steps": 2}).wants_batches
    terminal(tty=True)
    logger = cb.ProgbarLogger(1)
    assert cb.CallbackList([logger], model, {"epochs": 1, "steps": 2}).wants_batches
    assert not cb.CallbackList([cb.ProgbarLogger(2)], model, {"epochs": 1, "steps": 2}
                               ).wants_batches


def test_a_single_epoch_has_no_epoch_line_as_keras(terminal):
    out = terminal(tty=False)
    model = regressor(metrics=["accuracy"])
    model.fit(X, YC, epochs=1, batch_size=16)
    (line,) = out.getvalue().splitlines()
    assert re.fullmatch(rf"4/4 ━{{20}} \d+s {STEP_TIME} - accuracy: \d\.\d{{4}} - "
                        rf"loss: \d\.\d{{4}}", line), line


def test_terminal_redraws_in_place_and_keeps_the_last_line(terminal):
    out = terminal(tty=True, columns=120)
    model = regressor(metrics=["mae"])
    history = model.fit(X, Y, epochs=2, batch_size=16)
    text = out.getvalue()
    assert "\x1b[32m" in text  # Keras' green for the steps done
    lines = text.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    for epoch, line in ((0, lines[1]), (1, lines[3])):
        draws = line.split("\r")
        assert draws[0] == "" and len(draws) == 1 + 4 + 1  # one per batch, then the last
        for step, draw in enumerate(draws[1:-1], start=1):
            assert re.match(rf"{step}/4 ━{{20}} \d+s {STEP_TIME} - loss: ", ANSI.sub("", draw))
        logs = {k: v[epoch] for k, v in history.history.items()}
        assert re.fullmatch(keras_line(logs, "4/4") + " *", ANSI.sub("", draws[-1]))


@pytest.mark.parametrize("columns", [0, 30])
def test_a_terminal_of_width_zero_or_narrow_still_gets_the_final_metrics(terminal, columns):
    out = terminal(tty=True, columns=columns)
    model = regressor()
    history = model.fit(X, Y, epochs=1, batch_size=16)
    draws = out.getvalue().split("\r")
    assert out.getvalue().endswith("\n")
    final = ANSI.sub("", draws[-1]).rstrip("\n")
    assert re.fullmatch(keras_line({"loss": history.history["loss"][0]}, "4/4") + " *", final)
    if columns:
        assert all(len(d) <= columns - 1 for d in draws[1:-1])  # a redrawn line never wraps


def test_verbose_2_one_line_per_epoch_as_keras(terminal):
    for tty in (False, True):
        out = terminal(tty=tty)
        model = regressor(metrics=["mae"])
        history = model.fit(X, Y, epochs=2, batch_size=32, verbose=2)
        lines = out.getvalue().split("\n")
        assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
        for epoch in (0, 1):
            logs = {k: v[epoch] for k, v in history.history.items()}
            assert re.fullmatch(rf"2/2 - \d+s - {STEP_TIME} - " + re.escape(cb.format_logs(logs)),
                                lines[2 * epoch + 1]), lines[2 * epoch + 1]
        assert "\r" not in out.getvalue() and "━" not in out.getvalue()


def test_a_stream_without_the_bar_character_gets_another(terminal):
    out = terminal(tty=False, encoding="ascii")
    regressor().fit(X, Y, epochs=1, batch_size=32)
    out.getvalue().encode("ascii")
    assert "2/2 " + "=" * 20 + " " in out.getvalue()


def test_training_that_fails_mid_epoch_ends_the_open_line(terminal):
    out = terminal(tty=True)

    class Boom(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        regressor().fit(X, Y, epochs=1, batch_size=16, callbacks=[Boom()])
    assert out.getvalue().endswith("\n")


def test_bad_verbose():
    assert cb.ProgbarLogger("auto").verbose == 1
    with pytest.raises(ValueError, match="verbose must be 0, 1, 2 or 'auto'"):
        cb.ProgbarLogger(3)


def test_evaluate_prints_its_results_as_the_bar_does(capsys):
    model = regressor(metrics=["mae"])
    results = model.evaluate(X, Y, verbose=1, return_dict=True)
    assert capsys.readouterr().out == cb.format_logs(results) + "\n"
    assert re.fullmatch(r"loss: \d+\.\d{4} - mae: \d+\.\d{4}\n", cb.format_logs(results) + "\n")
