"""Load a script of the repository (benchmarks/, examples/) as a module, by its path."""

import importlib.util
import sys
from pathlib import Path


def load_script(path: Path, module_name: str):
    """Execute the file at path as module `module_name` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
