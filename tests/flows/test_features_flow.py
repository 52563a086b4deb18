"""The features flow on a tiny demo corpus: same tables as the library, and a rerun extracts nothing."""

import pytest

from flows.features import features_flow, task_runner
from ser.feature_table import read_features


@pytest.fixture(scope="module")
def setup(tmp_path_factory, demo_inputs):
    base = tmp_path_factory.mktemp("flow")
    _, path, params, manifest = demo_inputs(base, utterances_per_emotion=1, seed=2)
    params["runner"] = {"kind": "thread", "workers": 2, "chunk_size": 16}
    params["features"]["logmel_frames"] = 50
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
