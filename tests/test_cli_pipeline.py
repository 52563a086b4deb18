"""`ser pipeline` with nothing to do: DVC (in-process) finds no stale stage, so no Prefect flow starts.

The project is a throwaway git + DVC repository with the repository's params.yaml and two stages:
`make` (params `seed` -> out.txt) and `other` (params `demo.seed` -> other.txt); `use` reads out.txt.
The flow runner (`ser.cli._flow`, which starts flows/pipeline.py) is replaced by a recorder, so a test
sees whether the command went through Prefect and with which arguments.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import ser.cli as cli

DVC = Path(sys.executable).parent / "dvc"
pytestmark = pytest.mark.skipif(not DVC.is_file(), reason=f"no dvc next to {sys.executable}")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path) -> Path:
    """bench/pipeline_noop.py's throwaway project (the one it times), reproduced once."""
    spec = importlib.util.spec_from_file_location("bench_pipeline_noop", ROOT / "bench" / "pipeline_noop.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.build_project(tmp_path / "toy", dict(os.environ), str(DVC))


@pytest.fixture
def flow_calls(monkeypatch) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(cli, "_flow", lambda repo, args: calls.append(list(args)))
    return calls


def _pipeline(repo: Path, *args: str):
    return CliRunner().invoke(cli.app, ["pipeline", *args, "--repo", str(repo)])


def _set_param(repo: Path, section: str | None, key: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    (params[section] if section else params)[key] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_up_to_date_pipeline_starts_no_flow(project, monkeypatch):
    def no_flow(repo, args):
        raise AssertionError(f"the Prefect flow started on an up-to-date project: {args}")

    monkeypatch.setattr(cli, "_flow", no_flow)
    result = _pipeline(project)
    assert result.exit_code == 0, result.output
    assert "pipeline up to date (the whole DAG)" in result.output
    assert not (project / ".ser").exists()  # no run recorded: nothing ran
    result = _pipeline(project, "use")
    assert result.exit_code == 0, result.output
    assert "pipeline up to date (use)" in result.output


def test_stale_stage_or_force_goes_through_the_flow(project, flow_calls):
    assert _pipeline(project, "--force").exit_code == 0
    assert flow_calls == [["--repo", "."]]

    _set_param(project, None, "seed", 43)  # `make` is stale, so is `use` downstream; `other` is not
    result = _pipeline(project)
    assert result.exit_code == 0, result.output
    assert "up to date" not in result.output
    assert _pipeline(project, "use").exit_code == 0
    assert flow_calls[1:] == [["--repo", "."], ["use", "--repo", "."]]

    result = _pipeline(project, "other")  # not downstream of `make`: still nothing to do
    assert result.exit_code == 0 and "pipeline up to date (other)" in result.output
    assert len(flow_calls) == 3


def test_summary_follows_the_up_to_date_line(project, flow_calls):
    import json

    (project / "metrics" / "models").mkdir(parents=True)
    (project / "metrics" / "models" / "svc.json").write_text(json.dumps({"val": {"uar": 0.61}, "test": {"uar": 0.57}}))
    result = _pipeline(project)
    assert result.exit_code == 0 and flow_calls == []
    assert "top 1 of 1 models by validation UAR" in result.output
    assert " 1 svc    0.610     0.570" in result.output


def test_no_dvc_answer_falls_back_to_the_flow(project, flow_calls):
    (project / "dvc.yaml").write_text("stages: [not, a, mapping\n")  # DVC cannot parse it: the flow reports
    result = _pipeline(project)
    assert result.exit_code == 0
    assert flow_calls == [["--repo", "."]]
