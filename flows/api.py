"""One Prefect API for a whole run, so process-pool workers report to it instead of each starting a server."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use PREFECT_API_URL when set (a real server); else start one temporary server for this run.

    Without this, every ProcessPoolTaskRunner worker starts its own ephemeral server on the same
    SQLite file, costing seconds each and contending for its lock.
    """
    url = os.environ.get("PREFECT_API_URL")
    if url:
        yield url
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()  # Prefect stops it at exit, after its log handlers have flushed
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield server.api_url
    finally:
        os.environ.pop("PREFECT_API_URL", None)
