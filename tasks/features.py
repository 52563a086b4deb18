"""Prefect task over ser.feature_table: one chunk of utterances per task run (hundreds of files, not one)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from ser.feature_table import Chunk, FeatureSettings, run_chunk

# A config or programming error fails the same way on every try; only other failures (I/O, a killed
# worker) are worth another. A bad audio file never gets here: it is quarantined inside the chunk.
NOT_RETRIED = (ValueError, TypeError, KeyError, AttributeError)


def retry_transient(task, task_run, state) -> bool:
    """Prefect retry condition: retry unless the chunk failed on a config (ParamsError is a ValueError) or a bug."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return not isinstance(exc, NOT_RETRIED)


@task(name="extract-chunk", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_transient,
      task_run_name="extract {chunk.name}")
def extract_chunk(chunk: Chunk, rows: pd.DataFrame, roots: dict[str, Path], settings: FeatureSettings,
                  out_dir: Path) -> dict[str, Any]:
    """Extract and write one chunk; retried on transient failures (a bad file is quarantined, not retried)."""
    from ser.features import limit_blas_threads

    limit_blas_threads(1)  # parallelism comes from chunks; a threaded BLAS per worker only contends
    return run_chunk(chunk, rows, roots, settings, out_dir)
