"""Stage cv@NAME: speaker-grouped k-fold cross-validation, every speaker tested once, with speaker-bootstrap CIs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, progress, run, stdout
from ser.params import Params
from ser.stages.train import model_spec

DETAIL = ("per_fold", "per_speaker")


def main(params: Params, model: str, features: Path = Path("data/features"),
         manifest: Path = Path("data/interim/manifest.parquet")) -> dict[str, Any]:
    """Write metrics/cv/NAME.json (per-corpus UAR, their mean, per gender and the gap, each with its CI) and
    reports/cv/NAME.json (the same plus every fold and speaker), reports/cv/NAME.predictions.parquet and
    plots/cv/NAME.png."""
    import pandas as pd

    from ser.cv import cross_validate, plot_cv, write_cv
    from ser.io import write_json

    spec = model_spec(params, model)
    with progress() as bar:
        task = bar.add_task(f"{params.cv.k}-fold CV {model}", total=None)

        def on_fold(i, n, uar):
            bar.update(task, total=n, completed=i, description=f"CV {model} (fold {i}: UAR {uar:.3f})")

        try:
            report, predictions = cross_validate(model, spec, params, features, pd.read_parquet(manifest),
                                                 k=params.cv.k, n_boot=params.cv.draws, on_fold=on_fold)
        except ValueError as err:
            raise StageError(str(err)) from None
    write_cv(report, Path("reports/cv") / f"{model}.json", predictions)
    summary = {k: v for k, v in report.items() if k not in DETAIL}
    write_json(summary, Path("metrics/cv") / f"{model}.json")
    plot_cv(report, Path("plots/cv") / f"{model}.png")
    mean = report["uar_corpus_mean"]
    stdout.print(f"{model} {report['protocol']} over {report['n_speakers']} speakers: mean per-corpus UAR "
                 f"{mean['uar']:.3f} [{mean['ci'][0]:.3f}, {mean['ci'][1]:.3f}]; "
                 + ", ".join(f"{c} {v['uar']:.3f}" for c, v in report["uar_by_corpus"].items()))
    return summary


def command(
    model: Annotated[str, typer.Option(help="a model name from `models:` in params.yaml")],
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    manifest: Annotated[Path, typer.Option(help="the merged manifest")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Speaker-grouped k-fold CV: per-corpus UAR, their mean and the gender gap, with speaker-bootstrap CIs."""
    run(main, params, model, features, manifest)


if __name__ == "__main__":
    typer.run(command)
