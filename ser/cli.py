"""The `ser` command line: a thin typer layer over the stage mains (ser/stages/) and the prediction commands.

Console, progress and error exits live in ser.console; heavy libraries are imported inside commands.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ser import __version__
from ser.console import DEFAULT_PARAMS, ParamsOpt, console, fail, load, plain_help, stdout
from ser.stages import (cross_corpus, cv, demo_corpus, features, ingest, loso, manifest, report, select_best, train,
                        validate)

plain_help()
app = typer.Typer(help="Speech emotion recognition: ingest corpora, build features, train and predict.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        print(f"ser {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False) -> None:
    """Speech emotion recognition: ingest corpora, build features, train and predict."""


for _name, _stage in (("demo-corpus", demo_corpus), ("ingest", ingest), ("manifest", manifest),
                      ("features", features), ("validate", validate), ("train", train), ("loso", loso),
                      ("cv", cv), ("cross-corpus", cross_corpus), ("select-best", select_best), ("report", report)):
    app.command(name=_name)(_stage.command)


@app.command()
def check(params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """Validate every section of params.yaml and every corpus root, without doing any work."""
    from ser.features import feature_config
    from ser.params import Params, ParamsError, audio_files, check_params

    try:
        p = check_params(params)
        feature_config(p)  # the extractors' own checks (fmax vs Nyquist, contrast bands)
    except (ParamsError, ValueError) as err:
        fail(str(err), code=2)
    for name, field in Params.model_fields.items():
        if name != "corpora":
            console.print(f"  {field.alias or name}: ok" + ("" if name in p.model_fields_set else " (defaults)"))
    for name, entry in p.corpora.items():
        root = Path(entry.root)
        if root == p.demo.out and not root.is_dir():
            console.print(f"  corpora.{name}: ok ({root} not written yet: `ser demo-corpus` writes it)")
        else:
            console.print(f"  corpora.{name}: ok ({root}: {audio_files(root)} audio files)")
    console.print(f"{params}: ok ({len(p.corpora)} corpora, {len(p.models)} models)")


@app.command(name="corpora")
def list_corpora(params: ParamsOpt = DEFAULT_PARAMS) -> None:
    """List the supported corpus formats and their label maps from params.yaml."""
    from ser import corpora as registry

    p = load(params) if params.is_file() else None
    table = Table(title="supported corpora")
    for col in ("format", "language", "description", "label map (raw -> emotion)"):
        table.add_column(col)
    for fmt in sorted(registry.REGISTRY):
        cls = registry.REGISTRY[fmt]
        labels = p.labels.get(fmt, {}) if p else {}
        shown = ", ".join(f"{raw}->{emo or 'QUARANTINE'}" for raw, emo in labels.items()) or "(no params.yaml)"
        table.add_row(fmt, cls.language, cls.description, shown)
    stdout.print(table)


@app.command(name="use-corpora")
def use_corpora(
    folder: Annotated[Path, typer.Argument(metavar="FOLDER", help="a folder holding one or several corpora in their original layouts")],
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Point params.yaml's `corpora:` at every corpus found under FOLDER (comments are kept)."""
    from ser import corpora as registry
    from ser.params_edit import set_corpora

    try:
        found = registry.detect(folder)
    except FileNotFoundError as err:
        fail(str(err))
    if not found:
        fail(f"no known corpus layout under {folder}")
    entries = {}
    for fmt, root in found:
        name = fmt if fmt not in entries else f"{fmt}-{root.name}"
        entries[name] = {"format": fmt, "root": os.path.relpath(root)}
    set_corpora(params, entries)
    load(params)
    for name, e in entries.items():
        console.print(f"corpus {name}: {e['format']} at {e['root']}")


def _flow(repo: Path, args: list[str]) -> None:
    """Run the pipeline flow (flows/pipeline.py of the project) in its own process, from the project root."""
    if not (repo / "flows" / "pipeline.py").is_file():
        fail(f"{repo.resolve()} is not a ser project (no flows/pipeline.py); run from the project root or pass --repo")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo.resolve()), os.environ.get("PYTHONPATH")]))}
    code = subprocess.call([sys.executable, "-m", "flows.pipeline", *args], cwd=repo, env=env)
    if code:
        raise typer.Exit(code)


@app.command()
def pipeline(
    targets: Annotated[Optional[list[str]], typer.Argument(help="DVC stages (default: the whole DAG)", metavar="TARGET...")] = None,
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    params: ParamsOpt = DEFAULT_PARAMS,
    force: Annotated[bool, typer.Option("--force", help="start the Prefect flow even when every stage is up to "
                                        "date (DVC still skips them; `dvc repro --force` reruns them)")] = False,
) -> None:
    """`dvc repro` as a Prefect flow (retries, logs), then the metrics/params diff since the last success.

    When DVC says no stage among the targets is stale, it says so and exits without starting Prefect."""
    load(repo / params if not params.is_absolute() else params)
    if not force and _up_to_date(repo, targets or []):
        return
    _flow(repo, [*(targets or []), "--repo", "."])


def _up_to_date(repo: Path, targets: list[str]) -> bool:
    """True (after printing so, and the run summary) when DVC finds nothing stale among `targets` and their
    dependencies; False when something is stale or DVC could not tell (the flow then runs and reports)."""
    from ser.status import stale_stages

    try:
        stale = stale_stages(repo, targets)
    except Exception as err:  # noqa: BLE001  any DVC failure: the flow runs `dvc repro`, which reports it in full
        console.print(f"[dim]dvc status did not answer ({type(err).__name__}); running the flow[/]")
        return False
    if stale:
        return False
    scope = " ".join(targets) if targets else "the whole DAG"
    stdout.print(f"pipeline up to date ({scope}): DVC finds no stale stage, nothing to run; "
                 "`ser pipeline --force` starts the flow anyway", markup=False, highlight=False)
    if any((repo / "metrics" / "models").glob("*.json")):
        from ser.summary import summary

        stdout.print(summary(repo), markup=False, highlight=False)
    return True


@app.command()
def schedule(
    cron: Annotated[Optional[str], typer.Option(help="cron expression (default: schedule.cron in params)")] = None,
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """Serve the pipeline flow on a cron, one run at a time; needs a running Prefect server (PREFECT_API_URL)."""
    plan = load(repo / params if not params.is_absolute() else params).schedule
    _flow(repo, [*plan.targets, "--repo", ".", "--serve", "--cron", cron or plan.cron])


@app.command()
def status(
    repo: Annotated[Path, typer.Option(help="the DVC project")] = Path("."),
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    dvc: Annotated[bool, typer.Option("--dvc/--no-dvc", help="ask `dvc status` which stages are stale")] = True,
    params: ParamsOpt = DEFAULT_PARAMS,
) -> None:
    """The last run: stages (up to date or stale, durations), headline metrics, validation, metric changes."""
    import json

    from ser.status import format_status, run_status

    path = repo / params if not params.is_absolute() else params
    summary = run_status(repo, check_dvc=dvc, params=load(path) if path.is_file() else None)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    for table in format_status(summary):
        stdout.print(table)


from ser import cli_predict  # noqa: E402  (prediction commands live in their own module)

cli_predict.register(app)

if __name__ == "__main__":
    app()
