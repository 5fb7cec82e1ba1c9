"""What to do when the Cython kernels do not load: the one command that fits the situation.

The common trap: after `pip install .`, Python started in the repository (a REPL,
`python -c`, `python -m pytest`) imports the unbuilt source folder, which shadows the
installed copy, because the current directory comes first on sys.path.
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

from ._kernel_modules import KERNEL_MODULES

__all__ = ["build_hint"]

IN_PLACE = 'pip install -e ".[dev]"'
_NUMPY_BACKEND = ("To run on the slower numpy reference kernels instead, set "
                  "MICROGRADNET_BACKEND=numpy.")


def _is_source_tree(package: Path) -> bool:
    root = package.parent
    return (root / "setup.py").is_file() and (root / "csrc").is_dir()


def _kernel_files(package: Path, exact: bool) -> list[Path]:
    """The kernels' extension files in package/_kernels: for this Python only (exact), or
    for any (a build for another Python or platform)."""
    folder = package / "_kernels"
    if exact:
        suffixes = importlib.machinery.EXTENSION_SUFFIXES
        return [folder / f"{m}{s}" for m in KERNEL_MODULES for s in suffixes
                if (folder / f"{m}{s}").is_file()]
    return [p for m in KERNEL_MODULES for p in folder.glob(f"{m}.*")
            if p.suffix in (".so", ".pyd")]


def _has_kernels(package: Path) -> bool:
    found = {p.name.split(".")[0] for p in _kernel_files(package, exact=True)}
    return found >= set(KERNEL_MODULES)


def _package_of(dist: importlib.metadata.Distribution) -> Path | None:
    """Where a distribution's microgradnet package is (an editable one: its project's)."""
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    if direct.get("dir_info", {}).get("editable") and direct.get("url", "").startswith("file:"):
        return Path(unquote(urlparse(direct["url"]).path)) / "microgradnet"
    init = Path(dist.locate_file("microgradnet/__init__.py"))
    return init.parent if init.is_file() else None


def installed_elsewhere(package: Path, path: list[str] | None = None) -> Path | None:
    """An installed microgradnet with built kernels other than `package`, or None."""
    here = package.resolve()
    for dist in importlib.metadata.distributions(name="microgradnet", path=path or sys.path):
        other = _package_of(dist)
        if other is not None and other.resolve() != here and _has_kernels(other):
            return other
    return None


def build_hint(error: object, package: Path | None = None,
               path: list[str] | None = None) -> str:
    """The message of the ImportError raised when the kernels of `package` (by default this
    package) do not load: what happened, and the command that fixes it there."""
    package = Path(package if package is not None else Path(__file__).parent)
    where = str(package)
    if _kernel_files(package, exact=False):
        fix = (f"rebuild them with `{IN_PLACE}`" if _is_source_tree(package) else
               "reinstall with `pip install --force-reinstall --no-cache-dir microgradnet`")
        return (f"microgradnet's Cython kernels in {where} exist but do not load ({error}): "
                f"they were built for another Python, platform or numpy, or are damaged; "
                f"{fix}. {_NUMPY_BACKEND}")
    if not _is_source_tree(package):
        return (f"microgradnet's Cython kernels are not built in {where} ({error}), an "
                f"installed package (no source tree): the installation is incomplete. "
                f"Reinstall with `pip install --force-reinstall --no-cache-dir microgradnet` "
                f"(from a source checkout: `pip install --force-reinstall .`). {_NUMPY_BACKEND}")
    root = package.parent
    other = installed_elsewhere(package, path)
    if other is not None:
        if root.resolve() == Path(os.getcwd()).resolve():
            why = "the current directory comes first on sys.path"
            use = "run from another directory (e.g. `cd ..`)"
        else:
            why = f"{root} comes first on sys.path (PYTHONPATH, or the script's folder)"
            use = f"take {root} off sys.path"
        return (f"Python imported microgradnet's unbuilt source tree {where} ({error}) "
                f"instead of the installed copy in {other}: {why}. To use the installed "
                f"copy, {use}; to work in this source tree, build it in place with "
                f"`{IN_PLACE}` (run in {root}). {_NUMPY_BACKEND}")
    return (f"microgradnet's Cython kernels are not built in the source tree {where} "
            f"({error}). Build them in place with `{IN_PLACE}` (run in {root}; needs a C "
            f"compiler and the Python headers). {_NUMPY_BACKEND}")
