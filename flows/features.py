"""Features flow: fan chunks of one corpus (or all) out over a process pool or a Dask cluster.

`python -m flows.features --corpus demo` is what the `features@demo` DVC stage runs.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from prefect import flow, get_run_logger
from prefect.futures import as_completed

from ser.feature_table import (FeatureSettings, chunk_done, chunk_quarantine, plan_chunks, read_features, stale_parts,
                           stale_temp_files)
from ser.io import write_json, write_parquet
from ser.params import load_params
from flows.api import prefect_api
from tasks.features import extract_chunk


def task_runner(runner: dict[str, Any]):
    """Process pool by default; Dask when runner.dask_address is set ('local' starts a LocalCluster)."""
    workers = int(runner.get("workers", 2))
    address = runner.get("dask_address")
    if address:
        from prefect_dask import DaskTaskRunner

        if address == "local":
            return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
        return DaskTaskRunner(address=address)
    if runner.get("kind", "process") == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=workers)


@flow(name="features")
def features_flow(manifest_path: Path, out_dir: Path, params: dict[str, Any], corpus: str | None = None) -> dict[str, Any]:
    """Extract pooled and log-mel features for every chunk not already finished; return a summary."""
    logger = get_run_logger()
    start = time.perf_counter()
    manifest = pd.read_parquet(manifest_path)
    if corpus:
        manifest = manifest[manifest["corpus"] == corpus]
    for path in stale_temp_files(out_dir, corpus):  # left by a killed run: never read, but never kept either
        logger.info("removing temp file %s of an interrupted run", path)
        path.unlink(missing_ok=True)
    settings = FeatureSettings.from_params(params)
    chunks = plan_chunks(manifest, settings, int(params.get("runner", {}).get("chunk_size", 200)))
    todo = [c for c in chunks if not chunk_done(c, out_dir)]
    roots = {name: Path(entry["root"]) for name, entry in params["corpora"].items()}
    logger.info("%d chunks planned, %d already done, %d to extract", len(chunks), len(chunks) - len(todo), len(todo))
    by_id = manifest.set_index("utt_id", drop=False)
    futures = [extract_chunk.submit(c, by_id.loc[[u for u, _, _ in c.rows]], roots, settings, out_dir) for c in todo]
    done_rows = 0
    for i, future in enumerate(as_completed(futures), start=1):
        result = future.result()
        done_rows += result["utterances"]
        rate = done_rows / (time.perf_counter() - start)
        logger.info("chunk %d/%d done: %s (%d rows, %.1f s); %.1f utterances/s",
                    i, len(todo), result["chunk"], result["rows"], result["seconds"], rate)
    for path in stale_parts(out_dir, chunks) if corpus is None else [
            p for p in stale_parts(out_dir, chunks) if f"corpus={corpus}/" in p.as_posix()]:
        logger.info("removing stale part %s", path)
        path.unlink()
    quarantine = chunk_quarantine(out_dir, chunks)
    pooled = read_features(out_dir / "pooled", corpus=corpus, columns=["utt_id", "augmented"])
    summary = {
        "corpus": corpus or "all", "chunks": len(chunks), "extracted_chunks": len(todo),
        "utterances": int((~pooled["augmented"]).sum()), "augmented_rows": int(pooled["augmented"].sum()),
        "quarantined": len(quarantine), "feature_hash": settings.features.config_hash(),
        "seconds": round(time.perf_counter() - start, 2),
    }
    logger.info("features: %s", summary)
    return {"summary": summary, "quarantine": quarantine}


def main(corpus: str | None = None, manifest: Path = Path("data/interim/manifest.parquet"),
         out: Path = Path("data/features"), params_path: Path = Path("params.yaml"),
         metrics: Path = Path("metrics/features")) -> None:
    """Run the features flow and write its summary (a DVC metric) and quarantine table."""
    load_params(params_path)  # validates every section before any work
    params = yaml.safe_load(params_path.read_text())
    flow_fn = features_flow.with_options(task_runner=task_runner(params.get("runner") or {}))
    with prefect_api():
        result = flow_fn(manifest, out, params, corpus)
    name = corpus or "all"
    # run-dependent figures (chunks extracted this time, seconds) are logged, not DVC metrics:
    # a resumed run must not read as a change in `dvc metrics diff`
    stable = {k: v for k, v in result["summary"].items() if k not in ("extracted_chunks", "seconds")}
    write_json(stable, metrics / f"{name}.json")
    write_parquet(result["quarantine"], out / "quarantine" / f"{name}.parquet")


if __name__ == "__main__":
    import typer

    typer.run(main)
