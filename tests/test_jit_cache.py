"""librosa's cached numba gufuncs are compiled by one process at a time (numba #10128: two processes
compiling at once can leave a cache pair that segfaults every later process)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import librosa
from filelock import FileLock

from ser.jit_cache import GUFUNC_MODULES, lock_path

ROOT = Path(__file__).resolve().parents[1]


def cached_gufunc_modules() -> set[str]:
    """Modules of the installed librosa with a `guvectorize(...)` decorator that passes cache=True."""
    base = Path(librosa.__file__).parent
    found = set()
    for path in base.rglob("*.py"):
        for match in re.finditer(r"guvectorize\((.*?)\)\s*(?:#[^\n]*)?\n\s*def ", path.read_text(), re.S):
            if re.search(r"cache\s*=\s*True", match.group(1)):
                found.add(".".join(("librosa", *path.relative_to(base).with_suffix("").parts)))
    return found


def test_the_list_is_the_installed_librosas_cached_gufunc_modules():
    assert set(GUFUNC_MODULES) == cached_gufunc_modules()


def test_a_second_process_waits_for_the_lock_then_loads_every_module(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_CACHE_DIR", str(tmp_path))
    code = ("import sys; from ser.jit_cache import GUFUNC_MODULES, load_librosa_kernels; load_librosa_kernels(); "
            "print(all(m in sys.modules for m in GUFUNC_MODULES))")
    with FileLock(lock_path()):
        assert lock_path().parent == tmp_path
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(3.0)  # long past its start-up: it is waiting on the lock this process holds
        assert proc.poll() is None
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0 and out.strip() == "True"
