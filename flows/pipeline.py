"""The whole DAG as one Prefect flow: `dvc repro`, then what changed since the last successful run.

    python -m flows.pipeline                      # run once (a temporary Prefect API unless PREFECT_API_URL is set)
    python -m flows.pipeline train@svc            # only these targets (and what they depend on)
    python -m flows.pipeline --serve --cron "0 3 * * *"   # a schedule: needs a running Prefect server

DVC decides what is stale (its cache and dvc.lock); this flow only runs `dvc repro` in the project,
streams its output into the Prefect log, and then records what changed:

- the metrics files `dvc metrics show --json` lists, and the params `dvc.lock` records per stage,
  are compared with a snapshot taken after the last successful run (`.ser/last_success/snapshot.json`;
  `dvc metrics diff` needs git revisions, this does not); the table of (file, key, old, new, change)
  goes to `reports/pipeline_diff.md` and to a Prefect Markdown artifact `metrics-diff`;
- `.ser/last_run.json` records every run (also a failed one) for `ser status`.

Retries: `dvc repro` is retried twice (10 s, then 60 s) on failures that may pass, such as DVC's lock
being held by another run that is finishing. Failures that a rerun cannot fix are not retried: a failed
`validate` stage (the data broke its contract: the run fails naming `reports/validation.md`) and an
invalid dvc.yaml/params.yaml.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ser.run_diff import (CONFIG_MARKERS, LOCK_MARKERS, ApiUnavailable, PipelineConfigError, ReproFailed,  # noqa: F401
                          ValidationStageFailed, classify, current_metrics, current_params, diff_tables, failed_stage,
                          now, record_run, render_diff, repro_error)
from ser.io import write_json
from ser.params import ScheduleParams
from ser.status import DIFF_REPORT, SNAPSHOT, dvc_executable

DEFAULT_CRON = ScheduleParams().cron  # params.yaml `schedule.cron` default
DEPLOYMENT = "ser-pipeline"
RETRY_DELAYS = [10, 60]

_RUNNING = re.compile(r"^Running stage '([^']+)'")
_SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
_LOCK_WRITTEN = re.compile(r"^(Updating|Generating) lock file")

def retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry unless the failure is one a rerun cannot fix."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return getattr(exc, "retryable", True) if isinstance(exc, BaseException) else True


# ------------------------------------------------------------------------------------------- tasks


def _child_env() -> dict[str, str]:
    """The environment for `dvc repro`: this venv first on PATH (stage commands call `ser`, `python`),
    and this run's Prefect API so the features flows report to it instead of starting their own."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("DVC_NO_ANALYTICS", "1")
    if not env.get("PREFECT_API_URL"):
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
        if url:
            env["PREFECT_API_URL"] = url
    return env


def _stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """Interrupt a `dvc repro` still running (SIGINT: DVC releases its lock), then kill it."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@task(name="dvc repro", retries=2, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_transient,
      cache_policy=NO_CACHE)
def repro(repo: Path, targets: list[str]) -> dict[str, Any]:
    """Run `dvc repro [targets]` in `repo`, logging each line; return the stages run/skipped and their durations."""
    logger = get_run_logger()
    cmd = [dvc_executable(), "repro", *targets]
    logger.info("%s (in %s)", " ".join(cmd), repo)
    lines: list[str] = []
    ran: list[str] = []
    skipped: list[str] = []
    seconds: dict[str, float] = {}
    current: tuple[str, float] | None = None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            env=_child_env())
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if line.strip():
                logger.info("%s", line)
            now = time.perf_counter()
            if m := _RUNNING.match(line):
                if current:
                    seconds[current[0]] = round(now - current[1], 2)
                current = (m.group(1), now)
                ran.append(m.group(1))
            elif m := _SKIPPED.match(line):
                skipped.append(m.group(1))
            elif current and _LOCK_WRITTEN.match(line):  # a stage ends with its dvc.lock entry
                seconds[current[0]] = round(now - current[1], 2)
                current = None
        returncode = proc.wait()
    finally:
        _stop(proc)
    output = "\n".join(lines)
    if returncode != 0:
        err = repro_error(output, returncode, repo)
        logger.error("%s", str(err).splitlines()[0])
        raise err
    return {"ran": ran, "skipped": skipped, "seconds": seconds, "output": output,
            "wall_seconds": round(time.perf_counter() - start, 2)}



@task(name="record changes", cache_policy=NO_CACHE)
def record_changes(repo: Path, run: dict[str, Any], started: str) -> dict[str, Any]:
    """Diff metrics and params against the last successful run; publish the table; move the baseline."""
    from prefect.artifacts import create_markdown_artifact

    from ser.io import write_text

    logger = get_run_logger()
    metrics, params = current_metrics(repo, _child_env()), current_params(repo)
    baseline = None
    try:
        baseline = json.loads((repo / SNAPSHOT).read_text())
    except (OSError, ValueError):
        pass
    metric_rows, metrics_same = diff_tables((baseline or {}).get("metrics"), metrics)
    param_rows, params_same = diff_tables((baseline or {}).get("params"), params)
    finished = now()
    markdown = render_diff(run, metric_rows, metrics_same, param_rows, params_same, baseline, finished)
    write_text(markdown, repo / DIFF_REPORT)
    create_markdown_artifact(key="metrics-diff", markdown=markdown,
                             description=f"metrics and params changed by the pipeline run of {finished}")
    write_json({"finished": finished, "metrics": metrics, "params": params}, repo / SNAPSHOT)
    logger.info("%d metric values and %d params changed; table in %s", len(metric_rows), len(param_rows),
                repo / DIFF_REPORT)
    return {"metric_changes": metric_rows, "param_changes": param_rows, "finished": finished,
            "report": str(repo / DIFF_REPORT), "baseline": (baseline or {}).get("finished")}


@flow(name="pipeline")
def pipeline_flow(repo: Path = Path("."), targets: list[str] | None = None) -> dict[str, Any]:
    """`dvc repro` the whole DAG (or `targets`), then diff metrics/params against the last successful run."""
    repo = Path(repo).resolve()
    started = now()
    try:
        run = repro(repo, list(targets or []))
    except ReproFailed as err:
        record_run(repo, {"status": "failed", "started": started, "finished": now(), "targets": targets or [],
                           "ran": [], "skipped": [], "seconds": {}, "error": str(err),
                           "failed_stage": err.stage})
        raise
    changes = record_changes(repo, run, started)
    record_run(repo, {"status": "success", "started": started, "finished": changes["finished"],
                       "targets": targets or [], "ran": run["ran"], "skipped": run["skipped"],
                       "seconds": run["seconds"], "wall_seconds": run["wall_seconds"],
                       "changed_metrics": len(changes["metric_changes"]),
                       "changed_params": len(changes["param_changes"]),
                       "metric_changes": changes["metric_changes"], "param_changes": changes["param_changes"],
                       "report": str(DIFF_REPORT), "baseline": changes["baseline"]})
    return {**run, **changes}


# ------------------------------------------------------------------------------------------ serving


NO_SERVER = ("Schedules only fire on a running Prefect server: the ephemeral API a flow starts on its own "
             "lives only as long as that one run, so a served schedule would never fire. Start a server "
             "in another terminal with `prefect server start` (UI at http://127.0.0.1:4200), then "
             "`export PREFECT_API_URL=http://127.0.0.1:4200/api` and try again.")


def check_api(url: str | None = None, timeout: float = 5.0) -> str:
    """The Prefect API URL when a server answers on it; else ApiUnavailable with what to do.

    `url` defaults to PREFECT_API_URL (the environment, then the active Prefect profile).
    """
    import httpx

    if url is None:
        url = os.environ.get("PREFECT_API_URL")
        if not url:
            from prefect.settings import get_current_settings

            url = get_current_settings().api.url or ""
    url = url.strip().rstrip("/")
    if not url:
        raise ApiUnavailable(f"PREFECT_API_URL is not set. {NO_SERVER}")
    headers = {}
    if key := os.environ.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {key}"
    try:
        response = httpx.get(f"{url}/health", timeout=timeout, headers=headers)
    except httpx.HTTPError as err:
        raise ApiUnavailable(f"No Prefect server answers at PREFECT_API_URL={url} "
                             f"({type(err).__name__}: {err or 'no answer'}). {NO_SERVER}") from None
    if response.status_code != 200:
        raise ApiUnavailable(f"The Prefect API at {url} answered /health with HTTP {response.status_code}. "
                             f"{NO_SERVER}")
    return url


def serve_pipeline(cron: str = DEFAULT_CRON, repo: Path | str = Path("."), targets: list[str] | None = None,
                   name: str = DEPLOYMENT) -> None:
    """Serve `pipeline_flow` on `cron` until interrupted; at most one run at a time (DVC's lock allows one).

    Raises ApiUnavailable before registering anything when no Prefect server answers.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    url = check_api()
    print(f"Prefect API: {url}; serving {name!r} on cron {cron!r} (one run at a time)", file=sys.stderr)
    pipeline_flow.serve(
        name=name, cron=cron,
        parameters={"repo": str(Path(repo).resolve()), "targets": list(targets or [])},
        # deployment-wide: a scheduled run waits while another (scheduled or manual) is still running
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        limit=1,  # and this serving process never starts two flow runs at once
        description="dvc repro of the whole DAG, then the metrics/params diff against the last successful run",
        tags=["ser", "dvc"],
    )


def main(
    targets: Annotated[Optional[list[str]], typer.Argument(help="stages to reproduce (default: the whole DAG)")] = None,
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    serve: Annotated[bool, typer.Option("--serve", help="serve on --cron instead of running once")] = False,
    cron: Annotated[str, typer.Option(help="cron schedule for --serve")] = DEFAULT_CRON,
) -> None:
    """Run the pipeline once, or with --serve keep serving it on --cron (needs a Prefect server)."""
    try:
        if serve:
            serve_pipeline(cron, repo=repo, targets=targets)
            return
        from flows.api import prefect_api

        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # also outside the repo's prefect.toml
        with prefect_api():
            result = pipeline_flow(repo, targets or None)
    except ApiUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(2) from None
    except ReproFailed as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        raise typer.Exit(1) from None
    changed = (f"{len(result['metric_changes'])} metric values changed" if result["baseline"]
               else "first recorded run, the baseline of the next")
    print(f"ran {len(result['ran'])} stages, skipped {len(result['skipped'])}; {changed}: {result['report']}")


if __name__ == "__main__":
    typer.run(main)
