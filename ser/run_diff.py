"""What a pipeline run did and changed: its failure classes, and the metrics/params diff since the last success.

flows/pipeline.py runs `dvc repro` as a Prefect flow and calls these; `ser status` reads what they write
(`.ser/last_run.json`, `.ser/last_success/snapshot.json`, `reports/pipeline_diff.md`).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ser.status import LAST_RUN, VALIDATION_REPORT, dvc_executable

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


# ------------------------------------------------------------------------------------- snapshots


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and scalars are leaves."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data} if prefix else {}


def current_metrics(repo: Path, env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{metrics file: {flat key: value}} for every file `dvc metrics show --json` lists."""
    proc = subprocess.run([dvc_executable(), "metrics", "show", "--json"], cwd=repo, capture_output=True,
                          text=True, env=env or {**os.environ, "DVC_NO_ANALYTICS": "1"}, timeout=600)
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
    """Rows {file, key, old, new, change} for every value that differs; and the count of unchanged values.

    Without a baseline (`old` None: no earlier successful run) nothing changed: every value is the baseline.
    """
    if old is None:
        return [], sum(len(values) for values in new.values())
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
        out += ["No earlier successful run is recorded: this first recorded run is the baseline the next one is "
                f"compared with ({metrics_same} metric values, {params_same} tracked params).", ""]
        return "\n".join(out) + "\n"
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


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def record_run(repo: Path, record: dict[str, Any]) -> None:
    """Write .ser/last_run.json, keeping the measured duration of stages this run did not execute."""
    previous = {}
    try:
        previous = json.loads((repo / LAST_RUN).read_text()).get("durations") or {}
    except (OSError, ValueError, AttributeError):
        pass
    durations = {**previous, **{s: {"seconds": sec, "finished": record["finished"]}
                                for s, sec in (record.get("seconds") or {}).items()}}
    _write({**record, "durations": durations}, repo / LAST_RUN)


def _write(obj: Any, path: Path) -> None:
    from ser.io import write_json

    write_json(obj, path)
