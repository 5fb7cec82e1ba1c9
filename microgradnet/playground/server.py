"""The playground's web server (aiohttp): the page, /api/options, downloads and the
WebSocket /ws with one Session per connection. PROTOCOL.md documents the messages."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from . import export
from .session import Data, Run
from .settings import DATA_FIELDS, LIMITS, PRESETS, SettingError, check, options

__all__ = ["DOWNLOADS", "EXECUTOR", "SESSIONS", "TASKS", "Handle", "ProtocolError", "Session",
           "dumps", "make_app", "run_blocking", "start_in_thread"]

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("microgradnet.playground")
MAX_FPS = 60  # frames a playing session sends per second at most (the page draws fewer)
DOWNLOADS_PER_SESSION = 4
ACK_WINDOW = 3  # frames sent ahead of the page's acks (once it sends them)
TOO_MANY_OPS = ("this run has alternated play and step too often for its script to replay it "
                "(export would be too long); reset to go on")

# The application's state: open sessions, their play tasks, download tokens, the worker threads.
SESSIONS = web.AppKey("sessions", set)
TASKS = web.AppKey("tasks", set)
DOWNLOADS = web.AppKey("downloads", dict)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
HOSTS = web.AppKey("hosts", frozenset)  # names the Host header may give (IP literals pass)
_WILDCARDS = ("0.0.0.0", "::", "")  # listening on every interface: any name reaches it


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


class ProtocolError(ValueError):
    """A message the server refuses; the message says what was wrong, .field names the
    setting's field when one was ("setting_b.<field>" for run B's)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _finite(obj: Any) -> Any:
    """obj with NaN and infinities as None (JSON has no such numbers)."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def dumps(msg: dict) -> str:
    """A message as strict JSON."""
    try:
        return json.dumps(msg, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(msg), allow_nan=False, separators=(",", ":"))


class Session:
    """One WebSocket's state: its setting, data, runs A (and B), playing or not."""

    def __init__(self, app: web.Application, ws: web.WebSocketResponse) -> None:
        self.app, self.ws = app, ws
        self.setting: dict | None = None
        self.setting_b: dict | None = None  # B's fields that differ from A
        self.data: Data | None = None
        self.runs: dict[str, Run] = {}
        self.heatmaps = True
        self.max_fps = MAX_FPS
        self.seq = 0  # frames sent
        self.acked: int | None = None  # the last frame the page drew (None: no acks)
        self.ack_event = asyncio.Event()
        self.playing = False
        self.task: asyncio.Task | None = None
        self.busy = asyncio.Lock()  # one training call at a time
        self.downloads: OrderedDict[str, tuple] = OrderedDict()

    # ------------------------------------------------------------------ helpers
    async def send(self, msg: dict) -> None:
        """Send one message as strict JSON (nothing once the socket closed)."""
        if not self.ws.closed:
            # The page may close between the check and the write: its socket ends the session.
            with contextlib.suppress(ConnectionResetError):
                await self.ws.send_str(dumps(msg))

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        """fn(*args) in a worker thread: training never blocks the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.app[EXECUTOR], fn, *args)

    def _require_setup(self, op: str) -> None:
        if not self.runs:
            raise ProtocolError(f"{op}: send a setup message first")

    async def _frames(self) -> None:
        for name in sorted(self.runs):
            run = self.runs[name]
            frame = await self.in_thread(run.frame, self.heatmaps)
            frame["seq"] = self.seq
            self.seq += 1
            await self.send(frame)
            if run.diverged:
                self.playing = False

    async def _wait_for_page(self) -> None:
        """In ack mode, wait while ACK_WINDOW frames or more are not drawn yet."""
        while (self.playing and self.acked is not None
               and self.seq - 1 - self.acked >= ACK_WINDOW):
            self.ack_event.clear()
            await self.ack_event.wait()

    # ------------------------------------------------------------------ ops
    async def handle(self, msg: Any) -> None:
        """Act on one parsed message (ProtocolError/SettingError for a bad one)."""
        if not isinstance(msg, dict):
            raise ProtocolError(f"a message must be a JSON object, got {type(msg).__name__}")
        op = msg.get("op")
        handlers = {
            "setup": self.op_setup, "play": self.op_play, "pause": self.op_pause,
            "step": self.op_step, "reset": self.op_reset, "regenerate": self.op_regenerate,
            "ab": self.op_ab, "ab_off": self.op_ab_off, "export": self.op_export,
            "heatmaps": self.op_heatmaps, "fps": self.op_fps, "ack": self.op_ack}
        handler = handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            raise ProtocolError(
                f"unknown op {str(op)[:40]!r}; known: setup, play, pause, step, reset, "
                "regenerate, ab, ab_off, export, heatmaps, fps, ack")
        await handler(msg)

    async def op_setup(self, msg: dict) -> None:
        """Build data and runs from a setting or preset (and setting_b)."""
        setting = msg.get("setting", {})
        preset = msg.get("preset")
        if preset is not None:
            if not isinstance(preset, str) or preset not in PRESETS:
                raise ProtocolError(f"unknown preset {str(preset)[:60]!r}; known: "
                                    + ", ".join(PRESETS))
            if not isinstance(setting, dict):
                raise ProtocolError(f"setting must be a JSON object, got "
                                    f"{type(setting).__name__}", "setting")
            setting = {**PRESETS[preset]["setting"], **setting}
        setting = check(setting)
        setting_b = msg.get("setting_b")
        if setting_b is None and preset is not None:
            setting_b = PRESETS[preset].get("setting_b")
        await self.pause()
        async with self.busy:
            await self._build(setting, setting_b)

    async def _build(self, setting: dict, setting_b: dict | None) -> None:
        full_b = self._check_b(setting, setting_b) if setting_b is not None else None
        data = self.data if (self.data is not None and all(
            self.data.setting[k] == setting[k] for k in DATA_FIELDS)) else None
        if data is None:
            data = await self.in_thread(Data, setting)
        runs = {"A": await self.in_thread(Run, "A", setting, data)}
        if full_b is not None:
            runs["B"] = await self.in_thread(Run, "B", full_b, data)
        self.setting, self.setting_b, self.data, self.runs = setting, setting_b, data, runs
        await self.send({"type": "setup", "setting": setting, "setting_b": setting_b,
                         "paths": {n: r.why_eager for n, r in runs.items()}})
        await self.send(data.message())
        await self._frames()

    def _check_b(self, setting: dict, setting_b: Any) -> dict:
        if not isinstance(setting_b, dict):
            raise ProtocolError(f"setting_b must be a JSON object of the fields that differ, "
                                f"got {type(setting_b).__name__}")
        for k in DATA_FIELDS:
            if k in setting_b and setting_b[k] != setting[k]:
                raise ProtocolError(f"setting_b: {k} cannot differ from run A's (A/B runs "
                                    f"share the data)", f"setting_b.{k}")
        try:
            return check(setting_b, base=setting)
        except SettingError as e:
            field = None if e.field is None else f"setting_b.{e.field}"
            raise ProtocolError(f"setting_b: {e}", field) from None

    async def op_play(self, msg: dict) -> None:
        """Train continuously in a task, a frame after each chunk."""
        self._require_setup("play")
        if self.playing:
            return
        self.playing = True
        self.task = asyncio.create_task(self._play())
        self.app[TASKS].add(self.task)
        self.task.add_done_callback(self.app[TASKS].discard)
        await self.send({"type": "state", "playing": True})

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.playing and not self.ws.closed:
                await self._wait_for_page()
                t0 = loop.time()
                async with self.busy:
                    if not self.playing:
                        break
                    if any(r.ops_full() for r in self.runs.values()):
                        self.playing = False
                        await self.send({"type": "error", "message": TOO_MANY_OPS})
                        break
                    epochs = self.runs["A"].epochs_per_frame()
                    for run in self.runs.values():
                        await self.in_thread(run.fit, epochs)
                    await self._frames()
                wait = 1 / self.max_fps - (loop.time() - t0)
                await asyncio.sleep(max(wait, 0))
        except asyncio.CancelledError:
            raise  # the socket closed: nobody to tell
        except Exception as e:  # a failed step must not pass silently: tell the page
            self.playing = False
            await self.send({"type": "error", "message": f"training stopped: {e}"})
        await self.send({"type": "state", "playing": False})

    async def pause(self) -> None:
        """Stop playing after the chunk in progress."""
        self.playing = False
        self.ack_event.set()  # a play task waiting for the page's acks stops now
        if self.task is not None:
            await self.task
            self.task = None

    async def stop(self) -> None:
        """Stop at once (the socket closed): the play task may wait on a send nobody reads."""
        self.playing = False
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    async def op_pause(self, msg: dict) -> None:
        """Stop playing."""
        await self.pause()

    async def op_step(self, msg: dict) -> None:
        """One batch for each run, then their frames."""
        self._require_setup("step")
        await self.pause()
        async with self.busy:
            if any(r.ops_full() for r in self.runs.values()):
                raise ProtocolError(TOO_MANY_OPS)
            for run in self.runs.values():
                await self.in_thread(run.step)
            await self._frames()

    async def op_reset(self, msg: dict) -> None:
        """Back to the initial weights of the same setting."""
        self._require_setup("reset")
        await self.pause()
        async with self.busy:
            await self._build(self.setting, self.setting_b)

    async def op_regenerate(self, msg: dict) -> None:
        """New points (data_seed + 1), then reset."""
        self._require_setup("regenerate")
        await self.pause()
        setting = {**self.setting, "data_seed": (self.setting["data_seed"] + 1)
                   % (LIMITS["max_seed"] + 1)}
        async with self.busy:
            await self._build(setting, self.setting_b)

    async def op_ab(self, msg: dict) -> None:
        """Start run B with the fields of setting_b changed."""
        self._require_setup("ab")
        if "setting_b" not in msg:
            raise ProtocolError("ab: setting_b is missing (the fields of run B that differ)")
        await self.pause()
        async with self.busy:
            await self._build(self.setting, msg["setting_b"])

    async def op_ab_off(self, msg: dict) -> None:
        """Drop run B."""
        self._require_setup("ab_off")
        await self.pause()
        async with self.busy:
            await self._build(self.setting, None)

    async def op_heatmaps(self, msg: dict) -> None:
        """Heat maps of every neuron in frames, or not."""
        on = msg.get("on")
        if not isinstance(on, bool):
            raise ProtocolError(f"heatmaps: on must be true or false, got {on!r:.40}")
        self.heatmaps = on

    async def op_ack(self, msg: dict) -> None:
        """The page drew frame seq (flow control)."""
        seq = msg.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < self.seq:
            raise ProtocolError(f"ack: seq must be the seq of a frame sent (0 to {self.seq - 1})"
                                f", got {seq!r:.40}")
        self.acked = max(seq, self.acked if self.acked is not None else -1)
        self.ack_event.set()

    async def op_fps(self, msg: dict) -> None:
        """At most `max` frames per second while playing."""
        value = msg.get("max")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FPS:
            raise ProtocolError(f"fps: max must be an int in [1, {MAX_FPS}], got {value!r:.40}")
        self.max_fps = value

    async def op_export(self, msg: dict) -> None:
        """Make an export of a run and offer it for download."""
        self._require_setup("export")
        what, name = msg.get("what"), msg.get("run", "A")
        if not isinstance(what, str) or what not in export.KINDS:
            raise ProtocolError(f"export: unknown what {str(what)[:40]!r}; known: "
                                + ", ".join(export.KINDS))
        if not isinstance(name, str) or name not in self.runs:
            raise ProtocolError(f"export: run must be one of {', '.join(sorted(self.runs))}, "
                                f"got {str(name)[:20]!r}")
        async with self.busy:
            try:
                filename, ctype, body = await self.in_thread(export.make, what,
                                                             self.runs[name])
            except ValueError as e:  # nothing to animate yet, no ffmpeg for MP4
                raise ProtocolError(f"export {what}: {e}") from None
        token = secrets.token_urlsafe(16)
        self.downloads[token] = (filename, ctype, body)
        self.app[DOWNLOADS][token] = self
        while len(self.downloads) > DOWNLOADS_PER_SESSION:
            old, _ = self.downloads.popitem(last=False)
            self.app[DOWNLOADS].pop(old, None)
        reply = {"type": "export", "what": what, "run": name, "filename": filename,
                 "url": f"/download/{token}", "size": len(body)}
        if what == "code":
            reply["text"] = body.decode("utf-8")
        await self.send(reply)

    def close(self) -> None:
        """Free the session: its runs, data and downloads."""
        self.playing = False
        for token in self.downloads:
            self.app[DOWNLOADS].pop(token, None)
        self.downloads.clear()
        self.runs = {}
        self.data = None


# ---------------------------------------------------------------------- handlers
def _hostname(netloc: str) -> str | None:
    """The host of a Host header or an origin's netloc, lower case, without port or
    brackets (None when it does not parse)."""
    try:
        return urlsplit(f"//{netloc}").hostname
    except ValueError:
        return None


def _host_allowed(app: web.Application, host: str | None) -> bool:
    if host is None:
        return False
    if app[HOSTS] is None:
        return True
    name = _hostname(host)
    if name is None:
        return False
    if name in app[HOSTS]:
        return True
    try:
        ipaddress.ip_address(name)  # an address cannot be rebound to another site
    except ValueError:
        return False
    return True


@web.middleware
async def _same_origin(request: web.Request, handler: Any) -> web.StreamResponse:
    # Any web page may open ws://127.0.0.1:<port>/ws (browsers allow cross-origin
    # WebSockets) or rebind its own name to 127.0.0.1: only this server's own pages, and
    # clients that are not browsers (no Origin header), may drive it.
    host = request.headers.get("Host")
    if not _host_allowed(request.app, host):
        raise web.HTTPForbidden(text=f"Host {str(host)[:60]!r} is not this server's address; "
                                     f"open the address the server printed")
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin) if origin != "null" else None
        if (parts is None or parts.scheme not in ("http", "https")
                or parts.netloc.lower() != str(host).lower()):
            raise web.HTTPForbidden(text=f"requests from pages of other sites "
                                         f"({origin[:60]!r}) are refused")
    return await handler(request)


async def _index(request: web.Request) -> web.StreamResponse:
    page = STATIC / "index.html"
    if not page.exists():
        return web.Response(text="the playground page is not installed (static/index.html)",
                            status=404)
    return web.FileResponse(page)


async def _api_options(request: web.Request) -> web.Response:
    return web.json_response(options(), dumps=dumps)


async def _download(request: web.Request) -> web.Response:
    session = request.app[DOWNLOADS].get(request.match_info["token"])
    item = None if session is None else session.downloads.get(request.match_info["token"])
    if item is None:
        raise web.HTTPNotFound(text="no such download (it belongs to a closed or later page)")
    filename, ctype, body = item
    return web.Response(body=body, content_type=ctype, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


async def _websocket(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    limit = LIMITS["max_message_bytes"]
    # Up to 4x the limit arrives and gets an error message; beyond that aiohttp closes.
    # No permessage-deflate: on loopback, compressing each frame costs both sides more CPU
    # than the bytes it saves.
    ws = web.WebSocketResponse(max_msg_size=4 * limit, heartbeat=30, compress=False)
    await ws.prepare(request)
    if len(app[SESSIONS]) >= LIMITS["max_sessions"]:
        await ws.send_str(dumps({"type": "error", "message": (
            f"too many pages open at once (at most {LIMITS['max_sessions']}); close one")}))
        await ws.close()
        return ws
    session = Session(app, ws)
    app[SESSIONS].add(session)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await session.send({"type": "error",
                                        "message": "messages must be JSON text"})
                continue
            try:
                if len(msg.data) > limit:
                    raise ProtocolError(f"message too large: {len(msg.data)} bytes, at most "
                                        f"{limit}")
                try:
                    parsed = json.loads(msg.data)
                except ValueError as e:
                    raise ProtocolError(f"malformed JSON: {e}") from None
                except RecursionError:
                    raise ProtocolError("malformed JSON: nested too deeply") from None
                await session.handle(parsed)
            except (ProtocolError, SettingError) as e:
                await session.send({"type": "error", "message": str(e),
                                    "field": getattr(e, "field", None)})
            except Exception as e:  # a bug here must not take the page's socket down
                log.exception("playground: message failed")
                await session.send({"type": "error",
                                    "message": f"internal error: {type(e).__name__}: {e}"})
    finally:
        await session.stop()
        session.close()
        app[SESSIONS].discard(session)
    return ws


async def _shutdown(app: web.Application) -> None:
    for session in list(app[SESSIONS]):
        session.playing = False
        await session.ws.close()
    for task in list(app[TASKS]):
        task.cancel()


def make_app(host: str = "127.0.0.1") -> web.Application:
    """The aiohttp application for a server listening on `host` (tests use it with
    aiohttp's test client). Requests must name it, localhost or an IP address as their
    Host (any name when it listens on every interface), and pages of other origins are
    refused."""
    app = web.Application(client_max_size=LIMITS["max_message_bytes"],
                          middlewares=[_same_origin])
    app[HOSTS] = (None if host in _WILDCARDS
                  else frozenset({"localhost", host.lower().strip("[]")}))
    app[SESSIONS] = set()
    app[TASKS] = set()
    app[DOWNLOADS] = {}
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="playground")
    app.router.add_get("/", _index)
    app.router.add_get("/api/options", _api_options)
    app.router.add_get("/ws", _websocket)
    app.router.add_get("/download/{token}", _download)
    if STATIC.is_dir():
        app.router.add_static("/static/", STATIC)
    app.on_shutdown.append(_shutdown)

    async def stop_executor(app: web.Application) -> None:
        app[EXECUTOR].shutdown(wait=True)

    app.on_cleanup.append(stop_executor)
    return app


class Handle:
    """A running server (serve(block=False)): its address and close()."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, runner: web.AppRunner,
                 thread: threading.Thread) -> None:
        self.url, self._loop, self._runner, self._thread = url, loop, runner, thread

    def close(self) -> None:
        """Stop the server and its thread."""
        if not self._thread.is_alive():
            return
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        fut.result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _start(host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(host))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    sock = site._server.sockets[0]  # the port the OS chose for port 0
    actual = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return runner, f"http://{shown}:{actual}/"


def start_in_thread(host: str, port: int) -> Handle:
    """Start the server on its own event loop in a daemon thread."""
    loop = asyncio.new_event_loop()
    started: dict = {}
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["value"] = loop.run_until_complete(_start(host, port))
        except BaseException as e:  # reported by the caller's thread
            started["error"] = e
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=main, name="playground-server", daemon=True)
    thread.start()
    ready.wait()
    if "error" in started:
        raise started["error"]
    runner, url = started["value"]
    return Handle(url, loop, runner, thread)


def run_blocking(host: str, port: int, on_ready: Any = None) -> None:
    """Serve until interrupted (Ctrl-C)."""
    async def main() -> None:
        runner, url = await _start(host, port)
        if on_ready is not None:
            on_ready(url)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
