"""librosa's cached numba gufuncs, compiled or loaded by one process at a time.

numba caches a gufunc as two files (the kernel and its gufunc wrapper) and does not write the pair
atomically: two processes compiling the same module at once can leave a mismatched pair, and every
later process that loads it crashes with a segfault (numba issue #10128). librosa compiles these at
import, so a fresh venv whose first features run starts two pool workers is exposed; here a venv
left that way crashed in `librosa.feature.zero_crossing_rate`. Pool workers call
`load_librosa_kernels` before any feature work: the first compiles under a file lock, the others
wait and then only read the cache.
"""
from __future__ import annotations

import importlib
from pathlib import Path

# the librosa modules that declare `guvectorize(..., cache=True)` (tests/test_jit_cache.py checks the list
# against the installed librosa)
GUFUNC_MODULES = ("librosa.beat", "librosa.core.audio", "librosa.core.pitch", "librosa.util.utils")
_LOADED = False


def lock_path() -> Path:
    """The lock every process of this user shares, in ser's cache folder (`$SER_CACHE_DIR` or the user cache)."""
    from ser.encoder import cache_dir

    return cache_dir() / "librosa-kernels.lock"


def load_librosa_kernels() -> None:
    """Import the modules holding librosa's cached gufuncs under the lock, once per process."""
    global _LOADED
    if _LOADED:
        return
    from filelock import FileLock

    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(path):
        for name in GUFUNC_MODULES:
            importlib.import_module(name)
    _LOADED = True


__all__ = ["GUFUNC_MODULES", "load_librosa_kernels", "lock_path"]
