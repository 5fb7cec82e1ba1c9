"""Packaging: the licence file, an sdist that holds what the tests need, and what tab
completion offers (each module's __all__ and __dir__; mg.viz before its first use)."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import shutil
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

import microgradnet as mg

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(mg.__file__).resolve().parent


def test_the_licence_file_matches_the_declared_licence():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the microgradnet developers" in text
    assert '"MIT"' in (ROOT / "pyproject.toml").read_text()


@pytest.mark.slow  # builds an sdist (cythonizes the kernels)
def test_the_sdist_ships_what_the_tests_need(tmp_path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout (its file list is what the tests may use)")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    # A copy, so the build's by-products (generated .c, egg-info) stay out of the checkout.
    src = tmp_path / "src"
    for name in tracked:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, src / name)
    try:
        import build  # noqa: F401
    except ImportError:
        command = [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)]
    else:
        command = [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
                   str(tmp_path), str(src)]
    subprocess.run(command, cwd=src, check=True, capture_output=True, timeout=600)
    (archive,) = tmp_path.glob("microgradnet-*.tar.gz")
    with tarfile.open(archive) as tar:
        shipped = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = {name for name in tracked if not name.startswith((".ci/", ".gitignore"))}
    assert not needed - shipped, sorted(needed - shipped)
    assert not {n for n in shipped if n.endswith((".c", ".so")) and n.startswith("csrc/")}


# --------------------------------------------------------------------------- tab completion


def _public_modules() -> list[types.ModuleType]:
    names = ["microgradnet"] + [
        m.name for m in pkgutil.walk_packages(mg.__path__, "microgradnet.")
        if not any(part.startswith("_") for part in m.name.split("."))]
    return [importlib.import_module(name) for name in names]


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_tab_completion_offers_no_imported_modules(module):
    assert isinstance(module.__all__, list | tuple)
    for name in module.__all__:
        assert hasattr(module, name), name
    public = [n for n in dir(module) if not n.startswith("_")]
    assert set(module.__all__) <= set(public) | {"viz"}
    for name in public:
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__.startswith("microgradnet."), (name, value.__name__)
    assert not {"np", "os", "sys", "math", "warnings"} & set(public)


@pytest.mark.parametrize("module", _public_modules(), ids=lambda m: m.__name__)
def test_every_public_function_and_class_is_in_all(module):
    # A name left out of __all__ is hidden from dir() (the module's __dir__) and from tab
    # completion: add new public names to their module's __all__.
    defined = {n for n, v in vars(module).items() if not n.startswith("_")
               and (inspect.isfunction(v) or inspect.isclass(v))
               and getattr(v, "__module__", None) == module.__name__}
    assert not defined - set(module.__all__), sorted(defined - set(module.__all__))


def test_viz_is_in_dir_before_first_use(tmp_path):
    code = ("import sys, microgradnet as mg; print('viz' in dir(mg), "
            "'microgradnet.viz' in sys.modules, 'matplotlib' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env=env).stdout.split()
    assert out == ["True", "False", "False"]
