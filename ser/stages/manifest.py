"""Stage manifest: merge the configured corpora, drop duplicate audio, split by speaker."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ser import EMOTIONS
from ser.console import DEFAULT_PARAMS, ParamsOpt, StageError, console, run, stdout
from ser.params import Params


def main(params: Params, ingested: Path = Path("data/interim/ingest"),
         out: Path = Path("data/interim/manifest.parquet"), by_corpus: Path = Path("data/interim/by_corpus"),
         metrics: Path = Path("metrics/manifest.json"), plot: Path | None = Path("plots/splits.png")) -> dict[str, Any]:
    """Write the manifest, one slice per corpus, the quarantine, the split metrics and plot; return the metrics."""
    import pandas as pd

    from ser.io import write_json, write_parquet
    from ser.split import build_manifest
    from ser.split_report import plot_splits, split_summary

    frames, quarantines = [], []
    for name in params.corpora:
        path = ingested / f"{name}.parquet"
        if not path.is_file():
            raise StageError(f"{path} is missing: run the ingest stage for corpus {name!r} first")
        frames.append(pd.read_parquet(path))
        qpath = ingested / f"{name}.quarantine.parquet"
        if qpath.is_file():
            quarantines.append(pd.read_parquet(qpath))
    s = params.split
    try:
        merged, dupes = build_manifest(frames, protocol=s.protocol, ratios=s.ratios, test_corpora=s.test_corpora,
                                       seed=params.seed, dedupe=s.drop_duplicates,
                                       min_eval_speakers=s.min_eval_speakers)
    except ValueError as err:
        raise StageError(str(err)) from None
    quarantine = pd.concat([*quarantines, dupes], ignore_index=True)
    meta = {"split": s.model_dump(), "seed": params.seed}
    write_parquet(merged, out, meta)
    for name, part in merged.groupby("corpus", sort=True):
        write_parquet(part.reset_index(drop=True), by_corpus / f"{name}.parquet", meta)
    write_parquet(quarantine, out.with_name(out.name.removesuffix(".parquet") + ".quarantine.parquet"), meta)
    summary = split_summary(merged, quarantine)
    write_json(summary, metrics)
    if plot:
        plot_splits(merged, plot)
    table = Table(title=f"manifest: {len(merged)} utterances, {merged['speaker'].nunique()} speakers")
    for col in ("split", "speakers", "utterances", *EMOTIONS):
        table.add_column(col, justify="right")
    for split, row in summary["splits"].items():
        part = merged[merged["split"] == split]
        table.add_row(split, str(row["speakers"]), str(row["utterances"]),
                      *(str((part["emotion"] == e).sum()) for e in EMOTIONS))
    stdout.print(table)
    if len(dupes):
        console.print(f"{len(dupes)} duplicate file(s) dropped (quarantined with the original's id)")
    return summary


def command(
    ingested: Annotated[Path, typer.Option("--in", help="folder of per-corpus ingest Parquet files")] = Path("data/interim/ingest"),
    out: Annotated[Path, typer.Option(help="merged manifest with split and fold")] = Path("data/interim/manifest.parquet"),
    by_corpus: Annotated[Path, typer.Option(help="folder for one manifest slice per corpus (per-corpus stages read these)")] = Path("data/interim/by_corpus"),
    metrics: Annotated[Path, typer.Option(help="split summary JSON (a DVC metric)")] = Path("metrics/manifest.json"),
    plot: Annotated[Optional[Path], typer.Option(help="PNG of utterances per split and emotion")] = Path("plots/splits.png"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Merge the configured corpora, drop duplicate audio, and split by speaker."""
    run(main, params, ingested, out, by_corpus, metrics, plot)


if __name__ == "__main__":
    typer.run(command)
