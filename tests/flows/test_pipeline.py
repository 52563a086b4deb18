"""The pipeline flow on a throwaway DVC project: runs, skips, diffs, retries what may pass, fails fast on validation.

The project (git + DVC, three trivial stages) computes `metrics/score.json` from `params.yaml`'s
`scale`; its `validate` stage fails like `ser validate` (prints "validation failed", exits 1) when
`check.fail` is true. Each stage appends its name to `attempts.log`, so retries can be counted.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import flows.pipeline as pipeline
from flows.pipeline import (ApiUnavailable, PipelineConfigError, ReproFailed, ValidationStageFailed, check_api,
                            classify, pipeline_flow, retry_transient, serve_pipeline)
from ser.status import DIFF_REPORT, LAST_RUN, SNAPSHOT, format_status, run_status

DVC = Path(sys.executable).parent / "dvc"
pytestmark = pytest.mark.skipif(not DVC.is_file(), reason=f"no dvc next to {sys.executable}")

PY = sys.executable
LOG = "import pathlib, sys; open('attempts.log', 'a').write(sys.argv[0] + chr(10))\n"
SCRIPTS = {
    "make.py": LOG + "import json, yaml\n"
               "p = yaml.safe_load(open('params.yaml'))\n"
               "json.dump({'n': p['scale'] * 3}, open('data.json', 'w'))\n",
    "validate.py": LOG + "import yaml, pathlib\n"
                   "p = yaml.safe_load(open('params.yaml'))['check']\n"
                   "pathlib.Path('reports').mkdir(exist_ok=True)\n"
                   "verdict = '\\u2717 failed: data' if p['fail'] else '\\u2713 all tables passed'\n"
                   "open('reports/validation.md', 'w', encoding='utf-8').write('# Data validation\\n\\n' + verdict + '\\n')\n"
                   "if p['fail']:\n"
                   "    print('data validation failed: 1 of 1 expectations failed')\n"
                   "    sys.exit(1)\n",
    "score.py": LOG + "import json, pathlib\n"
                "d = json.load(open('data.json'))\n"
                "pathlib.Path('metrics').mkdir(exist_ok=True)\n"
                "json.dump({'acc': d['n'] / 10, 'nested': {'f1': d['n'] / 20}, 'model': 'toy'},"
                " open('metrics/score.json', 'w'))\n",
    # fails the first time it runs (like a worker killed mid-run), succeeds when retried
    "flaky.py": LOG + "import pathlib\n"
                "marker = pathlib.Path('flaky.tried')\n"
                "if not marker.exists():\n"
                "    marker.touch()\n"
                "    print('worker lost: connection reset by peer')\n"
                "    sys.exit(1)\n"
                "open('flaky.out', 'w').write('ok')\n",
}
STAGES = {
    "make": {"cmd": f"{PY} make.py", "deps": ["make.py"], "params": ["scale"], "outs": ["data.json"]},
    "validate": {"cmd": f"{PY} validate.py", "deps": ["data.json", "validate.py"], "params": ["check"],
                 "outs": [{"reports/validation.md": {"cache": False}}]},
    "score": {"cmd": f"{PY} score.py", "deps": ["data.json", "reports/validation.md", "score.py"],
              "metrics": [{"metrics/score.json": {"cache": False}}]},
}


def _run(repo: Path, *cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def make_project(repo: Path, stages: dict = STAGES) -> Path:
    repo.mkdir(parents=True, exist_ok=True)
    _run(repo, "git", "init", "-q")
    _run(repo, str(DVC), "init", "-q")
    _run(repo, str(DVC), "config", "core.analytics", "false")
    for name, text in SCRIPTS.items():
        (repo / name).write_text(text)
    (repo / "params.yaml").write_text(yaml.safe_dump({"scale": 2, "check": {"fail": False}}))
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return repo


def _set_params(repo: Path, **changes) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(changes)
    (repo / "params.yaml").write_text(yaml.safe_dump(params))


def _attempts(repo: Path, script: str) -> int:
    path = repo / "attempts.log"
    return path.read_text().splitlines().count(script) if path.exists() else 0


def _artifact_markdown(key: str = "metrics-diff") -> str:
    """The latest version of a keyed artifact, read over the REST API (prefect 3.8.8's sync client sends
    nulls that its own server rejects for /artifacts/filter)."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    response = httpx.post(f"{url}/artifacts/filter", json={
        "artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1, "offset": 0})
    response.raise_for_status()
    found = response.json()
    assert found, f"no artifact {key!r}"
    return found[0]["data"]


def test_runs_skips_and_diffs(prefect_harness, tmp_path):
    repo = make_project(tmp_path / "proj")

    first = pipeline_flow(repo)
    assert first["ran"] == ["make", "validate", "score"] and first["skipped"] == []
    assert "Running stage 'make'" in first["output"]
    assert set(first["seconds"]) == {"make", "validate", "score"}
    assert first["metric_changes"] == [] and first["baseline"] is None  # the first run is the baseline, not a change
    assert "first recorded run is the baseline" in (repo / DIFF_REPORT).read_text()
    assert "(3 metric values," in (repo / DIFF_REPORT).read_text()
    assert json.loads((repo / SNAPSHOT).read_text())["metrics"] == {
        "metrics/score.json": {"acc": 0.6, "nested.f1": 0.3, "model": "toy"}}

    second = pipeline_flow(repo)  # nothing changed: DVC skips every stage
    assert second["ran"] == [] and sorted(second["skipped"]) == ["make", "score", "validate"]
    assert "didn't change, skipping" in second["output"] and "Running stage" not in second["output"]
    assert second["metric_changes"] == [] and second["param_changes"] == []
    assert _attempts(repo, "make.py") == 1
    assert "No metric changed." in (repo / DIFF_REPORT).read_text()

    _set_params(repo, scale=4)
    third = pipeline_flow(repo)
    assert third["ran"] == ["make", "validate", "score"]
    rows = {r["key"]: r for r in third["metric_changes"]}
    assert set(rows) == {"acc", "nested.f1"}  # model is unchanged
    assert rows["acc"]["old"] == 0.6 and rows["acc"]["new"] == 1.2 and rows["acc"]["change"].startswith("+0.6")
    assert third["param_changes"] == [
        {"file": "params.yaml", "key": "scale", "old": 2, "new": 4, "change": "+2 (+100.0%)"}]
    report = (repo / DIFF_REPORT).read_text()
    assert "| metrics/score.json | acc | 0.6 | 1.2 | +0.6 (+100.0%) |" in report
    assert "| params.yaml | scale | 2 | 4 |" in report
    assert _artifact_markdown() == report  # published to the Prefect UI as the `metrics-diff` artifact

    status = run_status(repo)  # `ser status` on the finished project
    assert [s["name"] for s in status["stages"]] == ["make", "validate", "score"]
    assert all(s["up_to_date"] for s in status["stages"]) and status["up_to_date"] is True
    assert all(s["seconds_source"] == "measured" for s in status["stages"])
    assert status["validation"]["passed"] is True
    assert status["last_run"]["status"] == "success" and status["last_run"]["changed_metrics"] == 2
    _set_params(repo, scale=5)
    stale = run_status(repo)
    assert [s["up_to_date"] for s in stale["stages"]] == [False, True, True]  # only make's params changed
    assert "scale modified" in stale["stages"][0]["changes"]


def test_failed_validation_is_not_retried(prefect_harness, tmp_path):
    repo = make_project(tmp_path / "proj")
    pipeline_flow(repo)
    baseline = (repo / SNAPSHOT).read_text()
    _set_params(repo, check={"fail": True})
    with pytest.raises(ValidationStageFailed, match=r"reports/validation\.md") as info:
        pipeline_flow(repo)
    assert str(repo / "reports" / "validation.md") in str(info.value)
    assert info.value.stage == "validate" and info.value.retryable is False
    assert _attempts(repo, "validate.py") == 2  # the first (passing) run and one failing attempt: no retry
    assert (repo / SNAPSHOT).read_text() == baseline  # the baseline stays the last successful run
    last = json.loads((repo / LAST_RUN).read_text())
    assert last["status"] == "failed" and last["failed_stage"] == "validate"
    status = run_status(repo, check_dvc=False)
    assert status["validation"]["passed"] is False and status["validation"]["summary"] == "failed: data"


def test_transient_failure_is_retried(prefect_harness, tmp_path, monkeypatch):
    stages = {"flaky": {"cmd": f"{PY} flaky.py", "deps": ["flaky.py"], "outs": ["flaky.out"]}}
    repo = make_project(tmp_path / "proj", stages)
    monkeypatch.setattr(pipeline, "repro", pipeline.repro.with_options(retry_delay_seconds=0))
    result = pipeline_flow(repo)
    assert _attempts(repo, "flaky.py") == 2 and result["ran"] == ["flaky"]
    assert (repo / "flaky.out").read_text() == "ok"


def test_failure_classification():
    from prefect.states import Failed

    lock = "ERROR: Unable to acquire lock. Most likely another DVC process is running or was terminated abruptly."
    assert classify(lock) == "lock"
    assert classify("ERROR: failed to reproduce 'validate': failed to run: ser validate, exited with 1") == "validation"
    assert classify("Traceback ...\nser.validate.ValidationFailed: manifest ...") == "validation"
    assert classify("ERROR: failed to reproduce 'train@svc': failed to run: ser train, exited with 1") == "other"
    assert classify("ERROR: Stage 'nosuch' not found inside 'dvc.yaml' file") == "config"
    assert classify("'./dvc.yaml' is invalid.\n\nMapping values are not allowed") == "config"
    assert classify("ERROR: failed to reproduce 'make': Parameters 'x' are missing from 'params.yaml'.") == "config"
    assert classify("stage output mentioning an invalid value\nERROR: failed to reproduce 'x': exited with 1") == "other"

    def retried(exc):
        return retry_transient(None, None, Failed(data=exc))

    assert retried(ReproFailed("lock held")) and retried(OSError("disk hiccup"))
    assert not retried(ValidationStageFailed("validation failed"))
    assert not retried(PipelineConfigError("bad dvc.yaml"))


def test_check_api_without_url():
    with pytest.raises(ApiUnavailable, match="PREFECT_API_URL is not set") as info:
        check_api(url="")
    message = str(info.value)
    assert "prefect server start" in message and "export PREFECT_API_URL=http://127.0.0.1:4200/api" in message
    assert "never fire" in message


def test_check_api_unreachable(monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # discard port: nothing listens
    with pytest.raises(ApiUnavailable, match=r"No Prefect server answers at PREFECT_API_URL=http://127\.0\.0\.1:9/api"):
        check_api(timeout=2)


def test_serve_checks_the_api_first(prefect_harness, monkeypatch, tmp_path):
    from prefect.settings import get_current_settings

    served = []
    monkeypatch.setattr(type(pipeline_flow), "serve", lambda self, **kw: served.append(kw))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with pytest.raises(ApiUnavailable):
        serve_pipeline("0 3 * * *", repo=tmp_path)
    assert served == []

    url = get_current_settings().api.url  # the test harness's server answers /health
    monkeypatch.setenv("PREFECT_API_URL", url)
    assert check_api() == url.rstrip("/")
    serve_pipeline("0 3 * * *", repo=tmp_path)
    (kw,) = served
    assert kw["cron"] == "0 3 * * *" and kw["name"] == "ser-pipeline" and kw["limit"] == 1
    assert kw["global_limit"].limit == 1
    assert kw["parameters"] == {"repo": str(tmp_path.resolve()), "targets": []}


def test_run_status_on_a_fabricated_repo(tmp_path):
    import os

    from rich.console import Console

    repo = tmp_path
    lock = {"schema": "2.0", "stages": {
        "ingest@demo": {"cmd": "ser ingest", "outs": [{"path": "data/ingest.parquet", "md5": "x", "size": 1}]},
        "features@demo": {"cmd": "python -m flows.features", "outs": [{"path": "data/features", "md5": "y.dir"}]},
        "validate": {"cmd": "ser validate", "outs": [{"path": "reports/validation.md", "md5": "z", "size": 1}]},
    }}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    for rel, when in (("data/ingest.parquet", 1_000), ("data/features/corpus=demo/part-0.parquet", 1_030),
                      ("data/features/corpus=demo/part-1.parquet", 1_090)):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
        os.utime(repo / rel, (when, when))
    (repo / "reports").mkdir()
    (repo / "reports/validation.md").write_text(
        "# Data validation\n\n✗ failed: features\n\n## manifest: ✓ PASSED\n\n## features: ✗ FAILED\n", encoding="utf-8")
    os.utime(repo / "reports/validation.md", (1_100, 1_100))
    (repo / "metrics/loso").mkdir(parents=True)
    (repo / "metrics/best.json").write_text(json.dumps({"model": "svc", "val_uar": 0.7, "test_uar": 0.75,
                                                        "size_mb": 1.0}))
    (repo / "metrics/loso/svc.json").write_text(json.dumps({"uar_mean": 0.8, "uar_std": 0.05, "folds": 12,
                                                            "uar_by_corpus": {"demo": 0.8}}))
    (repo / ".ser").mkdir()
    (repo / ".ser/last_run.json").write_text(json.dumps({
        "status": "success", "finished": "2026-01-01T03:00:00+00:00", "ran": ["validate"], "skipped": ["ingest@demo"],
        "durations": {"validate": {"seconds": 4.5, "finished": "2026-01-01T03:00:00+00:00"}},
        "changed_metrics": 1, "changed_params": 0,
        "metric_changes": [{"file": "metrics/best.json", "key": "test_uar", "old": 0.7, "new": 0.75,
                            "change": "+0.05 (+7.1%)"}]}))

    d = run_status(repo, check_dvc=False)
    stages = {s["name"]: s for s in d["stages"]}
    assert list(stages) == ["ingest@demo", "features@demo", "validate"]
    assert all(s["up_to_date"] is None for s in stages.values()) and d["dvc_status_error"].startswith("not checked")
    # only what the pipeline flow timed: output mtimes are no measure of a stage's duration
    assert stages["ingest@demo"]["seconds"] is None and stages["features@demo"]["seconds"] is None
    assert stages["validate"]["seconds"] == 4.5 and stages["validate"]["seconds_source"] == "measured"
    assert d["metrics"]["best"] == {"model": "svc", "val_uar": 0.7, "test_uar": 0.75}
    assert d["metrics"]["loso"] == {"svc": {"uar_mean": 0.8, "uar_std": 0.05, "folds": 12}}
    assert d["validation"]["passed"] is False and d["validation"]["summary"] == "failed: features"
    assert d["validation"]["tables"] == {"manifest": True, "features": False}
    assert d["diff_report"] is None and d["last_run"]["status"] == "success"
    json.dumps(d)  # plain data: `ser status --json` can print it

    console = Console(record=True, width=200)
    for table in format_status(d):
        console.print(table)
    text = console.export_text()
    for needle in ("features@demo", "not timed", "4.5 s", "? not checked", "test_uar", "0.7500",
                   "loso uar_mean", "✗ FAILED", "failed: features", "+0.05 (+7.1%)"):
        assert needle in text, needle

    empty = run_status(tmp_path / "nothing", check_dvc=False)
    assert empty["stages"] == [] and empty["validation"]["passed"] is None and empty["metrics"]["best"] is None
    assert format_status(empty)


def test_status_lists_configured_stages_in_dag_order(tmp_path):
    from ser.params import load_params
    from ser.status import order_stages

    rows = [{"name": n} for n in ("train@svc", "validate", "train@gone", "ingest@demo", "demo_corpus", "loso@svc")]
    dag = ["demo_corpus", "ingest", "manifest", "features", "validate", "train", "loso", "select_best"]
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    assert [r["name"] for r in order_stages(rows, dag, params)] == [
        "demo_corpus", "ingest@demo", "validate", "train@svc", "loso@svc"]  # train@gone: no longer in models
