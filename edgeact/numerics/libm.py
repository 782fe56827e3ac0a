"""The platform C library's float32 math functions (tanhf, expf, erfcf, ...), called through ctypes.

LiteRT and XNNPACK build their int8 tables with ``std::tanh(float)`` and friends, which resolve to the
C library's single-precision functions. Those are not always correctly rounded, so a bit-exact
reproduction of a runtime's table calls the same functions. Where no C math library can be loaded,
the correctly rounded float32 of the float64 result is used instead (and :data:`LIBM_NAME` says so).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _libm() -> ctypes.CDLL | None:
    for name in (ctypes.util.find_library("m"), "libm.so.6", "libSystem.dylib", "msvcrt"):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def _c_function(name: str) -> Callable[[float], float] | None:
    lib = _libm()
    if lib is None or not hasattr(lib, name):
        return None
    fn = getattr(lib, name)
    fn.argtypes = [ctypes.c_float]
    fn.restype = ctypes.c_float
    return fn


LIBM_NAME = "C library" if _libm() is not None else "correctly rounded float64 (no C math library found)"


def float32_function(name: str, fallback: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised C ``<name>`` (e.g. ``"tanhf"``) on float32 arrays; ``fallback`` works in float64."""
    fn = _c_function(name)

    def evaluate(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if fn is None:
            return np.asarray(fallback(x.astype(np.float64)), dtype=np.float64).astype(np.float32)
        flat = [fn(float(v)) for v in x.ravel()]
        return np.asarray(flat, dtype=np.float32).reshape(x.shape)

    return evaluate


def float64_function(name: str, fallback: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised C ``<name>`` (e.g. ``"exp"``) on float64 arrays (numpy's own SIMD versions may differ by an ulp);
    ``fallback`` where no C library loads."""
    lib = _libm()
    fn = getattr(lib, name, None) if lib is not None else None
    if fn is not None:
        fn.argtypes, fn.restype = [ctypes.c_double], ctypes.c_double

    def evaluate(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if fn is None:
            return np.asarray(fallback(x), dtype=np.float64)
        return np.asarray([fn(float(v)) for v in x.ravel()], dtype=np.float64).reshape(x.shape)

    return evaluate


tanhf = float32_function("tanhf", np.tanh)
expf = float32_function("expf", np.exp)
