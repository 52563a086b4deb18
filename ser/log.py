"""The project's logger: `get_logger(__name__)` prints INFO lines to stderr through rich.

Long steps (Keras epochs, feature chunks) report progress here; a caller that configured logging
itself (pytest's caplog, Prefect) still receives the records, since they propagate.
"""
from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

_ROOT = "ser"


def get_logger(name: str) -> logging.Logger:
    root = logging.getLogger(_ROOT)
    if not any(getattr(h, "_ser", False) for h in root.handlers):
        console = Console(stderr=True)
        if console.is_terminal:
            handler: logging.Handler = RichHandler(console=console, show_path=False, show_level=False,
                                                   log_time_format="[%X]", markup=False)
        else:  # logs and CI: whole lines, no wrapping or padding to rich's width
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        handler._ser = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    return logging.getLogger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")
