"""Setting up: the message when the kernels do not load names the situation and the one
command that fixes it there; the dev extra brings what an in-place build needs."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import microgradnet as mg
from microgradnet._kernel_modules import KERNEL_MODULES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(mg.__file__).resolve().parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]
IN_PLACE = 'pip install -e ".[dev]"'  # the one command that builds the source tree in place


def build_hint(*args, **kwargs) -> str:
    from microgradnet._build_hint import build_hint

    return build_hint(*args, **kwargs)


# --------------------------------------------------------------------------- the build hint


def _source_tree(root: Path) -> Path:
    """An unbuilt copy of the package's Python files in a folder laid out like the clone."""
    for path in PACKAGE.rglob("*.py"):
        target = root / "microgradnet" / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (root / "setup.py").write_text("# the repository's build script\n")
    (root / "csrc").mkdir()
    return root / "microgradnet"


def _kernels(package: Path, suffix: str = SUFFIX) -> None:
    """Stand-ins for the compiled kernels (only their names are looked at)."""
    (package / "_kernels").mkdir(parents=True, exist_ok=True)
    for name in KERNEL_MODULES:
        (package / "_kernels" / f"{name}{suffix}").write_bytes(b"")


def _installed(site: Path, editable_project: Path | None = None) -> Path:
    """A pip-installed microgradnet in `site` (its files, or an editable one's project)."""
    info = site / "microgradnet-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: microgradnet\nVersion: 0.1.0\n")
    if editable_project is not None:
        (info / "direct_url.json").write_text(json.dumps(
            {"url": editable_project.as_uri(), "dir_info": {"editable": True}}))
        package = editable_project / "microgradnet"
    else:
        package = site / "microgradnet"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    _kernels(package)
    return package


def test_a_source_tree_shadowing_the_installed_copy_says_so_and_how_to_fix_it(tmp_path):
    # `pip install .`, then python started in the clone: the unbuilt source tree comes first.
    source = _source_tree(tmp_path / "clone")
    installed = _installed(tmp_path / "site")
    code = f"import sys; sys.path.insert(1, {str(tmp_path / 'site')!r}); import microgradnet"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MICROGRADNET_BACKEND")}
    result = subprocess.run([sys.executable, "-c", code], cwd=source.parent, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ImportError: ")
    assert str(source) in message and str(installed) in message
    assert "the current directory comes first on sys.path" in message
    assert "run from another directory" in message and f"`{IN_PLACE}`" in message


def test_an_editable_install_elsewhere_is_found_too(tmp_path, monkeypatch):
    source = _source_tree(tmp_path / "clone")
    other = _installed(tmp_path / "site", editable_project=tmp_path / "other")
    monkeypatch.chdir(tmp_path)  # not the clone: the clone is on the path some other way
    message = build_hint("no module", source, path=[str(tmp_path / "site")])
    assert f"instead of the installed copy in {other}" in message
    assert "PYTHONPATH" in message and f"`{IN_PLACE}`" in message


def test_an_unbuilt_source_tree_without_an_install_says_to_build_in_place(tmp_path):
    source = _source_tree(tmp_path / "clone")
    _installed(tmp_path / "site" / "broken", editable_project=None)
    for so in (tmp_path / "site" / "broken" / "microgradnet" / "_kernels").iterdir():
        so.unlink()  # an installed copy without kernels is no way out
    message = build_hint("no module", source, path=[str(tmp_path / "site" / "broken")])
    assert f"not built in the source tree {source}" in message
    assert f"`{IN_PLACE}`" in message and "installed copy" not in message
    assert "MICROGRADNET_BACKEND=numpy" in message


def test_an_installed_copy_without_kernels_says_to_reinstall(tmp_path):
    package = tmp_path / "site" / "microgradnet"
    package.mkdir(parents=True)
    message = build_hint("no module", package, path=[])
    assert "installation is incomplete" in message and "--force-reinstall" in message


def test_kernels_that_exist_but_do_not_load_say_to_rebuild(tmp_path):
    source = _source_tree(tmp_path / "clone")
    _kernels(source, ".cpython-39-x86_64-linux-gnu.so")  # another Python's build
    message = build_hint("undefined symbol", source, path=[])
    assert "exist but do not load (undefined symbol)" in message and f"`{IN_PLACE}`" in message
    installed = tmp_path / "site" / "microgradnet"
    _kernels(installed, ".cpython-39-x86_64-linux-gnu.so")
    assert "--force-reinstall" in build_hint("undefined symbol", installed, path=[])


def test_the_dev_extra_brings_what_an_in_place_build_needs():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())

    def names(requirements: list[str]) -> set[str]:
        return {r.split(";")[0].strip().split("[")[0].rstrip("<>=!~ 0123456789.,").lower()
                for r in requirements}

    dev = names(config["project"]["optional-dependencies"]["dev"])
    assert names(config["build-system"]["requires"]) <= dev
    assert {"cython", "numpy", "scipy", "setuptools"} <= dev
