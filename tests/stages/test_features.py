"""The features stage's guard against a second writer: a run refuses tables another run holds, and stops
when a part it extracted was overwritten by another config meanwhile (a stage left running after the
`dvc exp run` that started it was killed once mixed two configs' parts into one table)."""
from __future__ import annotations

import copy

import pytest

from ser.feature_table import FeatureSettings, chunk_done, plan_chunks, run_chunk
from ser.params import Params
from ser.stages.features import TablesBusy, build, serial_map, writer_lock


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, demo_inputs):
    base = tmp_path_factory.mktemp("features-stage")
    root, manifest_path, params, manifest = demo_inputs(base, utterances_per_emotion=1, seed=5)
    params["runner"] = {"kind": "process", "workers": 1, "chunk_size": 12}
    # this test is about who writes the tables, not what is in them: the librosa set only
    params["features"] = {**params["features"], "encoder": None, "opensmile": None, "logmel_frames": 40}
    params["augment"] = {**params["augment"], "copies": 0}
    return root, manifest_path, Params.model_validate(params), manifest


def test_a_run_refuses_tables_another_run_is_writing(inputs, tmp_path):
    root, manifest_path, params, manifest = inputs
    out = tmp_path / "features"
    n_chunks = len(plan_chunks(manifest, FeatureSettings.from_params(params), params.runner.chunk_size))
    with writer_lock(out, ["demo"]):
        with pytest.raises(TablesBusy, match=r"another run is writing the demo features under .*\.ser-lock-demo"):
            build(params, manifest_path, out, "demo")
    assert not list(out.rglob("*.parquet"))  # it wrote nothing
    summary = build(params, manifest_path, out, "demo")["summary"]  # once the other run has let go
    assert summary["utterances"] == len(manifest) and summary["extracted_chunks"] == summary["chunks"] == n_chunks


def test_an_all_corpora_run_refuses_while_one_corpus_is_held(inputs, tmp_path):
    _, manifest_path, params, _ = inputs
    with writer_lock(tmp_path, ["demo"]), pytest.raises(TablesBusy, match="demo features"):
        build(params, manifest_path, tmp_path, None)


def test_a_part_overwritten_with_another_config_stops_the_run(inputs, tmp_path):
    root, manifest_path, params, manifest = inputs
    out = tmp_path / "features"
    other = copy.deepcopy(params.model_dump())
    other["features"]["n_mfcc"] = 13
    other_settings = FeatureSettings.from_params(other)
    victim = plan_chunks(manifest, other_settings, params.runner.chunk_size)[0]

    def map_then_overwrite(todo, rows, roots, settings, out_dir):
        yield from serial_map(todo, rows, roots, settings, out_dir)
        run_chunk(victim, manifest, {"demo": root}, other_settings, out_dir)  # a lock-less writer, meanwhile

    mine = plan_chunks(manifest, FeatureSettings.from_params(params), params.runner.chunk_size)
    with pytest.raises(TablesBusy, match=rf"1 of {len(mine)} parts under .* do not hold this run's features .*{victim.name}"):
        build(params, manifest_path, out, "demo", map_chunks=map_then_overwrite)
    assert [c.name for c in mine if not chunk_done(c, out)] == [victim.name]
    # the next run re-extracts only that part and ends with one config's tables
    summary = build(params, manifest_path, out, "demo")["summary"]
    assert summary["extracted_chunks"] == 1 and all(chunk_done(c, out) for c in mine)
