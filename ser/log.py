"""The project's logger: `get_logger(__name__)` prints INFO lines to stderr (rich on a terminal).

Long steps (Keras epochs, feature chunks) report progress here. When the process already has logging
configured (a Prefect worker, an application, pytest), the records go only to those handlers, so no
line is printed twice.
"""
from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

_ROOT = "ser"


class _FallbackHandler(logging.Handler):
    """Prints a record unless the root logger has handlers of its own (which then print it)."""

    def __init__(self) -> None:
        super().__init__()
        console = Console(stderr=True)
        if console.is_terminal:
            self.inner: logging.Handler = RichHandler(console=console, show_path=False, show_level=False,
                                                      log_time_format="[%X]", markup=False)
        else:  # logs and CI: whole lines, no wrapping or padding to rich's width
            self.inner = logging.StreamHandler()
            self.inner.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        self.inner.handle(record)


def get_logger(name: str) -> logging.Logger:
    root = logging.getLogger(_ROOT)
    if not any(isinstance(h, _FallbackHandler) for h in root.handlers):
        root.addHandler(_FallbackHandler())
        if root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    return logging.getLogger(name if name.startswith(_ROOT) else f"{_ROOT}.{name}")
