"""Prefect task over ser.feature_table: one chunk of utterances per task run (hundreds of files, not one)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from ser.feature_table import Chunk, FeatureSettings, run_chunk


@task(name="extract-chunk", retries=2, retry_delay_seconds=[2, 10], task_run_name="extract {chunk.name}")
def extract_chunk(chunk: Chunk, rows: pd.DataFrame, roots: dict[str, Path], settings: FeatureSettings,
                  out_dir: Path) -> dict[str, Any]:
    """Extract and write one chunk; retried on transient failures (a bad file is quarantined, not retried)."""
    from ser.features import limit_blas_threads

    limit_blas_threads(1)  # parallelism comes from chunks; a threaded BLAS per worker only contends
    return run_chunk(chunk, rows, roots, settings, out_dir)
