"""The playground's server: HTTP, the WebSocket protocol (PROTOCOL.md), validation,
sessions, exports (the script reaches the page's weights bit for bit; npz; GIF)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

aiohttp = pytest.importorskip("aiohttp")  # the `playground` extra (in the test extra too)

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

import microgradnet as mg  # noqa: E402
from microgradnet.models import load_model  # noqa: E402
from microgradnet.playground import serve  # noqa: E402
from microgradnet.playground.server import DOWNLOADS, SESSIONS, make_app  # noqa: E402
from microgradnet.playground.session import Data, Run, measure_speed  # noqa: E402
from microgradnet.playground.settings import (  # noqa: E402
    ACTIVATIONS,
    LIMITS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PRESETS,
    REGULARIZATIONS,
    check,
)

TIMEOUT = 60
SMALL = {"layers": [4, 3], "points": 200, "batch_size": 10, "steps_per_frame": 40}


def run_async(fn):
    """Run the coroutine function fn(client) against a fresh app on a test server."""
    async def main():
        app = make_app()
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await asyncio.wait_for(fn(client, app), TIMEOUT)

    return asyncio.run(main())


async def recv(ws, kind: str, skip=("state",)) -> dict:
    """The next message of type `kind` (skipping frames and state messages before it)."""
    while True:
        msg = await ws.receive()
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if data["type"] == kind:
            return data
        assert data["type"] in (*skip, "frame", "data", "setup"), data


async def setup(ws, setting=None, **extra) -> tuple[dict, dict, dict]:
    await ws.send_json({"op": "setup", "setting": setting or SMALL, **extra})
    return await recv(ws, "setup"), await recv(ws, "data"), await recv(ws, "frame")


def grid(out: dict) -> np.ndarray:
    u = np.frombuffer(base64.b64decode(out["b64"]), dtype=np.uint8)
    return out["lo"] + (out["hi"] - out["lo"]) * u / 255.0


# --------------------------------------------------------------------------- HTTP


def test_serve_listens_on_loopback_and_answers_options():
    handle = serve(port=0, block=False)
    try:
        assert handle.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(handle.url + "api/options", timeout=TIMEOUT) as r:
            options = json.load(r)
    finally:
        handle.close()
    assert {"relu", "tanh", "sigmoid", "elu", "selu"} <= set(options["activations"])
    assert {"he_normal", "zeros", "random_normal"} <= set(options["initializers"])
    assert set(options["optimizers"]) == {"sgd", "adam", "rmsprop", "adagrad"}
    assert {"circle", "xor", "gauss", "spiral", "reg-plane", "sine", "ramp"} <= set(
        options["datasets"])
    assert options["datasets"]["sine"]["dims"] == 1
    assert options["limits"]["editor_layers"] == 6 and options["limits"]["editor_units"] == 8
    assert {"000", "002", "003", "004"} <= {name[:3] for name in options["presets"]}
    with pytest.raises(OSError):  # closed: nothing listens any more
        urllib.request.urlopen(handle.url + "api/options", timeout=5)


def test_command_line_prints_the_address_and_serves(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "microgradnet.playground", "--no-browser",
                             "--port", "0"], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        url = line.split()[-1]
        assert url.startswith("http://127.0.0.1:"), line
        with urllib.request.urlopen(url + "api/options", timeout=TIMEOUT) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=TIMEOUT)


def test_mg_playground_is_imported_on_first_use(tmp_path):
    code = ("import sys, microgradnet as mg; a = 'microgradnet.playground' in sys.modules; "
            "print(a, 'playground' in dir(mg), callable(mg.playground.serve), "
            "'aiohttp' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).parent.parent)}
    # cwd: `python -c` puts the current directory first on sys.path; in a checkout that is
    # the unbuilt source folder, not the package under test.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout.split()
    assert out == ["False", "True", "True", "False"]  # aiohttp only once serve() runs


def test_serve_checks_its_arguments():
    with pytest.raises(ValueError, match="port"):
        serve(port=-1, block=False)
    with pytest.raises(ValueError, match="host"):
        serve(host="", block=False)


def test_pages_of_other_sites_cannot_drive_the_server():
    # Browsers let any page open ws://127.0.0.1:<port>/ws, or point its own name at
    # 127.0.0.1 (DNS rebinding): the server answers only its own pages and non-browsers.
    async def body(client, app):
        own = f"http://127.0.0.1:{client.port}"
        for origin in ("http://evil.example", "null", f"http://evil.example:{client.port}",
                       f"https://127.0.0.1:{client.port}.evil.example"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await client.ws_connect("/ws", origin=origin)
            assert caught.value.status == 403
            r = await client.get("/api/options", headers={"Origin": origin})
            assert r.status == 403 and "other sites" in await r.text()
        for host in ("evil.example", f"evil.example:{client.port}", "localhost.evil.example"):
            r = await client.get("/api/options", headers={"Host": host})
            assert r.status == 403 and "not this server's address" in await r.text()
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await client.ws_connect("/ws", headers={"Host": host})
        assert not app[SESSIONS]
        # Its own page (Origin = its address), localhost, and clients without an Origin.
        async with client.ws_connect("/ws", origin=own) as ws:
            await setup(ws)
        for host in (f"localhost:{client.port}", f"127.0.0.1:{client.port}"):
            r = await client.get("/api/options", headers={"Host": host,
                                                          "Origin": f"http://{host}"})
            assert r.status == 200
        assert (await client.get("/api/options")).status == 200

    run_async(body)


# --------------------------------------------------------------------------- protocol


def test_setup_play_pause_step_and_frame_contents():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            info, data, frame = await setup(ws, {**SMALL, "activation": "relu"})
            assert info["setting"]["layers"] == [4, 3] and info["paths"] == {"A": None}
            assert data["dims"] == 2 and len(data["train"]) + len(data["test"]) == 200
            assert frame["step"] == 0 and frame["path"] == "captured"
            assert len(grid(frame["output"])) == frame["output"]["res"] ** 2
            assert [len(layer) for layer in frame["neurons"]] == [4, 3, 1]
            assert np.asarray(frame["weights"]["kernels"][0]).shape == (2, 4)
            assert [len(d) for d in frame["dead"]] == [4, 3, 1]
            assert len(frame["dead_fraction"]) == 3 and len(frame["grad_norms"]) == 3
            first_loss, first_out = frame["train_loss"], grid(frame["output"])

            await ws.send_json({"op": "play"})
            frames = [await recv(ws, "frame") for _ in range(5)]
            await ws.send_json({"op": "pause"})
            while (await recv(ws, "state"))["playing"]:
                pass
            steps = [f["step"] for f in frames]
            assert steps == sorted(steps) and steps[0] > 0
            assert frames[-1]["train_loss"] < first_loss
            assert np.abs(grid(frames[-1]["output"]) - first_out).max() > 0.05  # the boundary moved
            await ws.send_json({"op": "step"})
            stepped = await recv(ws, "frame")
            assert stepped["step"] > frames[-1]["step"]
            await ws.send_json({"op": "step"})
            assert (await recv(ws, "frame"))["step"] == stepped["step"] + 1
            await ws.send_json({"op": "heatmaps", "on": False})
            await ws.send_json({"op": "reset"})
            reset = await recv(ws, "frame")
            assert reset["step"] == 0 and reset["neurons"] is None
            assert reset["weights"] == frame["weights"]  # same seed: the same start

    run_async(body)


def test_one_dimensional_regression_and_regenerate():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            info, data, frame = await setup(ws, {"dataset": "sine", "layers": [6]})
            assert data["dims"] == 1 and len(data["train"][0]) == 2
            assert len(grid(frame["output"])) == frame["output"]["res"]  # a curve over x
            await ws.send_json({"op": "regenerate"})
            info2 = await recv(ws, "setup")
            data2 = await recv(ws, "data")
            assert info2["setting"]["data_seed"] == info["setting"]["data_seed"] + 1
            assert data2["train"] != data["train"]

    run_async(body)


BAD = [
    ('{"op": "setup", "setting": {"layers": [-3]}}', "layers[0]"),
    ('{"op": "setup", "setting": {"layers": [' + ",".join(["2"] * 1000) + "]}}", "layers"),
    ('{"op": "setup", "setting": {"layers": [100000]}}', "layers[0]"),
    ('{"op": "setup", "setting": {"batch_size": 10000000}}', "batch_size"),
    ('{"op": "setup", "setting": {"points": 100000000}}', "points"),
    ('{"op": "setup", "setting": {"activation": "swish2"}}', "activation"),
    ('{"op": "setup", "setting": {"optimizer": "lbfgs"}}', "optimizer"),
    ('{"op": "setup", "setting": {"initializer": 3}}', "initializer"),
    ('{"op": "setup", "setting": {"dataset": "mnist"}}', "dataset"),
    ('{"op": "setup", "setting": {"features": ["x3"]}}', "feature"),
    ('{"op": "setup", "setting": {"learning_rate": "fast"}}', "learning_rate"),
    ('{"op": "setup", "setting": {"learning_rate": 1e999}}', "learning_rate"),
    ('{"op": "setup", "setting": {"seed": true}}', "seed"),
    ('{"op": "setup", "setting": {"colour": 1}}', "colour"),
    ('{"op": "setup", "setting": []}', "setting"),
    ('{"op": "setup", "preset": "999"}', "preset"),
    ('{"op": "setup", "setting": {"output_activation": "tanh"}}', "output_activation"),
    ('{"op": "fly"}', "unknown op"),
    ('{"op": ["setup"]}', "unknown op"),
    ('{"op": "setup", "preset": ["x"]}', "preset"),
    ('{"op": "setup", "preset": "002 sigmoid perceptron", "setting": 3}', "setting"),
    ("[1, 2]", "JSON object"),
    ('{"op": "setup", "setting": {"layers": [2', "malformed JSON"),
    ('{"op": "play"}', "setup"),
    ("[" * 30000 + "]" * 30000, "JSON"),
    ('{"op": "setup", "setting": {"noise": 0.1}, "pad": "' + "x" * 70000 + '"}', "too large"),
]


@pytest.mark.parametrize(("text", "named"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_messages_get_an_error_naming_what_was_wrong(text, named):
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await ws.send_str(text)
            err = await recv(ws, "error")
            assert named in err["message"]
            assert len(err["message"]) < 400
            field = named.split("[")[0]
            if '"setting"' in text and field in check({}):  # a setting's field: named in .field
                assert err["field"] == field
            # the session goes on
            info, _, frame = await setup(ws)
            assert frame["step"] == 0

    run_async(body)


def test_bad_messages_after_setup_and_binary_frames():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws)
            for msg, named in ((b"\x00\x01", "JSON text"), ('{"op": "heatmaps"}', "on"),
                               ('{"op": "export", "what": "pdf"}', "pdf"),
                               ('{"op": "export", "what": "npz", "run": "B"}', "run"),
                               ('{"op": "export", "what": "npz", "run": ["A"]}', "run"),
                               ('{"op": "ab", "setting_b": {"points": 50}}', "points"),
                               ('{"op": "ab", "setting_b": {"layers": [0]}}', "layers[0]"),
                               ('{"op": "ab"}', "setting_b")):
                if isinstance(msg, bytes):
                    await ws.send_bytes(msg)
                else:
                    await ws.send_str(msg)
                assert named in (await recv(ws, "error"))["message"]
            await ws.send_json({"op": "step"})
            assert (await recv(ws, "frame"))["step"] == 1

    run_async(body)


def test_the_record_of_what_trained_stays_bounded(monkeypatch):
    monkeypatch.setitem(LIMITS, "max_recorded_ops", 3)

    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws)
            for op in ("step", "play", "step", "step"):
                await ws.send_json({"op": op})
                if op == "play":
                    await recv(ws, "frame")
            err = await recv(ws, "error")
            assert "reset" in err["message"]
            await ws.send_json({"op": "reset"})
            await recv(ws, "setup")
            assert (await recv(ws, "frame"))["step"] == 0
            await ws.send_json({"op": "step"})
            assert (await recv(ws, "frame"))["step"] == 1

    run_async(body)


def test_a_page_that_acks_gets_frames_no_faster_than_it_draws():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws)
            await ws.send_json({"op": "ack", "seq": 0})  # ack mode on
            await ws.send_json({"op": "play"})
            seqs = []
            with pytest.raises(asyncio.TimeoutError):
                while True:  # no more acks: frames stop after the window
                    seqs.append((await asyncio.wait_for(recv(ws, "frame"), 1.0))["seq"])
            assert seqs == [1, 2, 3]
            await ws.send_json({"op": "ack", "seq": 3})
            assert (await recv(ws, "frame"))["seq"] == 4
            await ws.send_json({"op": "ack", "seq": 99})
            assert "seq" in (await recv(ws, "error"))["message"]
            await ws.send_json({"op": "pause"})
            while (await recv(ws, "state"))["playing"]:
                pass

    run_async(body)


def test_diverging_training_is_reported_and_pauses():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws, {"dataset": "reg-plane", "layers": [8, 8], "activation": "relu",
                             "learning_rate": 10.0, "optimizer": "sgd"})
            await ws.send_json({"op": "play"})
            while True:
                frame = await recv(ws, "frame")
                if frame["diverged"]:
                    break
            assert any("diverged" in w for w in frame["warnings"])
            assert frame["train_loss"] is None  # not NaN: strict JSON
            assert (await recv(ws, "state"))["playing"] is False

    run_async(body)


def test_monitor_warnings_reach_the_page():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await ws.send_json({"op": "setup", "preset": "000 dying ReLU neuron"})
            frame = await recv(ws, "frame")
            assert frame["dead_fraction"] == [1.0] and frame["dead"] == [[True]]
            assert any("dead ReLU" in w for w in frame["warnings"])

    run_async(body)


def test_regularized_runs_train_on_the_captured_path():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            info, _, frame = await setup(ws, {**SMALL, "regularization": "l2",
                                              "regularization_rate": 0.01})
            assert frame["path"] == "captured" and frame["why_eager"] is None
            assert info["paths"]["A"] is None

    run_async(body)


def test_ab_runs_share_the_data_and_train_in_lockstep():
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws)
            await ws.send_json({"op": "ab", "setting_b": {"activation": "relu"}})
            info = await recv(ws, "setup")
            assert info["setting_b"] == {"activation": "relu"}
            await recv(ws, "data")
            a, b = await recv(ws, "frame"), await recv(ws, "frame")
            assert (a["run"], b["run"]) == ("A", "B")
            await ws.send_json({"op": "step"})
            a, b = await recv(ws, "frame"), await recv(ws, "frame")
            assert a["step"] == b["step"] == 1 and a["weights"] != b["weights"]
            await ws.send_json({"op": "ab_off"})
            info = await recv(ws, "setup")
            assert info["setting_b"] is None

    run_async(body)


# --------------------------------------------------------------------------- sessions


def test_two_sessions_are_independent_and_closing_frees_them():
    async def body(client, app):
        async with client.ws_connect("/ws") as one, client.ws_connect("/ws") as two:
            _, _, f1 = await setup(one)
            _, _, f2 = await setup(two)
            assert f1["weights"] == f2["weights"]  # same seed
            await one.send_json({"op": "play"})
            for _ in range(3):
                await recv(one, "frame")
            await two.send_json({"op": "step"})
            assert (await recv(two, "frame"))["step"] == 1
            await one.send_json({"op": "export", "what": "npz"})
            url = (await recv(one, "export"))["url"]
            assert (await client.get(url)).status == 200
            assert len(app[SESSIONS]) == 2
        for _ in range(100):
            if not app[SESSIONS]:
                break
            await asyncio.sleep(0.05)
        assert not app[SESSIONS] and not app[DOWNLOADS]
        assert (await client.get(url)).status == 404

    run_async(body)


def test_sessions_are_capped():
    async def body(client, app):
        sockets = [await client.ws_connect("/ws") for _ in range(LIMITS["max_sessions"])]
        for ws in sockets:  # each one set up: all are sessions now
            await setup(ws)
        extra = await client.ws_connect("/ws")
        assert "too many" in (await recv(extra, "error"))["message"]
        await extra.close()
        for ws in sockets:
            await ws.close()

    run_async(body)


def test_sessions_training_at_once_keep_their_own_random_streams():
    # Two runs interleaved (as two tabs train) reach the bits each reaches alone.
    s = check({**SMALL, "seed": 5})
    data = Data(s)
    alone = Run("A", s, data)
    for _ in range(3):
        alone.fit(2)
    a, b = Run("A", s, data), Run("A", check({**SMALL, "seed": 6}), data)
    for _ in range(3):
        a.fit(2)
        b.fit(2)
    mg.manual_seed(0)
    before = mg.random.generator().random()
    for x, y in zip(alone.model.get_weights(), a.model.get_weights(), strict=True):
        assert np.array_equal(x, y)
    mg.manual_seed(0)
    Run("A", s, data).fit(1)  # training a run does not draw from the user's generator
    assert mg.random.generator().random() == before


def test_a_chunk_of_training_stays_bounded():
    # The hard caps: 8 layers of 64 units, full batches, 5000 steps a frame; a pause waits
    # for the chunk in progress, so one chunk must stay short.
    s = check({"layers": [64] * 8, "points": 2000, "train_ratio": 0.9, "batch_size": 2000,
               "steps_per_frame": 5000})
    run = Run("A", s, Data(s))
    assert run.epochs_per_frame() * len(run.x_train) * run.model.count_params() <= 2e8
    small = Run("A", check(SMALL), Data(check(SMALL)))
    assert small.epochs_per_frame() * small.steps_per_epoch == 40  # as asked when cheap


def test_gif_frames_stay_bounded():
    s = check({**SMALL, "layers": [2]})
    run = Run("A", s, Data(s))
    for _ in range(LIMITS["max_gif_frames"] + 30):
        run.frame(heatmaps=False)
    assert len(run.gif_frames) < LIMITS["max_gif_frames"]
    assert run.gif_frames[0]["epoch"] == 0


# --------------------------------------------------------------------------- exports


@pytest.mark.parametrize("setting", [
    {**SMALL, "features": ["x1", "x2", "x1^2", "sin x2"], "optimizer": "adam"},
    {**SMALL, "dataset": "sine", "regularization": "l1", "regularization_rate": 0.001},
], ids=["captured", "captured-l1"])
def test_exported_code_trains_to_the_same_weights(setting, tmp_path):
    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws, setting)
            await ws.send_json({"op": "step"})
            await ws.send_json({"op": "play"})
            for _ in range(4):
                await recv(ws, "frame")
            await ws.send_json({"op": "pause"})
            await ws.send_json({"op": "step"})
            await ws.send_json({"op": "step"})
            await ws.send_json({"op": "export", "what": "code"})
            code = await recv(ws, "export")
            await ws.send_json({"op": "export", "what": "npz"})
            npz = await recv(ws, "export")
            resp = await client.get(npz["url"])
            assert resp.headers["Content-Disposition"] == (
                f'attachment; filename="{npz["filename"]}"')
            return code, await resp.read(), await (await client.get(code["url"])).text()

    code, model_bytes, downloaded = run_async(body)
    assert downloaded == code["text"] and code["filename"].endswith(".py")
    script = tmp_path / code["filename"]
    script.write_text(code["text"])
    env = {**os.environ, "PYTHONPATH": str(Path(mg.__file__).parent.parent)}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "script.npz")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "train loss" in done.stdout
    (tmp_path / "page.npz").write_bytes(model_bytes)
    page, scripted = load_model(tmp_path / "page.npz"), load_model(tmp_path / "script.npz")
    for x, y in zip(page.get_weights(), scripted.get_weights(), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)  # bit for bit
    assert any(np.any(w != 0) for w in page.get_weights()[1::2])  # it did train


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_presets_exported_code_replays_it(preset, monkeypatch, capsys):
    from microgradnet.playground import export

    p = PRESETS[preset]
    data = Data(p["setting"])
    runs = [Run("A", p["setting"], data)]
    if "setting_b" in p:
        runs.append(Run("B", check(p["setting_b"], base=p["setting"]), data))
    monkeypatch.setattr(sys, "argv", ["script"])
    for run in runs:
        run.fit(2)
        run.step()
        run.fit(1)
        namespace: dict = {"__name__": "__main__"}
        exec(compile(export.code(run), "exported", "exec"), namespace)
        for x, y in zip(run.model.get_weights(), namespace["model"].get_weights(), strict=True):
            assert np.array_equal(x, y), (preset, run.name)


def test_gif_export_decodes():
    from PIL import Image

    async def body(client, app):
        async with client.ws_connect("/ws") as ws:
            await setup(ws)
            await ws.send_json({"op": "play"})
            for _ in range(6):
                await recv(ws, "frame")
            await ws.send_json({"op": "pause"})
            await ws.send_json({"op": "export", "what": "gif"})
            reply = await recv(ws, "export")
            resp = await client.get(reply["url"])
            assert resp.content_type == "image/gif"
            assert "attachment" in resp.headers["Content-Disposition"]
            return await resp.read()

    img = Image.open(io.BytesIO(run_async(body)))
    assert img.format == "GIF" and img.n_frames >= 6 and img.size == (256, 256)
    img.seek(img.n_frames - 1)
    first = np.asarray(Image.open(io.BytesIO(run_async(body))).convert("RGB"))
    assert first.std() > 10  # a picture, not a blank frame


def test_mp4_export_of_a_one_dimensional_run():
    pytest.importorskip("imageio_ffmpeg")  # the video extra (in the test extra too)
    from microgradnet.playground import export

    s = check({"dataset": "sine", "layers": [6], "points": 100})
    run = Run("A", s, Data(s))
    for _ in range(5):
        run.fit(1)
        run.frame(heatmaps=False)
    name, ctype, body = export.make("mp4", run)
    assert name.endswith(".mp4") and ctype == "video/mp4" and body[4:8] == b"ftyp"


def test_every_preset_builds_and_trains():
    for name, preset in PRESETS.items():
        s = preset["setting"]
        data = Data(s)
        runs = [Run("A", s, data)]
        if "setting_b" in preset:
            runs.append(Run("B", check(preset["setting_b"], base=s), data))
        for run in runs:
            assert run.why_eager is None, (name, run.why_eager)
            run.fit(1)
            assert run.frame(heatmaps=True)["train_loss"] is not None, name


def test_what_the_page_offers_trains_on_the_captured_path():
    data, data_1d = Data(check({"points": 20})), Data(check({"points": 20, "dataset": "sine"}))
    for field, names, d, extra in (
            ("activation", ACTIVATIONS, data, {}),
            ("optimizer", OPTIMIZERS, data, {"momentum": 0.5}),
            ("regularization", REGULARIZATIONS, data, {"regularization_rate": 0.01}),
            ("output_activation", OUTPUT_ACTIVATIONS, data_1d, {"dataset": "sine"})):
        for name in names:
            run = Run("A", check({"points": 20, field: name, **extra}), d)
            assert run.why_eager is None, (field, name, run.why_eager)


def test_measure_speed_reports_steps_per_second():
    speed = measure_speed(
        {"dataset": "circle", "layers": [8] * 6}, seconds=0.2)
    assert speed["captured"] is True
    assert speed["fit"] > 0 and speed["chunks"] > 0 and speed["chunks_with_frames"] > 0
