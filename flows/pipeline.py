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
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from ser.status import DIFF_REPORT, LAST_RUN, SNAPSHOT, VALIDATION_REPORT, dvc_executable

DEFAULT_CRON = "0 3 * * *"
DEPLOYMENT = "ser-pipeline"
RETRY_DELAYS = [10, 60]

_RUNNING = re.compile(r"^Running stage '([^']+)'")
_SKIPPED = re.compile(r"^Stage '([^']+)' didn't change, skipping")
_LOCK_WRITTEN = re.compile(r"^(Updating|Generating) lock file")
_FAILED_STAGE = re.compile(r"failed to reproduce '([^']+)'")
LOCK_MARKERS = ("Unable to acquire lock", "is busy, it is being blocked by", "Lock file is in use")
# in DVC's own error lines (never a stage's output): the pipeline definition is wrong, a rerun cannot help
CONFIG_MARKERS = ("is invalid", "YAML", "failed to parse", "are missing from", "not found inside",
                  "does not exist", "unknown")


# ------------------------------------------------------------------------------------------- errors


class ReproFailed(RuntimeError):
    """`dvc repro` failed; `output` holds everything it printed."""

    retryable = True

    def __init__(self, message: str, output: str = "", returncode: int | None = None, stage: str | None = None):
        super().__init__(message)
        self.output, self.returncode, self.stage = output, returncode, stage


class ValidationStageFailed(ReproFailed):
    """The `validate` stage failed: the data broke its contract. Rerunning cannot fix it."""

    retryable = False


class PipelineConfigError(ReproFailed):
    """dvc.yaml, params.yaml or a target is invalid. Rerunning cannot fix it."""

    retryable = False


class ApiUnavailable(RuntimeError):
    """No Prefect server answers: schedules would never fire."""


def failed_stage(output: str) -> str | None:
    """The stage DVC names in 'failed to reproduce 'STAGE'', if any."""
    found = _FAILED_STAGE.findall(output)
    return found[-1] if found else None


def classify(output: str) -> str:
    """Why `dvc repro` failed: 'validation', 'lock', 'config' or 'other' (from what it printed)."""
    stage = failed_stage(output) or ""
    if stage.split("@")[0].split(":")[-1] == "validate" or "ValidationFailed" in output \
            or "validation failed" in output.lower():
        return "validation"
    if any(m in output for m in LOCK_MARKERS):
        return "lock"
    dvc_errors = [line for line in output.splitlines()
                  if line.startswith("ERROR") or re.match(r"^'[^']*' is invalid", line)]
    if any(m in line for line in dvc_errors for m in CONFIG_MARKERS):
        return "config"
    return "other"


def repro_error(output: str, returncode: int, repo: Path) -> ReproFailed:
    """The exception for a failed `dvc repro`, its message ending with the last lines of output."""
    kind, stage = classify(output), failed_stage(output)
    tail = "\n".join(output.rstrip().splitlines()[-15:])
    if kind == "validation":
        report = repo / VALIDATION_REPORT
        return ValidationStageFailed(
            f"validation failed: the data broke its contract (not retried); read the report {report}\n{tail}",
            output, returncode, stage)
    if kind == "config":
        return PipelineConfigError(f"dvc repro refused the pipeline definition (not retried):\n{tail}",
                                   output, returncode, stage)
    what = "DVC's lock is held by another run" if kind == "lock" else \
        f"stage {stage!r} failed" if stage else f"dvc repro exited with {returncode}"
    return ReproFailed(f"{what}:\n{tail}", output, returncode, stage)


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


# ------------------------------------------------------------------------------------- snapshots


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and scalars are leaves."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data} if prefix else {}


def current_metrics(repo: Path) -> dict[str, dict[str, Any]]:
    """{metrics file: {flat key: value}} for every file `dvc metrics show --json` lists."""
    proc = subprocess.run([dvc_executable(), "metrics", "show", "--json"], cwd=repo, capture_output=True,
                          text=True, env=_child_env(), timeout=600)
    try:
        shown = json.loads(proc.stdout or "{}")
    except ValueError:
        shown = {}
    files = ((shown.get("") or next(iter(shown.values()), {}) or {}).get("data") or {}) if shown else {}
    return {path: flatten(entry.get("data") or {}) for path, entry in sorted(files.items())
            if isinstance(entry, dict) and "data" in entry}


def current_params(repo: Path) -> dict[str, dict[str, Any]]:
    """{params file: {flat key: value}} as dvc.lock records them (the params the stages ran with)."""
    import yaml

    try:
        lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for entry in (lock.get("stages") or {}).values():
        for path, values in ((entry or {}).get("params") or {}).items():
            out.setdefault(path, {}).update(flatten(values or {}))
    return {path: dict(sorted(values.items())) for path, values in sorted(out.items())}


def diff_tables(old: dict[str, dict[str, Any]] | None, new: dict[str, dict[str, Any]]) -> tuple[list[dict], int]:
    """Rows {file, key, old, new, change} for every value that differs; and the count of unchanged values."""
    old = old or {}
    rows, same = [], 0
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, {}), new.get(path, {})
        for key in sorted(set(a) | set(b)):
            if key in a and key in b and a[key] == b[key]:
                same += 1
                continue
            rows.append({"file": path, "key": key, "old": a.get(key), "new": b.get(key),
                         "change": _change(a, b, key)})
    return rows, same


def _change(a: dict, b: dict, key: str) -> str:
    if key not in a:
        return "added"
    if key not in b:
        return "removed"
    x, y = a[key], b[key]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y)):
        delta = y - x
        return f"{delta:+.4g}" + (f" ({delta / x:+.1%})" if x else "")
    return "changed"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    text = f"{value:.6g}" if isinstance(value, float) else json.dumps(value) if isinstance(value, (list, dict)) \
        else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_diff(run: dict[str, Any], metric_rows: list[dict], metrics_same: int, param_rows: list[dict],
                params_same: int, baseline: dict[str, Any] | None, finished: str) -> str:
    """The Markdown of reports/pipeline_diff.md and of the `metrics-diff` artifact."""
    out = [f"# Pipeline run {finished}", ""]
    ran = ", ".join(f"`{s}` ({run['seconds'][s]:.1f} s)" if s in run["seconds"] else f"`{s}`" for s in run["ran"])
    out.append(f"**Stages run:** {ran or 'none: everything was up to date'}  ")
    out.append(f"**Skipped (unchanged):** {len(run['skipped'])}  ")
    out.append(f"**`dvc repro` wall time:** {run['wall_seconds']:.1f} s")
    out.append("")
    if baseline is None:
        out += ["No earlier successful run is recorded: this run is the baseline the next one is compared with.", ""]
        since = " (first recorded run: every value is new)"
    else:
        since = f" changed since the last successful run ({baseline.get('finished', '?')})"
    out += [f"## Metrics{since}", ""]
    if metric_rows:
        out += ["| file | metric | old | new | change |", "|---|---|---:|---:|---:|"]
        out += [f"| {_cell(r['file'])} | {_cell(r['key'])} | {_cell(r['old'])} | {_cell(r['new'])} | {r['change']} |"
                for r in metric_rows]
    else:
        out.append("No metric changed.")
    out += ["", f"{metrics_same} metric values unchanged.", "", f"## Params{since}", ""]
    if param_rows:
        out += ["| file | param | old | new |", "|---|---|---|---|"]
        out += [f"| {_cell(r['file'])} | {_cell(r['key'])} | {_cell(r['old'])} | {_cell(r['new'])} |"
                for r in param_rows]
    else:
        out.append("No tracked param changed.")
    out += ["", f"{params_same} tracked params unchanged."]
    return "\n".join(out) + "\n"


def _write_json(obj: Any, path: Path) -> None:
    from ser.io import write_json

    write_json(obj, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _record_run(repo: Path, record: dict[str, Any]) -> None:
    """Write .ser/last_run.json, keeping the measured duration of stages this run did not execute."""
    previous = {}
    try:
        previous = json.loads((repo / LAST_RUN).read_text()).get("durations") or {}
    except (OSError, ValueError, AttributeError):
        pass
    durations = {**previous, **{s: {"seconds": sec, "finished": record["finished"]}
                                for s, sec in (record.get("seconds") or {}).items()}}
    _write_json({**record, "durations": durations}, repo / LAST_RUN)


@task(name="record changes", cache_policy=NO_CACHE)
def record_changes(repo: Path, run: dict[str, Any], started: str) -> dict[str, Any]:
    """Diff metrics and params against the last successful run; publish the table; move the baseline."""
    from prefect.artifacts import create_markdown_artifact

    from ser.io import write_text

    logger = get_run_logger()
    metrics, params = current_metrics(repo), current_params(repo)
    baseline = None
    try:
        baseline = json.loads((repo / SNAPSHOT).read_text())
    except (OSError, ValueError):
        pass
    metric_rows, metrics_same = diff_tables((baseline or {}).get("metrics"), metrics)
    param_rows, params_same = diff_tables((baseline or {}).get("params"), params)
    finished = _now()
    markdown = render_diff(run, metric_rows, metrics_same, param_rows, params_same, baseline, finished)
    write_text(markdown, repo / DIFF_REPORT)
    create_markdown_artifact(key="metrics-diff", markdown=markdown,
                             description=f"metrics and params changed by the pipeline run of {finished}")
    _write_json({"finished": finished, "metrics": metrics, "params": params}, repo / SNAPSHOT)
    logger.info("%d metric values and %d params changed; table in %s", len(metric_rows), len(param_rows),
                repo / DIFF_REPORT)
    return {"metric_changes": metric_rows, "param_changes": param_rows, "finished": finished,
            "report": str(repo / DIFF_REPORT), "baseline": (baseline or {}).get("finished")}


@flow(name="pipeline")
def pipeline_flow(repo: Path = Path("."), targets: list[str] | None = None) -> dict[str, Any]:
    """`dvc repro` the whole DAG (or `targets`), then diff metrics/params against the last successful run."""
    repo = Path(repo).resolve()
    started = _now()
    try:
        run = repro(repo, list(targets or []))
    except ReproFailed as err:
        _record_run(repo, {"status": "failed", "started": started, "finished": _now(), "targets": targets or [],
                           "ran": [], "skipped": [], "seconds": {}, "error": str(err),
                           "failed_stage": err.stage})
        raise
    changes = record_changes(repo, run, started)
    _record_run(repo, {"status": "success", "started": started, "finished": changes["finished"],
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
    print(f"ran {len(result['ran'])} stages, skipped {len(result['skipped'])}; "
          f"{len(result['metric_changes'])} metric values changed: {result['report']}")


if __name__ == "__main__":
    typer.run(main)
