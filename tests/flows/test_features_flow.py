"""The features flow on a tiny demo corpus: same tables as the library, and a rerun extracts nothing."""
from pathlib import Path

import pandas as pd
import pytest
import yaml

from flows.features import features_flow, task_runner
from ser.demo import write_demo_corpus
from ser.featurize import read_features
from ser.ingest import ingest_corpus
from ser.split import build_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("flow")
    root = base / "demo"
    write_demo_corpus(root, speakers=8, utterances_per_emotion=1, seed=2)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corpora"] = {"demo": {"format": "folder", "root": str(root)}}
    params["runner"] = {"kind": "thread", "workers": 2, "chunk_size": 16}
    params["features"]["logmel_frames"] = 50
    manifest, _ = build_manifest([ingest_corpus(root, "folder", params["labels"]["folder"], name="demo").manifest],
                                 protocol="speaker", ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    path = base / "manifest.parquet"
    manifest.to_parquet(path)
    return base, path, params, manifest


def test_flow_extracts_then_resumes_with_nothing_to_do(prefect_harness, setup):
    base, manifest_path, params, manifest = setup
    flow = features_flow.with_options(task_runner=task_runner(params["runner"]))
    first = flow(manifest_path, base / "features", params, "demo")["summary"]
    n_train = (manifest["split"] == "train").sum()
    assert first["utterances"] == len(manifest) and first["augmented_rows"] == n_train * params["augment"]["copies"]
    assert first["extracted_chunks"] == first["chunks"] > 1
    second = flow(manifest_path, base / "features", params, "demo")["summary"]
    assert second["extracted_chunks"] == 0 and second["utterances"] == first["utterances"]
    pooled = read_features(base / "features" / "pooled")
    assert set(pooled["corpus"]) == {"demo"} and set(pooled["split"]) == {"train", "val", "test"}
    parts = sorted(p.relative_to(base / "features" / "pooled").as_posix()
                   for p in (base / "features" / "pooled").rglob("*.parquet"))
    assert parts[0] == "corpus=demo/split=test/part-00000.parquet"  # stable names, no UUIDs


def test_runner_selection():
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    assert isinstance(task_runner({}), ProcessPoolTaskRunner)
    assert isinstance(task_runner({"kind": "thread"}), ThreadPoolTaskRunner)
    assert isinstance(task_runner({"dask_address": "local", "workers": 2}), DaskTaskRunner)
    assert isinstance(task_runner({"dask_address": "tcp://10.0.0.1:8786"}), DaskTaskRunner)
