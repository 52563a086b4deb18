"""Which failures are worth a retry: a full disk, a bad config or a missing file never heals by waiting.

`is_transient(exc)` is the rule; `retry_transient` wraps it as Prefect's `retry_condition_fn`, and
`one_line(exc)` is the message a permanent failure ends with (naming the path, no traceback).
"""
from __future__ import annotations

import errno
from typing import Any

# OS errors a rerun cannot fix: space, quota, permissions, read-only or missing paths, bad names
PERMANENT_ERRNOS = frozenset(getattr(errno, n) for n in (
    "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ENOENT", "ENOTDIR", "EISDIR", "ENAMETOOLONG", "ELOOP",
    "EFBIG", "EEXIST", "EINVAL") if hasattr(errno, n))
# exceptions that say the input or the configuration is wrong (pydantic's ValidationError is a ValueError)
PERMANENT_TYPES: tuple[type[BaseException], ...] = (ValueError, TypeError, KeyError, LookupError, AttributeError,
                                                    NotImplementedError, ImportError, AssertionError)


class PermanentError(RuntimeError):
    """A failure no retry can fix; its message is one line naming what to fix."""

    retryable = False


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass on a rerun (I/O hiccups, timeouts, dropped connections, memory pressure)."""
    flag = getattr(exc, "retryable", None)
    if isinstance(flag, bool):
        return flag
    if isinstance(exc, OSError):
        return exc.errno not in PERMANENT_ERRNOS
    if isinstance(exc, PERMANENT_TYPES):
        return False
    return isinstance(exc, (MemoryError, TimeoutError, ConnectionError))


def one_line(exc: BaseException) -> str:
    """`exc` as one line, with the path for OS errors: "No space left on device: /data/features/part-00001"."""
    if isinstance(exc, OSError) and exc.strerror:
        path = exc.filename2 or exc.filename
        return f"{exc.strerror}: {path}" if path else exc.strerror
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def permanent(exc: BaseException) -> PermanentError:
    """A PermanentError carrying `one_line(exc)` (raise it `from None` to drop the traceback chain)."""
    return PermanentError(one_line(exc))


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's `retry_condition_fn`: retry only failures `is_transient` accepts."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return is_transient(exc) if isinstance(exc, BaseException) else True
