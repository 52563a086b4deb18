"""Features flow: fan the chunks of one corpus (or all) out over a process pool or a Dask cluster.

`python -m flows.features --corpus demo` is what the `features@demo` DVC stage runs; the stage's
I/O is `ser.stages.features.main`, this module only supplies the Prefect fan-out.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed

from flows.api import prefect_api
from ser.params import Params, RunnerParams, load_params
from ser.stages import features as stage
from tasks.features import extract_chunk


def task_runner(runner: RunnerParams | dict[str, Any]):
    """Process pool by default; Dask when runner.dask_address is set ('local' starts a LocalCluster)."""
    runner = runner if isinstance(runner, RunnerParams) else RunnerParams.model_validate(runner)
    if runner.dask_address:
        from prefect_dask import DaskTaskRunner

        if runner.dask_address == "local":
            return DaskTaskRunner(cluster_kwargs={"n_workers": runner.workers, "threads_per_worker": 1,
                                                  "processes": True})
        return DaskTaskRunner(address=runner.dask_address)
    if runner.kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=runner.workers)
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=runner.workers)


def prefect_map(todo, rows, roots, settings, out):
    """One extract-chunk task per chunk, results as they finish."""
    futures = [extract_chunk.submit(c, rows.loc[[u for u, _, _ in c.rows]], roots, settings, out) for c in todo]
    for future in as_completed(futures):
        yield future.result()


@flow(name="features")
def features_flow(manifest_path: Path, out_dir: Path, params: Any, corpus: str | None = None) -> dict[str, Any]:
    """Extract pooled and log-mel features for every chunk not already finished; return a summary."""
    params = params if isinstance(params, Params) else Params.model_validate(params)
    return stage.build(params, manifest_path, out_dir, corpus, map_chunks=prefect_map, logger=get_run_logger())


def main(corpus: str | None = None, manifest: Path = Path("data/interim/manifest.parquet"),
         out: Path = Path("data/features"), params_path: Path = Path("params.yaml"),
         metrics: Path = Path("metrics/features")) -> None:
    """Check params, then run the features stage with the flow as its runner."""
    params = load_params(params_path)  # every section, before any work
    flow_fn = features_flow.with_options(task_runner=task_runner(params.runner))
    with prefect_api():
        stage.main(params, corpus, manifest, out, metrics, runner=lambda p, m, o, c: flow_fn(m, o, p, c))


if __name__ == "__main__":
    import typer

    typer.run(main)
