"""python -m microgradnet.playground [--port 0] [--host 127.0.0.1] [--no-browser]"""

from __future__ import annotations

import argparse

from . import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m microgradnet.playground",
                                     description="Watch a net learn, live, in the browser.")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    args = parser.parse_args(argv)
    serve(port=args.port, host=args.host, open_browser=not args.no_browser, block=True)


if __name__ == "__main__":
    main()
