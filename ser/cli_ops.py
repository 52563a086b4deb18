"""Operations commands: run the whole pipeline flow once, serve it on a schedule, summarise the last run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

console = Console()
ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]


def pipeline(
    targets: Annotated[Optional[list[str]], typer.Argument(help="DVC stages (default: the whole DAG)")] = None,
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
) -> None:
    """`dvc repro` as a Prefect flow (retries, logs), then the metrics/params diff since the last success."""
    from flows.pipeline import main

    main(targets=targets, repo=repo, serve=False)


def schedule(
    cron: Annotated[Optional[str], typer.Option(help="cron expression (default: schedule.cron in params)")] = None,
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Serve the pipeline flow on a cron, one run at a time; needs a running Prefect server (PREFECT_API_URL)."""
    from ser.params import ParamsError, load_params

    try:
        plan = load_params(repo / params if not params.is_absolute() else params).schedule
    except ParamsError as err:
        console.print(f"[red]error:[/] {err}")
        raise typer.Exit(2) from None
    from flows.pipeline import main

    main(targets=plan.targets or None, repo=repo, serve=True, cron=cron or plan.cron)


def status(
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    dvc: Annotated[bool, typer.Option("--dvc/--no-dvc", help="ask `dvc status` which stages are stale")] = True,
) -> None:
    """The last run: stages (up to date or stale, durations), headline metrics, validation, metric changes."""
    from ser.status import format_status, run_status

    summary = run_status(repo, check_dvc=dvc)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    for table in format_status(summary):
        console.print(table)


def register(app: typer.Typer) -> None:
    """Add the operations commands to the main app."""
    app.command()(pipeline)
    app.command()(schedule)
    app.command()(status)
