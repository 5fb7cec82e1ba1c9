"""Build the Cython kernels in csrc/ into microgradnet/_kernels/.

Set MICROGRADNET_DEBUG=1 to build with Cython's bounds, wraparound and initialization
checks on, assertions kept and no optimization (for debugging a kernel, not for speed).
Set MICROGRADNET_WERROR=1 to fail the build on any compiler warning (-Wall -Werror; CI does).
"""

import os
import runpy
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# The module names, from the list the package uses too (read, not imported: importing the
# package would need the extensions this builds).
_modules = runpy.run_path("microgradnet/_kernel_modules.py")
KERNEL_MODULES = _modules["KERNEL_MODULES"]
OPENMP_MODULES = _modules["OPENMP_MODULES"]

debug = os.environ.get("MICROGRADNET_DEBUG", "0") not in ("", "0")
werror = os.environ.get("MICROGRADNET_WERROR", "0") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": debug,
    "cdivision": not debug,
    "embedsignature": True,
}

if sys.platform == "win32":
    compile_args = ["/O2"] if not debug else ["/Od", "/Zi"]
else:
    # -fno-math-errno lets gcc inline sqrt/fabs; -fno-trapping-math lets it turn selects
    # like `x > 0 ? x : a*x` into branch-free vector code (it changes no value, only FP
    # exception flags, which Python never traps). No -ffast-math: NaN and inf must propagate.
    release = ["-O3", "-g0", "-fno-math-errno", "-fno-trapping-math"]
    compile_args = ["-O0", "-g", "-UNDEBUG"] if debug else release
    if werror:
        compile_args = [*compile_args, "-Wall", "-Werror"]


def openmp_flags() -> list[str]:
    """["-fopenmp"] if the C compiler builds and links an OpenMP program with it, else [].

    As scikit-learn does: try a tiny program. Apple's clang has no -fopenmp (and no libomp
    by default), MSVC spells it /openmp; without it the kernels build single-threaded
    (cython.parallel's prange then compiles to a plain loop). MICROGRADNET_OPENMP=0 forces that.
    """
    if os.environ.get("MICROGRADNET_OPENMP", "1") in ("", "0"):
        return []
    if sys.platform == "win32":
        return ["/openmp"]
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    code = (
        "#include <omp.h>\n"
        "int main(void) {\n"
        "    int n = 0;\n"
        "    #pragma omp parallel num_threads(2) reduction(+:n)\n"
        "    n += 1;\n"
        "    return n >= 1 && omp_get_max_threads() >= 1 ? 0 : 1;\n"
        "}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "omp_test.c"
        src.write_text(code)
        try:
            result = subprocess.run(
                [*cc.split(), "-fopenmp", str(src), "-o", str(Path(tmp) / "omp_test")],
                capture_output=True,
            )
        except OSError:
            return []
    return ["-fopenmp"] if result.returncode == 0 else []


OPENMP = openmp_flags()
OPENMP_LINK = [] if sys.platform == "win32" else OPENMP  # MSVC links its runtime itself

HEADERS = [
    "csrc/vmath.pxd", "csrc/checks.pxd", "csrc/loops.pxd", "csrc/fpenv.h", "csrc/vmath.h",
    "csrc/vmath_loops.h", "csrc/vmath_gemm.h", "csrc/optim_loops.h", "csrc/prefetch.h",
    "csrc/threads.pxi", "csrc/simd.pxi", "csrc/activation_table.pxi", "csrc/poll.h",
]

# The trainer draws the next epochs' orders on a POSIX thread (csrc/prefetch.h).
PTHREAD = ["-pthread"] if os.name == "posix" else []

extensions = [
    Extension(
        f"microgradnet._kernels.{name}",
        [f"csrc/{name}.pyx"],
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
        extra_compile_args=compile_args + (OPENMP if name in OPENMP_MODULES else [])
        + (PTHREAD if name == "trainer" else []),
        extra_link_args=(OPENMP_LINK if name in OPENMP_MODULES else [])
        + (PTHREAD if name == "trainer" else []),
        depends=HEADERS,  # an edited header rebuilds the kernels
    )
    for name in KERNEL_MODULES
]
# The autograd core is plain Python (it runs uncompiled too); compiled in Cython's pure
# Python mode, Tensor and Function become extension types and per-op overhead drops.
extensions.append(
    Extension(
        "microgradnet.autograd", ["microgradnet/autograd.py"], extra_compile_args=compile_args,
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    )
)
# The ops (functional.py) too: their forward and backward then run without Python frames.
# It is plain Python and keeps Python's semantics: negative and checked indices, and
# annotations that are hints, not C types (a numpy integer stays a valid axis).
python_semantics = {"wraparound": True, "boundscheck": True, "cdivision": False,
                    "annotation_typing": False}
# And the optimizers: a hand-written loop's zero_grad() and step() then run without Python
# frames (the kernels themselves are in csrc/optim.pyx).
plain_python = [
    Extension(
        f"microgradnet.{name}", [f"microgradnet/{name}.py"], extra_compile_args=compile_args
    )
    for name in ("functional", "optimizers")
]

# Switching between debug and release builds must rebuild everything: the sources did not
# change, so otherwise the other mode's objects would be kept (a -O0 kernel is 50x slower).
mode = "debug" if debug else "release"
marker = Path("build") / ".microgradnet-build-mode"
switched = marker.exists() and marker.read_text() != mode
marker.parent.mkdir(exist_ok=True)
marker.write_text(mode)

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        include_path=["csrc"],
        force=debug or switched,
    )
    + cythonize(
        plain_python,
        compiler_directives={**directives, **python_semantics},
        force=debug or switched,
    ),
    options={"build_ext": {"force": switched}},
)
