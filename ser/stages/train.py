"""Stage train@NAME: train one model on the train speakers and score it on speakers it never heard."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, console, run, stdout
from ser.params import ModelEntry, Params


def model_spec(params: Params, model: str) -> ModelEntry:
    if model not in params.models:
        raise StageError(f"model {model!r} is not in params.yaml models: ({', '.join(params.models)})")
    return params.models[model]


def main(params: Params, model: str, features: Path = Path("data/features"),
         models_dir: Path = Path("models/zoo"), manifest: Path = Path("data/interim/manifest.parquet")) -> dict[str, Any]:
    """Write the artefact, metrics/models/NAME.json (with epochs_run and stop_reason for a Keras model),
    reports/models/NAME.json, the plots and the test and validation predictions (plots/models/NAME/predictions.csv, val_predictions.csv); return the metrics."""
    import pandas as pd

    from ser.evaluate import flat_metrics
    from ser.io import atomic_path, write_json
    from ser.plots import (confusions_by_corpus, plot_confusion, plot_confusions_by_corpus, plot_history,
                           write_history_csv)
    from ser.train import train_holdout

    spec = model_spec(params, model)
    console.print(f"training {model} ({spec.kind})")
    utterances = pd.read_parquet(manifest)
    try:
        artifact, result, history = train_holdout(model, spec, params, features, utterances)
    except ValueError as err:
        raise StageError(str(err)) from None
    artifact.save(models_dir / model)
    size_mb = sum(f.stat().st_size for f in (models_dir / model).rglob("*") if f.is_file()) / 2**20
    timings = {**result["timings"], "size_mb": round(size_mb, 3)}
    scores = result["scores"]
    stopping = result.pop("stopping")  # epochs_run, stop_reason: Keras models only, absent for the others
    flat = {"val": flat_metrics(scores["val"]) if "val" in scores else {}, "test": flat_metrics(scores["test"]),
            **timings, **stopping}
    write_json(flat, Path("metrics/models") / f"{model}.json")
    predictions = result.pop("predictions")
    write_json({**result, "timings": timings, "history": history}, Path("reports/models") / f"{model}.json")
    out = Path("plots/models") / model
    plot_confusion(scores["test"]["confusion"], out / "confusion.png",
                   title=f"{model}: test speakers, UAR {scores['test']['uar']:.3f}")
    with atomic_path(out / "predictions.csv") as tmp:  # actual,predicted per test clip: DVC's confusion template
        predictions["test"].to_csv(tmp, index=False)
    with atomic_path(out / "val_predictions.csv") as tmp:  # per val clip: select_best's speaker-backed score
        predictions.get("val", pd.DataFrame(columns=["utt_id", "actual", "predicted"])).to_csv(tmp, index=False)
    test = predictions["test"]
    corpus = test["utt_id"].map(utterances.set_index("utt_id")["corpus"])
    plot_confusions_by_corpus(confusions_by_corpus(test["actual"], test["predicted"], corpus),
                              out / "confusion_by_corpus.png", title=f"{model}: test speakers per corpus")
    write_history_csv(out / "history.csv", history)  # header only for a model without epochs
    plot_history(history, out / "history.png", title=f"{model} training curves")  # none (and no stale one) then
    stdout.print(f"{model}: val UAR {scores.get('val', {}).get('uar')}, test UAR {scores['test']['uar']}, "
                 f"accuracy {scores['test']['accuracy']}, macro-F1 {scores['test']['macro_f1']}, "
                 f"train {timings['train_s']} s")
    return flat


def command(
    model: Annotated[str, typer.Option(help="a model name from `models:` in params.yaml")],
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    models_dir: Annotated[Path, typer.Option("--models-dir", help="where trained artefacts go")] = Path("models/zoo"),
    manifest: Annotated[Path, typer.Option(help="the utterances to train and score on")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Train one model on the train speakers (early stopping on val speakers) and score it on test speakers."""
    run(main, params, model, features, models_dir, manifest)


if __name__ == "__main__":
    typer.run(command)
