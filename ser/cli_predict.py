"""Prediction commands of the `ser` CLI: predict (files, folders), and the serving/streaming commands."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ser import EMOTIONS


def _cli():
    from ser import cli

    return cli


def _fail(message: str) -> None:
    _cli()._fail(message)


def predict(
    paths: Annotated[list[Path], typer.Argument(help="audio files or folders")],
    model: Annotated[Path, typer.Option(help="model artefact folder")] = Path("models/best"),
    out: Annotated[Optional[Path], typer.Option(help="write predictions to .csv, .parquet or .json")] = None,
) -> None:
    """Predict the emotion of each file (folders are searched recursively); a bad file gets an error row."""
    from ser.artifact import ArtifactError, load_artifact
    from ser.predict import expand_paths, predict_files

    try:
        artifact = load_artifact(model)
    except ArtifactError as err:
        _fail(str(err))
    files = expand_paths(paths)
    if not files:
        _fail("no audio files found in the given paths")
    with _cli()._progress() as progress:
        task = progress.add_task("predict", total=len(files))
        df = predict_files(artifact, files, on_file=lambda: progress.advance(task))
    if out:
        from ser.io import atomic_path

        with atomic_path(out) as tmp:
            suffix = out.suffix.lower()
            if suffix == ".csv":
                df.to_csv(tmp, index=False)
            elif suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            elif suffix == ".json":
                df.to_json(tmp, orient="records", indent=2)
            else:
                _fail(f"--out must end in .csv, .parquet or .json, not {suffix!r}")
        _cli().console.print(f"wrote {len(df)} predictions to {out}")
    table = Table(title=f"predictions ({artifact.name})")
    for col in ("path", "emotion", "confidence", *EMOTIONS):
        table.add_column(col, justify="left" if col in ("path", "emotion") else "right")
    for r in df.head(50).itertuples(index=False):
        row = r._asdict()
        if row["error"]:
            table.add_row(row["path"], f"[red]error: {row['error']}[/]", "", *[""] * len(EMOTIONS))
        else:
            table.add_row(row["path"], row["emotion"], f"{row['confidence']:.2f}",
                          *(f"{row['prob_' + e]:.2f}" for e in EMOTIONS))
    _cli().stdout.print(table)
    if len(df) > 50:
        _cli().stdout.print(f"... {len(df) - 50} more rows" + (f" in {out}" if out else " (use --out)"))
    if df["error"].astype(bool).any():
        _cli().console.print(f"[yellow]{int(df['error'].astype(bool).sum())} file(s) could not be read (see the error column)")




def register(app: typer.Typer) -> None:
    """Add the prediction commands to the main app."""
    app.command()(predict)
