"""`ser status`: what the last pipeline run did, read from files the pipeline leaves behind.

    summary = run_status(Path("."))        # a plain dict (JSON-serialisable)
    for table in format_status(summary):   # rich tables
        console.print(table)

Sources, each optional (a missing one reads as "unknown", never as an error):

- `dvc.lock`: the stages that have run; `dvc status --json` (one subprocess, a few seconds on a
  large workspace since it hashes changed data) says which are stale and why;
- `.ser/last_run.json`: written by `flows/pipeline.py` after every run: stages run and skipped,
  measured stage durations, status, the number of changed metrics and params;
- stage durations: only those measured, from `.ser/last_run.json` when the pipeline flow (`ser
  pipeline`) ran the stage; a stage run by plain `dvc repro` shows "not timed" (output mtimes said
  "19.8 min" for a 3-s ingest that ran long after the stage before it);
- headline metrics: `metrics/best.json` and `metrics/loso/*.json`;
- validation: the verdict line of `reports/validation.md` (`✓ all tables passed` / `✗ failed: ...`);
- the last metrics/params diff: `reports/pipeline_diff.md` (its rows are in `.ser/last_run.json`).

The paths are shared with flows/pipeline.py, which imports them from here.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATE_DIR = Path(".ser")
LAST_RUN = STATE_DIR / "last_run.json"                     # the last pipeline run, failed or not
SNAPSHOT = STATE_DIR / "last_success" / "snapshot.json"    # metrics + params of the last successful run
DIFF_REPORT = Path("reports/pipeline_diff.md")
VALIDATION_REPORT = Path("reports/validation.md")
BEST_METRICS = Path("metrics/best.json")
LOSO_METRICS = Path("metrics/loso")

BEST_KEYS = ("model", "val_uar", "test_uar", "test_macro_f1", "test_accuracy")
LOSO_KEYS = ("uar_mean", "uar_std", "macro_f1_mean", "folds", "skipped", "speakers")
MAX_DIFF_ROWS = 25  # changed metrics shown by format_status


def dvc_executable() -> str:
    """The dvc next to this interpreter (the project's venv), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.is_file() else "dvc"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _latest_mtime(repo: Path, paths: list[str]) -> float | None:
    """Newest mtime among the files of `paths` (folders walked); None when none exists."""
    latest: float | None = None
    for rel in paths:
        path = repo / rel
        if path.is_file():
            candidates = [path.stat().st_mtime]
        elif path.is_dir():
            candidates = []
            for root, _, files in os.walk(path):
                candidates += [os.stat(os.path.join(root, f)).st_mtime for f in files]
        else:
            continue
        if candidates:
            latest = max(candidates) if latest is None else max(latest, *candidates)
    return latest


def _dvc_status(repo: Path, timeout: float = 300) -> tuple[dict[str, Any] | None, str | None]:
    """`dvc status --json` as {stage: [changes]} (empty: all up to date), or (None, error)."""
    try:
        proc = subprocess.run([dvc_executable(), "status", "--json"], cwd=repo, capture_output=True, text=True,
                              timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"dvc status did not run: {err}"
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        return None, lines[-1] if lines else f"dvc status exited with {proc.returncode}"
    text = proc.stdout.strip()
    try:
        return (json.loads(text) if text else {}), None
    except ValueError:
        return None, f"dvc status printed no JSON: {text[:200]}"


def stale_stages(repo: Path, targets: list[str] | None = None) -> dict[str, Any]:
    """DVC's status of `targets` and every stage they depend on, in-process: {stage: [changes]}, empty when
    `dvc repro targets` would run nothing. Raises what DVC raises (no repo, bad dvc.yaml, lock held)."""
    from contextlib import chdir

    from dvc.repo import Repo

    with chdir(repo), Repo(".") as dvc:  # DVC resolves stage names against the working directory
        return dvc.status(targets=list(targets or []) or None, with_deps=True)


def _describe_changes(changes: Any) -> str:
    """One line for a stage's `dvc status` entry, e.g. 'deps: params.yaml (seed modified); outs: x deleted'."""
    if not changes:
        return ""
    parts: list[str] = []
    for change in changes if isinstance(changes, list) else [changes]:
        if isinstance(change, str):  # "always changed", "changed checksum"
            parts.append(change)
            continue
        for kind, detail in change.items():
            label = kind.replace("changed ", "")
            if isinstance(detail, dict):
                items = []
                for path, what in detail.items():
                    if isinstance(what, dict):  # params: {key: modified|new|deleted}
                        inner = ", ".join(f"{k} {v}" for k, v in list(what.items())[:3])
                        more = f", +{len(what) - 3} more" if len(what) > 3 else ""
                        items.append(f"{path} ({inner}{more})")
                    else:
                        items.append(f"{path} {what}")
                parts.append(f"{label}: " + "; ".join(items))
            else:
                parts.append(f"{label}: {detail}")
    return " | ".join(parts)


def _stage_rows(repo: Path, lock: dict[str, Any], dvc_status: dict[str, Any] | None,
                durations: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, entry in (lock.get("stages") or {}).items():
        outs = [o["path"] for o in (entry or {}).get("outs", []) if isinstance(o, dict) and "path" in o]
        finished = _latest_mtime(repo, outs)
        row = {"name": name, "up_to_date": None if dvc_status is None else name not in dvc_status,
               "changes": _describe_changes((dvc_status or {}).get(name)), "outs": outs,
               "finished": _iso(finished), "seconds": None, "seconds_source": None}
        measured = durations.get(name)
        if isinstance(measured, dict) and measured.get("seconds") is not None:
            row.update(seconds=measured["seconds"], seconds_source="measured")
        rows.append(row)
    known = {r["name"] for r in rows}
    for name, changes in (dvc_status or {}).items():  # in dvc.yaml but never run (not in dvc.lock)
        if name not in known:
            rows.append({"name": name, "up_to_date": False, "changes": _describe_changes(changes) or "never run",
                         "outs": [], "finished": None, "seconds": None, "seconds_source": None})
    return rows


def _dag(repo: Path) -> list[str]:
    """Stage names in dvc.yaml order."""
    import yaml

    try:
        return list((yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8")) or {}).get("stages") or {})
    except (OSError, yaml.YAMLError):
        return []


def _headline(repo: Path) -> dict[str, Any]:
    best = _read_json(repo / BEST_METRICS)
    loso: dict[str, Any] = {}
    folder = repo / LOSO_METRICS
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = _read_json(path)
        if isinstance(data, dict):
            loso[path.stem] = {k: data[k] for k in LOSO_KEYS if k in data}
    return {"best": {k: best[k] for k in BEST_KEYS if k in best} if isinstance(best, dict) else None,
            "best_path": str(BEST_METRICS), "loso": loso}


def parse_validation(path: Path) -> dict[str, Any]:
    """The verdict of a `ser validate` report: passed (True/False/None), its summary line, per-table results."""
    out: dict[str, Any] = {"path": str(path), "passed": None, "summary": "no validation report", "tables": {},
                           "modified": None}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        out["modified"] = _iso(path.stat().st_mtime)
    except OSError:
        return out
    for line in lines[:10]:
        text = line.strip()
        if text.startswith("✓"):
            out.update(passed=True, summary=text.lstrip("✓ ").strip())
            break
        if text.startswith("✗"):
            out.update(passed=False, summary=text.lstrip("✗ ").strip())
            break
    else:
        out["summary"] = "unrecognised report (no ✓/✗ verdict line)"
    for line in lines:
        if line.startswith("## ") and ":" in line:
            table, verdict = line[3:].rsplit(":", 1)
            if "PASSED" in verdict or "FAILED" in verdict:
                out["tables"][table.strip()] = "PASSED" in verdict
    return out


def _configured(name: str, params: Any) -> bool:
    """Whether a `stage@key` stage is one params.yaml configures now (dvc.lock keeps removed corpora/models)."""
    base, _, key = name.partition("@")
    if not key or params is None:
        return True
    sets = {"ingest": params.corpora, "features": params.corpora, "train": params.models, "loso": params.train.loso,
            "cv": params.cv.models}
    return base not in sets or key in sets[base]


def order_stages(rows: list[dict[str, Any]], dag: list[str], params: Any = None) -> list[dict[str, Any]]:
    """Rows of configured stages only, in dvc.yaml order (the DAG's), `foreach` items in their listed order."""
    items = {}
    if params is not None:
        items = {"ingest": list(params.corpora), "features": list(params.corpora), "train": list(params.models),
                 "loso": list(params.train.loso), "cv": list(params.cv.models)}

    def key(pair: tuple[int, dict[str, Any]]) -> tuple[int, int, int]:
        position, row = pair
        base, _, item = row["name"].partition("@")
        where = items.get(base, [])
        return (dag.index(base) if base in dag else len(dag), where.index(item) if item in where else len(where),
                position)

    kept = [r for r in rows if _configured(r["name"], params)]
    return [row for _, row in sorted(enumerate(kept), key=key)]


def run_status(repo: Path | str = Path("."), check_dvc: bool = True, params: Any = None) -> dict[str, Any]:
    """A summary of the last pipeline run in `repo` (see the module docstring for the sources);
    with the typed `params`, only the stages it configures, in DAG order."""
    import yaml

    repo = Path(repo)
    lock_path = repo / "dvc.lock"
    try:
        lock = yaml.safe_load(lock_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        lock = {}
    dvc_status, dvc_error = _dvc_status(repo) if check_dvc else (None, "not checked (--no-dvc)")
    last_run = _read_json(repo / LAST_RUN)
    last_run = last_run if isinstance(last_run, dict) else None
    durations = (last_run or {}).get("durations") or {}
    diff_path = repo / DIFF_REPORT
    return {
        "repo": str(repo.resolve()),
        "lock": str(lock_path) if lock_path.is_file() else None,
        "stages": order_stages(_stage_rows(repo, lock, dvc_status, durations), _dag(repo), params),
        "dvc_status_error": dvc_error,
        "up_to_date": None if dvc_status is None else not dvc_status,
        "duration_note": "timed by the pipeline flow (`bin/ser pipeline`); plain `dvc repro` times nothing",
        "metrics": _headline(repo),
        "validation": parse_validation(repo / VALIDATION_REPORT),
        "last_run": last_run,
        "diff_report": {"path": str(DIFF_REPORT), "modified": _iso(diff_path.stat().st_mtime)}
        if diff_path.is_file() else None,
    }


# ------------------------------------------------------------------------------------------- rich


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return str(value)


def _duration(row: dict[str, Any]) -> str:
    seconds = row.get("seconds")
    if seconds is None:
        return "not timed"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def format_status(d: dict[str, Any]) -> list:
    """Rich tables for `run_status`'s summary: stages, headline metrics, last run (with its metric diff)."""
    from rich.table import Table

    tables = []
    note = d.get("dvc_status_error")
    stages = Table(title="Pipeline stages (dvc.lock)" + (f" — dvc status: {note}" if note else ""),
                   caption=d.get("duration_note"))
    for col in ("stage", "state", "last output written", "duration"):
        stages.add_column(col, justify="right" if col == "duration" else "left")
    for row in d.get("stages", []):
        if row["up_to_date"] is None:
            state = "[dim]? not checked[/]"
        elif row["up_to_date"]:
            state = "[green]✓ up to date[/]"
        else:
            state = f"[yellow]✗ stale[/] {row['changes']}".rstrip()
        stages.add_row(row["name"], state, (row["finished"] or "—").replace("T", " "), _duration(row))
    if not d.get("stages"):
        stages.add_row("(no dvc.lock: the pipeline has not run yet)", "", "", "")
    tables.append(stages)

    metrics = Table(title="Headline metrics")
    for col in ("source", "model", "metric", "value"):
        metrics.add_column(col, justify="right" if col == "value" else "left")
    best = (d.get("metrics") or {}).get("best")
    if best:
        for key in BEST_KEYS[1:]:
            if key in best:
                metrics.add_row(d["metrics"]["best_path"], str(best.get("model", "?")), key, _num(best[key]))
    for name, values in ((d.get("metrics") or {}).get("loso") or {}).items():
        for key, value in values.items():
            metrics.add_row(f"{LOSO_METRICS}/{name}.json", name, f"loso {key}", _num(value))
    if not metrics.row_count:
        metrics.add_row("(no metrics yet)", "", "", "")
    tables.append(metrics)

    run = Table(title="Last run", show_header=False)
    run.add_column("what")
    run.add_column("value")
    v = d.get("validation") or {}
    verdict = {True: "[green]✓ passed[/]", False: "[red]✗ FAILED[/]", None: "[dim]unknown[/]"}[v.get("passed")]
    run.add_row("validation", f"{verdict} — {v.get('summary', '')} ({v.get('path')})")
    last = d.get("last_run")
    if last:
        status = "[green]success[/]" if last.get("status") == "success" else f"[red]{last.get('status')}[/]"
        run.add_row("pipeline flow", f"{status}, finished {str(last.get('finished', '?')).replace('T', ' ')}")
        run.add_row("stages run", ", ".join(last.get("ran") or []) or "none (all up to date)")
        if last.get("skipped"):
            run.add_row("stages skipped", f"{len(last['skipped'])} up to date")
        if last.get("error"):
            run.add_row("error", str(last["error"]).splitlines()[0])
        if last.get("status") == "success":
            run.add_row("changes", f"{last.get('changed_metrics', 0)} metrics, {last.get('changed_params', 0)} params "
                                   f"since the previous successful run")
    else:
        run.add_row("pipeline flow", "[dim]no record (.ser/last_run.json): run `ser pipeline`[/]")
    if d.get("diff_report"):
        run.add_row("diff report", f"{d['diff_report']['path']} ({d['diff_report']['modified'].replace('T', ' ')})")
    tables.append(run)

    rows = (last or {}).get("metric_changes") or []
    if rows:
        diff = Table(title="Metrics changed by the last run")
        for col in ("file", "metric", "old", "new", "change"):
            diff.add_column(col, justify="left" if col in ("file", "metric") else "right")
        for r in rows[:MAX_DIFF_ROWS]:
            diff.add_row(r["file"], r["key"], _num(r["old"]), _num(r["new"]), r["change"])
        if len(rows) > MAX_DIFF_ROWS:
            diff.caption = f"... and {len(rows) - MAX_DIFF_ROWS} more in {DIFF_REPORT}"
        tables.append(diff)
    return tables
