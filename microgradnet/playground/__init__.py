"""The playground: watch a net learn in the browser, trained live by this framework.

`python -m microgradnet.playground` or `serve()` starts a local server (127.0.0.1 unless
told otherwise) with the page; each browser tab gets its own session (data, model, training
thread) over a WebSocket. Needs the `playground` extra (aiohttp, pillow). PROTOCOL.md in
this directory documents the messages between page and server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["serve"]


def __dir__() -> list[str]:
    return list(__all__)  # what tab completion offers: the public names, not np, os, ...


def serve(port: int = 0, host: str = "127.0.0.1", open_browser: bool = False,
          block: bool = True) -> Any:
    """Start the playground's server (port 0: a free one) and print its address. With
    block=False it runs in a thread and the returned handle has .url and .close()."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in [0, 65535], got {port!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")
    try:
        from . import server
    except ImportError as e:
        raise ImportError(f"the playground needs its extra: pip install "
                          f"'microgradnet[playground]' ({e})") from e

    def ready(url: str) -> None:
        print(f"microgradnet playground on {url}", flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    if block:
        server.run_blocking(host, port, ready)
        return None
    handle = server.start_in_thread(host, port)
    ready(handle.url)
    return handle
