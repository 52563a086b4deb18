"""The one console of the command line and the stages: rich output, progress bars, and error exits.

Stage `main`s raise (ParamsError for config, StageError for a stage that cannot go on); `run` turns
those into a readable message and an exit code (2 for params, 1 otherwise), for `ser` and `python -m`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

console = Console(stderr=True)
# Tables go to stdout; logs and CI get a wide fixed width instead of rich's 80 columns, unless COLUMNS says.
stdout = Console() if Console().is_terminal or os.environ.get("COLUMNS", "").isdigit() else Console(width=160)

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read", show_default=True)]
DEFAULT_PARAMS = Path("params.yaml")


class StageError(RuntimeError):
    """A stage cannot go on (a missing input, an unknown model name); the message says what to do."""


class RateColumn(ProgressColumn):
    """Items per second (rich's estimate over the last 30 s), e.g. `12.3 clips/s`."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


def progress(unit: str | None = None) -> Progress:
    """The CLI's progress bar on its one console; `unit` (e.g. "clips") adds a rate column."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if unit:
        columns.append(RateColumn(unit))
    return Progress(*columns, console=console, transient=False,
                    disable=not console.is_terminal and os.environ.get("CI") == "true")


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


def load(path: Path):
    """params.yaml, checked (exit 2 naming the bad key)."""
    from ser.params import ParamsError, load_params

    try:
        return load_params(path)
    except ParamsError as err:
        fail(str(err), code=2)


def run(main: Callable[..., Any], params_path: Path, *args: Any, **kwargs: Any) -> Any:
    """Check params, then run a stage's main with them; its errors become a message and an exit code."""
    from ser.params import ParamsError

    params = load(params_path)
    try:
        return main(params, *args, **kwargs)
    except ParamsError as err:
        fail(str(err), code=2)
    except StageError as err:
        fail(str(err))


def plain_help() -> None:
    """Help without typer 0.2x's type labels (`<bool>`, `<list[Path]>`) and `{name}` usage: click's own style."""
    from typer import core

    original = core._TyperParameter.display_type

    def display_type(self, ctx):
        label = original(self, ctx)
        if getattr(self, "is_flag", False) or label.startswith("<list[") or label == "<bool>":
            return ""
        return label.strip("<>").upper()

    def usage_name(self) -> str:
        name = self.display_name_raw.upper() if self.metavar is None else self.metavar
        return name if self.required else f"[{name}]"

    if hasattr(core._TyperParameter, "display_type"):
        core._TyperParameter.display_type = display_type
    if hasattr(core.TyperArgument, "_usage_display_name"):
        core.TyperArgument._usage_display_name = usage_name
