"""Two `dvc repro` at once: the second is refused by DVC's lock with a clear message, and the first
finishes with its outputs intact (the README's advice: serialise scheduled runs).

The repository is a throwaway `dvc init --no-scm` one with a single stage that holds its output's
lock until the test lets it go (a marker file), so the overlap never depends on timing.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

DVC = Path(sys.executable).parent / "dvc"
pytestmark = pytest.mark.skipif(not DVC.is_file(), reason=f"no dvc next to {sys.executable}")

STAGE = ("touch started; i=0; while [ ! -f release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
         "echo done > out.txt")


def _dvc(repo: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(DVC), *args], cwd=repo, capture_output=True, text=True, timeout=timeout)


def test_second_repro_is_refused_by_the_lock(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert _dvc(repo, "init", "--no-scm", "-q").returncode == 0
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"slow": {"cmd": STAGE, "outs": ["out.txt"]}}}))

    first = subprocess.Popen([str(DVC), "repro"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while not (repo / "started").exists():  # the first run holds the locks and is inside its stage
            assert first.poll() is None, first.communicate()[0]
            assert time.monotonic() < deadline, "the first dvc repro never started its stage"
            time.sleep(0.05)
        second = _dvc(repo, "repro")
    finally:
        (repo / "release").touch()
        first_out = first.communicate(timeout=120)[0]

    message = second.stdout + second.stderr
    assert second.returncode != 0, message
    assert "lock" in message.lower() and "ERROR" in message, message
    assert "is busy, it is being blocked by" in message or "Unable to acquire lock" in message, message

    assert first.returncode == 0, first_out
    assert (repo / "out.txt").read_text() == "done\n"
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    (out,) = lock["stages"]["slow"]["outs"]
    assert out["path"] == "out.txt" and out["md5"] == hashlib.md5(b"done\n").hexdigest()
    status = _dvc(repo, "status")  # the lock is released and the workspace matches dvc.lock
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
