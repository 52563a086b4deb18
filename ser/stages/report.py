"""Stage report: the run report, ONE self-contained HTML page (reports/index.html) of the whole run."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ser.console import DEFAULT_PARAMS, ParamsOpt, console, run
from ser.params import Params


def main(params: Params, root: Path = Path("."), out: Path = Path("reports/index.html")) -> Path:
    """Write the report from what the other stages wrote under `root` (a missing part says "not run")."""
    from ser.report_html import write_run_report

    path = write_run_report(root, out)
    console.print(f"run report: {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
    return path


def command(
    root: Annotated[Path, typer.Option("--root", help="repository root holding data/, metrics/, reports/, plots/")] = Path("."),
    out: Annotated[Path, typer.Option(help="the HTML file to write")] = Path("reports/index.html"),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Write the run report: data, validation, leaderboard, per-corpus/gender scores, plots, the chosen model."""
    run(main, params, root, out)


if __name__ == "__main__":
    typer.run(command)
