"""Point matplotlib's ffmpeg writer at imageio-ffmpeg's binary when matplotlib has none.

The seeds save their animations with `animation.writers['ffmpeg']`, which looks for the
binary named by rcParams["animation.ffmpeg_path"] ("ffmpeg" on the PATH by default). The
`video` extra installs imageio-ffmpeg, whose binary is not on the PATH, so without this the
seeds' cell fails with "Requested MovieWriter (ffmpeg) not available".

The rcParam is set only when all of these hold: imageio-ffmpeg is installed, the rcParam
still has matplotlib's default (the user has not chosen a path, in code or matplotlibrc),
and that default finds no binary. It is set when matplotlib is imported (or at once, if it
already is): importing matplotlib with microgradnet would cost every user its import time,
and setting it only when mg.viz is used would miss the seeds, which animate with matplotlib
itself. A user's later setting still wins, as it is made after ours.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import shutil
import sys

__all__: list[str] = []

_KEY = "animation.ffmpeg_path"


def configure_matplotlib() -> str | None:
    """Set matplotlib's ffmpeg path to imageio-ffmpeg's binary where needed; return it."""
    import matplotlib

    current = matplotlib.rcParams[_KEY]
    if current != matplotlib.rcParamsDefault[_KEY] or shutil.which(current):
        return None  # the user's choice, or an ffmpeg on the PATH
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # not installed, or its binary is missing
        return None
    matplotlib.rcParams[_KEY] = exe
    return exe


class _AfterMatplotlibImport(importlib.abc.MetaPathFinder):
    """Runs configure_matplotlib right after `import matplotlib`, then leaves sys.meta_path."""

    def __init__(self) -> None:
        self.finding = False

    def find_spec(self, name, path, target=None):
        if name != "matplotlib" or self.finding:
            return None
        self.finding = True  # the search below must not come back here
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.finding = False
        loader = spec.loader if spec is not None else None
        if not isinstance(loader, importlib.machinery.SourceFileLoader):
            return spec  # not the usual package: leave it alone
        run = loader.exec_module  # this loader belongs to this one module: safe to wrap

        def exec_module(module) -> None:
            run(module)
            self.remove()
            try:
                configure_matplotlib()
            except Exception:  # noqa: BLE001  (never break the user's `import matplotlib`)
                pass

        loader.exec_module = exec_module
        return spec

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> None:
    """Configure matplotlib now if it is imported, else when it is (only with imageio-ffmpeg)."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        return
    if "matplotlib" in sys.modules:
        configure_matplotlib()
    elif not any(isinstance(f, _AfterMatplotlibImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterMatplotlibImport())
