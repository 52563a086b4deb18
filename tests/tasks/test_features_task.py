"""The extract-chunk task retries what may pass on a rerun, never a config error."""
from __future__ import annotations

from prefect.states import Failed

from ser.params import ParamsError
from tasks.features import extract_chunk, retry_transient


def test_config_errors_are_not_retried_transient_ones_are():
    assert retry_transient(None, None, Failed(data=ParamsError("features.n_mfcc: input should be a valid integer"))) is False
    assert retry_transient(None, None, Failed(data=ValueError("features.fmax: must be above fmin"))) is False
    assert retry_transient(None, None, Failed(data=OSError("No space left on device"))) is True
    assert extract_chunk.retries == 2 and extract_chunk.retry_condition_fn is retry_transient
