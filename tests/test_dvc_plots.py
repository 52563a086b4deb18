"""dvc.yaml's plot declarations: training curves only for epoch-trained models, loss against validation
loss (not the learning rate DVC picks by default), no Markdown declared as a plot."""
from __future__ import annotations

from pathlib import Path

import yaml

from ser.models import model_framework

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def keras_models() -> list[str]:
    models = yaml.safe_load((ROOT / "params.yaml").read_text())["models"]
    return [name for name, spec in models.items() if model_framework(spec["kind"]) == "keras"]


def top_level() -> dict[str, dict]:
    out = {}
    for entry in DVC["plots"]:
        if isinstance(entry, str):
            out[entry] = {}
        else:
            out.update(entry)
    return out


def stage_plot_paths() -> list[str]:
    paths = []
    for stage in DVC["stages"].values():
        body = stage.get("do", stage)
        for entry in body.get("plots", []):
            paths += [entry] if isinstance(entry, str) else list(entry)
    return paths


def test_each_keras_model_has_a_loss_chart_and_no_other_model_has_one():
    plots = top_level()
    keras = keras_models()
    assert keras and "svc" not in keras
    for name in keras:
        assert plots[f"{name} loss"]["y"] == {f"plots/models/{name}/history.csv": ["loss", "val_loss"]}
        assert plots[f"{name} loss"]["x"] == "epoch"
        assert f"plots/models/{name}/history.png" in plots
    assert set(plots["validation accuracy"]["y"]) == {f"plots/models/{n}/history.csv" for n in keras}
    declared = {p.split("/")[2] for p in plots if p.startswith("plots/models/")}
    declared |= {p.split("/")[2] for spec in plots.values() for p in (spec.get("y") or {})}
    assert declared == set(keras)


def test_stages_declare_no_history_and_no_markdown_as_plots():
    paths = stage_plot_paths()
    assert not [p for p in paths if "history" in p]
    assert not [p for p in paths if p.endswith(".md")]
    assert "plots/loso/${item}.png" in paths and "plots/models/${key}/confusion_by_corpus.png" in paths


def test_no_committed_history_picture_for_a_model_without_epochs():
    keras = set(keras_models())
    pictures = {p.parent.name for p in (ROOT / "plots" / "models").glob("*/history.png")}
    assert pictures <= keras
