import pytest


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect API for flow tests (starts in a few seconds, once per session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield
