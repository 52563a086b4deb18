"""The committed DVC config leaves git alone: `dvc repro` must not stage dvc.lock behind the user's back."""
from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_autostage_is_off():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config.get("core", "autostage", fallback="false").strip().lower() in {"false", "0", "no"}
    assert config.get("core", "analytics", fallback="").strip().lower() == "false"
