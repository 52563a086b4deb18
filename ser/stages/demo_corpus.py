"""Stage demo_corpus: write the deterministic synthetic corpus (folder-per-emotion) the default run uses."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, console, run
from ser.params import Params


def main(params: Params, out: Path | None = None) -> Path:
    from ser.demo import write_demo_corpus

    d = params.demo
    out = out or d.out
    rows = write_demo_corpus(out, speakers=d.speakers, utterances_per_emotion=d.utterances_per_emotion,
                             sample_rate=d.sample_rate, seed=d.seed)
    console.print(f"wrote {len(rows)} files for {rows['speaker'].nunique()} speakers to {out}")
    return out


def command(
    out: Annotated[Optional[Path], typer.Option(help="folder to write (default: demo.out in params.yaml)")] = None,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Write the deterministic synthetic corpus (folder-per-emotion layout) that the default run uses."""
    run(main, params, out)


if __name__ == "__main__":
    typer.run(command)
