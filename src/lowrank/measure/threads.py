"""Thread control for NumPy's BLAS without extra dependencies (what threadpoolctl does):
call OpenBLAS's own set/get functions in the library NumPy loaded, found in /proc/self/maps.
Timings must state their threads, and environment variables are read only at import time."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

_SET = (
    "scipy_openblas_set_num_threads64_",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
_GET = (
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


def _openblas_libraries() -> list[str]:
    """Paths of the OpenBLAS libraries mapped into this process (NumPy's among them)."""
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure NumPy's BLAS is loaded
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    paths = {line.split()[-1] for line in lines if "openblas" in line.lower() and "/" in line}
    return sorted(paths)


def set_blas_threads(n: int) -> str:
    """Limit NumPy's OpenBLAS to `n` threads; return what was set (or why not)."""
    done = []
    for path in _openblas_libraries():
        lib = ctypes.CDLL(path)
        setter = next((getattr(lib, s) for s in _SET if hasattr(lib, s)), None)
        getter = next((getattr(lib, g) for g in _GET if hasattr(lib, g)), None)
        if setter is None:
            continue
        setter(ctypes.c_int(n))
        got = getter() if getter is not None else "?"
        done.append(f"{Path(path).name}: {got} thread(s)")
    return "; ".join(done) or "no OpenBLAS found: BLAS threads not set (see OMP/OPENBLAS env)"
