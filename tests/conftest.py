"""Shared fixtures: the real corpora in ../shared/corpora, and a writer of short WAV files."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """`../shared/corpora` next to the repository; skips the test when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    if not path.is_dir():
        pytest.skip("../shared/corpora not present")
    return path


@pytest.fixture
def write_wav() -> Callable[..., Path]:
    """`write_wav(path, seconds=0.3, sr=16000, channels=1)` writes a 16-bit PCM tone, creating parents."""

    def write(path: Path | str, seconds: float = 0.3, sr: int = 16000, channels: int = 1) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(round(seconds * sr))) / sr
        tone = 0.1 * np.sin(2 * np.pi * 220.0 * t)
        data = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
        sf.write(path, data, sr, subtype="PCM_16", format="WAV")
        return path

    return write
