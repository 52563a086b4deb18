"""Stage select_best: copy the model with the best VALIDATION UAR (never test) to models/best; leaderboard.

The score is the mean of per-corpus UARs over the validation speakers (from each model's
plots/models/NAME/val_predictions.csv), with its 95% speaker-bootstrap interval (ser.cv.leaderboard_columns).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, run, stdout
from ser.params import Params

if TYPE_CHECKING:
    import pandas as pd


def val_predictions(path: Path, utterances: pd.DataFrame) -> pd.DataFrame:
    """One model's validation predictions (utt_id, actual, predicted) with each clip's corpus, speaker, gender."""
    import pandas as pd

    if not path.is_file():
        raise StageError(f"{path} is missing: retrain the model (dvc repro train@{path.parent.name})")
    pred = pd.read_csv(path, dtype=str)
    meta = utterances.set_index("utt_id")[["corpus", "speaker", "gender"]]
    unknown = pred.loc[~pred["utt_id"].isin(meta.index), "utt_id"]
    if len(unknown):
        raise StageError(f"{path}: {len(unknown)} clip(s) not in the manifest (e.g. {unknown.iloc[0]}): the "
                         f"predictions are stale, retrain the model (dvc repro train@{path.parent.name})")
    return pred.join(meta, on="utt_id")


def val_score(pred: pd.DataFrame, params: Params) -> dict[str, Any]:
    """The ranking score: mean of per-corpus validation UARs with its 95% speaker-bootstrap interval."""
    from ser.cv import leaderboard_columns

    if pred.empty:  # no validation speakers: the model sorts last
        return {"val_uar": None, "val_uar_ci_low": None, "val_uar_ci_high": None, "val_method": "val split",
                "val_speakers": 0}
    return leaderboard_columns(pred, "val split", n_boot=params.cv.draws, seed=params.seed)


def leaderboard_rows(params: Params, metrics_dir: Path = Path("metrics/models"),
                     predictions_dir: Path = Path("plots/models"),
                     manifest: Path = Path("data/interim/manifest.parquet")) -> tuple[list[dict], dict]:
    """One row per configured model: its validation score (from its val predictions and the manifest) and
    test metrics; and its test UAR per corpus."""
    import pandas as pd

    if not manifest.is_file():
        raise StageError(f"{manifest} is missing: run `dvc repro manifest` first")
    utterances = pd.read_parquet(manifest, columns=["utt_id", "corpus", "speaker", "gender"])
    rows, per_corpus = [], {}
    for name, spec in params.models.items():
        path = metrics_dir / f"{name}.json"
        if not path.is_file():
            raise StageError(f"{path} is missing: train {name} first (dvc repro train@{name})")
        m = json.loads(path.read_text())
        score = val_score(val_predictions(predictions_dir / name / "val_predictions.csv", utterances), params)
        rows.append({"model": name, "kind": spec.kind, **score,
                     "test_uar": m["test"]["uar"], "test_accuracy": m["test"]["accuracy"],
                     "test_macro_f1": m["test"]["macro_f1"], "train_s": m["train_s"],
                     "predict_ms_per_clip": m.get("predict_ms_per_clip"), "size_mb": m["size_mb"]})
        per_corpus[name] = {k.removeprefix("uar_"): v for k, v in m["test"].items() if k.startswith("uar_")}
    return rows, per_corpus


def main(params: Params, models_dir: Path = Path("models/zoo"), best_dir: Path = Path("models/best"),
         manifest: Path = Path("data/interim/manifest.parquet")) -> dict[str, Any]:
    """Swap the best artefact into `best_dir` atomically; write the leaderboard, its plots and metrics/best.json."""
    import shutil
    import tempfile

    import pandas as pd

    from ser.artifact import ArtifactError, load_artifact
    from ser.evaluate import leaderboard, leaderboard_markdown, top_two_overlap
    from ser.features import feature_config
    from ser.io import replace_path, write_json, write_text
    from ser.plots import plot_leaderboard, plot_per_corpus

    rows, per_corpus = leaderboard_rows(params, manifest=manifest)
    board = leaderboard(rows)
    best = str(board.iloc[0]["model"])
    try:  # a stale artefact (other feature params than params.yaml) must not become models/best
        load_artifact(models_dir / best, expected_features=feature_config(params))
    except ArtifactError as err:
        raise StageError(str(err)) from None
    best_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{best_dir.name}.", dir=best_dir.parent)) / best_dir.name
    shutil.copytree(models_dir / best, tmp)
    replace_path(tmp, best_dir)
    shutil.rmtree(tmp.parent, ignore_errors=True)
    write_text(leaderboard_markdown(board), Path("reports/leaderboard.md"))
    plot_leaderboard(board, Path("plots/leaderboard.png"))
    corpora = sorted(pd.read_parquet(manifest, columns=["corpus"])["corpus"].unique()) if manifest.is_file() else None
    plot_per_corpus({m: per_corpus[m] for m in board["model"]}, Path("plots/per_corpus.png"),
                    title="test-speaker UAR per corpus", corpora=corpora)
    top = {k: (None if isinstance(v, float) and v != v else v)
           for k, v in ((k, v.item() if hasattr(v, "item") else v) for k, v in board.iloc[0].to_dict().items())}
    top["runner_up"] = str(board.iloc[1]["model"]) if len(board) > 1 else None
    top["top_two_ci_overlap"] = top_two_overlap(board)  # true: not distinguishable on these speakers
    write_json(top, Path("metrics/best.json"))
    stdout.print(leaderboard_markdown(board))
    stdout.print(f"best by validation UAR (mean of per-corpus UARs, {top['val_speakers']} validation speakers): "
                 f"{best} -> {best_dir}")
    return top


def command(
    models_dir: Annotated[Path, typer.Option("--models-dir", help="trained artefacts to choose from")] = Path("models/zoo"),
    best_dir: Annotated[Path, typer.Option("--best", help="where the chosen artefact is copied")] = Path("models/best"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Pick the model with the best VALIDATION UAR (never test) into models/best; write the leaderboard."""
    run(main, params, models_dir, best_dir)


if __name__ == "__main__":
    typer.run(command)
