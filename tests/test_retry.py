"""The retry rule: what waiting can fix is retried, a full disk or a bad config is not."""
import errno
import os

import pytest

from ser.retry import PermanentError, is_transient, one_line, permanent


@pytest.mark.parametrize("exc, transient", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/features/pooled/part-00003.parquet"), False),
    (OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/x"), False),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/data/x"), False),
    (FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/data/raw/a.wav"), False),
    (OSError(errno.EIO, os.strerror(errno.EIO), "/mnt/nfs/a.wav"), True),
    (TimeoutError("read timed out"), True),
    (ConnectionResetError(errno.ECONNRESET, "reset"), True),
    (MemoryError(), True),
    (ValueError("features.n_mels must be positive"), False),
    (KeyError("corpora"), False),
    (RuntimeError("something odd"), False),
    (PermanentError("x"), False),
])
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_one_line_names_the_path():
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/features/pooled/part-00003.parquet")
    assert one_line(exc) == "No space left on device: /data/features/pooled/part-00003.parquet"
    assert str(permanent(ValueError("bad\n  value"))) == "ValueError: bad value"
