"""The extract-chunk task under Prefect: a full disk fails at once (one attempt, one line), an I/O hiccup is retried."""
import errno
import os
from pathlib import Path

import pytest

import tasks.features as task_module
from ser.feature_table import Chunk
from ser.retry import PermanentError

CHUNK = Chunk("demo", "train", 0, (("demo/a.wav", "a.wav", "0"),), "k")


@pytest.fixture
def fast_task():
    return task_module.extract_chunk.with_options(retry_delay_seconds=0)


def _failing(monkeypatch, exc, succeed_after=None):
    calls = []

    def run_chunk(*args, **kwargs):
        calls.append(1)
        if succeed_after is not None and len(calls) > succeed_after:
            return {"chunk": "c", "rows": 0, "utterances": 0, "quarantined": 0, "seconds": 0.0}
        raise exc

    monkeypatch.setattr(task_module, "run_chunk", run_chunk)
    return calls


def test_full_disk_is_not_retried(prefect_harness, monkeypatch, fast_task, tmp_path):
    path = tmp_path / "pooled" / "part-00000.parquet"
    calls = _failing(monkeypatch, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)))
    with pytest.raises(PermanentError) as info:
        fast_task(CHUNK, None, {}, None, Path(tmp_path))
    assert len(calls) == 1
    assert str(info.value) == f"No space left on device: {path}" and "\n" not in str(info.value)


def test_config_error_is_not_retried(prefect_harness, monkeypatch, fast_task, tmp_path):
    calls = _failing(monkeypatch, ValueError("features.n_mels must be positive, got 0"))
    with pytest.raises(PermanentError, match="n_mels"):
        fast_task(CHUNK, None, {}, None, Path(tmp_path))
    assert len(calls) == 1


def test_transient_io_error_is_retried(prefect_harness, monkeypatch, fast_task, tmp_path):
    calls = _failing(monkeypatch, OSError(errno.EIO, os.strerror(errno.EIO), "/mnt/nfs/a.wav"), succeed_after=2)
    assert fast_task(CHUNK, None, {}, None, Path(tmp_path))["chunk"] == "c"
    assert len(calls) == 3
