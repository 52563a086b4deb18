"""Stage loso@NAME: leave-one-speaker-out over every speaker (mean and spread of UAR, per corpus too)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, progress, run, stdout
from ser.params import Params
from ser.stages.train import model_spec


def main(params: Params, model: str, features: Path = Path("data/features"),
         manifest: Path = Path("data/interim/manifest.parquet")) -> dict[str, Any]:
    """Write metrics/loso/NAME.json (the summary) and reports/loso/NAME.json (with every fold)."""
    import pandas as pd

    from ser.io import write_json
    from ser.plots import plot_per_speaker
    from ser.train import train_loso

    spec = model_spec(params, model)
    table = pd.read_parquet(manifest)
    speakers = int(table["speaker"].nunique())
    if speakers > params.train.loso_max_speakers:
        return skip(model, speakers, params.train.loso_max_speakers)
    with progress() as bar:
        task = bar.add_task(f"LOSO {model}", total=None)

        def on_fold(i, n, speaker, uar):
            bar.update(task, total=n, completed=i, description=f"LOSO {model} ({speaker}: UAR {uar:.3f})")

        summary = train_loso(spec, params, features, table, on_fold=on_fold)
    write_json({k: v for k, v in summary.items() if k not in ("per_fold", "confusion")},
               Path("metrics/loso") / f"{model}.json")
    write_json(summary, Path("reports/loso") / f"{model}.json")
    plot_per_speaker(summary["per_fold"], Path("plots/loso") / f"{model}.png",
                     title=f"{model}: UAR per held-out speaker (leave-one-speaker-out)")
    stdout.print(f"{model} LOSO over {summary['folds']} speakers: UAR {summary['uar_mean']:.3f} "
                 f"+- {summary['uar_std']:.3f}; per corpus {summary['uar_by_corpus']}")
    return summary


def skip(model: str, speakers: int, max_speakers: int) -> dict[str, Any]:
    """Record (metrics, report, figure) that LOSO was not run: one fit per speaker does not scale, and
    the speaker-grouped k-fold of cv@NAME tests every speaker once at a fraction of the cost."""
    from ser.io import write_json
    from ser.plots import plot_note

    reason = (f"{speakers} speakers > train.loso_max_speakers {max_speakers}: leave-one-speaker-out skipped; "
              f"speaker-grouped k-fold (cv@{model}) tests every speaker once")
    summary = {"skipped": True, "speakers": speakers, "loso_max_speakers": max_speakers, "reason": reason}
    write_json(summary, Path("metrics/loso") / f"{model}.json")
    write_json(summary, Path("reports/loso") / f"{model}.json")
    plot_note(Path("plots/loso") / f"{model}.png", f"{model}: leave-one-speaker-out not run\n{reason}")
    stdout.print(f"{model}: {reason}")
    return summary


def command(
    model: Annotated[str, typer.Option(help="a model name from `models:` in params.yaml")],
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    manifest: Annotated[Path, typer.Option(help="the utterances to score")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Leave-one-speaker-out over every speaker: mean and spread of UAR, per corpus too."""
    run(main, params, model, features, manifest)


if __name__ == "__main__":
    typer.run(command)
