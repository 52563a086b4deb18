"""Stage cross_corpus: train on each corpus, test on every other on their shared emotions; leave one corpus out."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, run, stdout
from ser.params import Params
from ser.stages.train import model_spec


def main(params: Params, features: Path = Path("data/features"),
         manifest: Path = Path("data/interim/manifest.parquet")) -> dict[str, Any]:
    """For the model `cv.cross_corpus_model`: reports/cross_corpus.json (every pair and held-out corpus with
    speaker-bootstrap CIs), reports/cross_corpus.md, plots/cross_corpus.png and metrics/cross_corpus.json
    ({model, uar: {"train->test": UAR}, loco_uar: {corpus: UAR}})."""
    import pandas as pd

    from ser.cross_corpus import (cross_corpus_matrix, leave_one_corpus_out, loco_markdown, matrix_markdown,
                                  plot_matrix)
    from ser.io import write_json, write_text

    model = params.cv.cross_corpus_model
    frame = pd.read_parquet(manifest)
    pairs = loco = pd.DataFrame()
    why = "no cv.cross_corpus_model set" if model is None else "one corpus configured"
    if model is not None and frame["corpus"].nunique() > 1:
        spec = model_spec(params, model)
        try:
            pairs = cross_corpus_matrix(spec, params, features, frame, n_boot=params.cv.draws)
            loco = leave_one_corpus_out(spec, params, features, frame, n_boot=params.cv.draws)
        except ValueError as err:
            raise StageError(str(err)) from None
        why = "no two corpora share two emotions"
    write_json({"model": model, "pairs": pairs.to_dict(orient="records"),
                "leave_one_corpus_out": loco.to_dict(orient="records")}, Path("reports/cross_corpus.json"))
    result = {"model": model, "uar": {f"{r.train}->{r.test}": r.uar for r in pairs.itertuples()},
              "loco_uar": {r.test: r.uar for r in loco.itertuples()}}
    write_json(result, Path("metrics/cross_corpus.json"))
    text = f"# Cross-corpus UAR of `{model}`\n\n"
    if len(pairs):
        text += ("## Train on one corpus (rows), test on another (columns)\n\n" + matrix_markdown(pairs)
                 + "\n## Leave one corpus out\n\n" + loco_markdown(loco))
        plot_matrix(pairs, Path("plots/cross_corpus.png"), title=f"{model}: cross-corpus UAR (shared emotions)")
    else:
        from ser.plots import plot_note

        stdout.print(f"cross_corpus: {why}, nothing to cross")
        text += f"{why[0].upper()}{why[1:]}: nothing to cross.\n"
        plot_note(Path("plots/cross_corpus.png"), f"{why}: no cross-corpus matrix")
    write_text(text, Path("reports/cross_corpus.md"))
    stdout.print(text)
    return result


def command(
    features: Annotated[Path, typer.Option(help="feature tables folder")] = Path("data/features"),
    manifest: Annotated[Path, typer.Option(help="the merged manifest")] = Path("data/interim/manifest.parquet"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Train on each corpus and test on every other (shared emotions); leave one corpus out."""
    run(main, params, features, manifest)


if __name__ == "__main__":
    typer.run(command)
