"""The README's commands run as written from a fresh shell: two set-up commands, then bin/ shims."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("ser", "dvc", "python", "prefect", "uv")


def code_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)]


def commands(line: str) -> list[str]:
    """The commands a shell line runs (before any comment): split on ; && | and `do`."""
    code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
    parts = re.split(r";|&&|\|\||\||\bdo\b", code)
    return [p.strip() for p in parts if p.strip() and not p.strip().startswith(("for ", "done"))]


def test_setup_is_exactly_make_run_and_make_test():
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("##", 1)[0]
    first = code_blocks(setup)[0]
    assert [commands(line)[0].split()[:2] for line in first] == [["make", "run"], ["make", "test"]]


def test_every_tool_in_a_code_block_goes_through_bin():
    bare = []
    for block in code_blocks((ROOT / "README.md").read_text()):
        for line in block:
            for cmd in commands(line):
                word = cmd.split()[0]
                if word in TOOLS:
                    bare.append(line)
    assert bare == []


def test_each_shim_links_to_the_runner():
    for tool in TOOLS:
        shim = ROOT / "bin" / tool
        assert shim.is_symlink() and os.readlink(shim) == "venv-run", tool
    assert os.access(ROOT / "bin" / "venv-run", os.X_OK)


def test_shim_without_a_venv_says_what_to_run(tmp_path):
    shutil.copytree(ROOT / "bin", tmp_path / "bin", symlinks=True)
    run = subprocess.run([str(tmp_path / "bin" / "ser"), "--help"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 127
    assert "run `make run` or `make test` first" in run.stderr


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv here (make test creates it)")
def test_shim_runs_the_venv_tool_with_its_bin_first_on_path(tmp_path):
    code = "import os, sys; print(sys.prefix); print(os.environ['PATH'].split(':')[0])"
    run = subprocess.run([str(ROOT / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    prefix, first = run.stdout.split()
    assert Path(prefix).resolve() == (ROOT / ".venv").resolve()
    assert Path(first).resolve() == (ROOT / ".venv" / "bin").resolve()
