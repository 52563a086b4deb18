"""Prefect task over ser.feature_table: one chunk of utterances per task run (hundreds of files, not one)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from ser.feature_table import Chunk, FeatureSettings, run_chunk
from ser.retry import is_transient, permanent, retry_transient

# A config or programming error fails the same way on every try, and so does a full disk or a missing
# path (ser.retry); only other failures (I/O hiccups, a killed worker) are worth another. A bad audio
# file never gets here: it is quarantined inside the chunk.
__all__ = ["extract_chunk", "retry_transient"]


@task(name="extract-chunk", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_transient,
      task_run_name="extract {chunk.name}")
def extract_chunk(chunk: Chunk, rows: pd.DataFrame, roots: dict[str, Path], settings: FeatureSettings,
                  out_dir: Path) -> dict[str, Any]:
    """Extract and write one chunk; retried only on transient failures (a full disk or a config error fails at
    once with one line naming the path; a bad file is quarantined, not retried)."""
    from ser.features import limit_blas_threads
    from ser.jit_cache import load_librosa_kernels

    limit_blas_threads(1)  # parallelism comes from chunks; a threaded BLAS per worker only contends
    load_librosa_kernels()  # workers starting together must not compile librosa's numba cache at once
    try:
        return run_chunk(chunk, rows, roots, settings, out_dir)
    except Exception as exc:
        if is_transient(exc):
            raise
        raise permanent(exc) from None
