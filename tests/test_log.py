"""ser.log: progress lines print once, whether or not the process configured logging itself."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import logging, sys
{setup}
from ser.log import get_logger
get_logger("ser.feature_table").info("features part-00000: 1/200 files")
"""


def run(setup: str) -> str:
    out = subprocess.run([sys.executable, "-c", CODE.format(setup=setup)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stderr


def test_prints_once_without_logging_configured():
    lines = run("").splitlines()
    assert len(lines) == 1 and lines[0].endswith("features part-00000: 1/200 files")


def test_prints_once_through_the_host_handler_when_logging_is_configured():
    lines = run("logging.basicConfig(format='HOST %(name)s %(message)s', level=logging.INFO)").splitlines()
    assert lines == ["HOST ser.feature_table features part-00000: 1/200 files"]
