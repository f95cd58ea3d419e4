"""The integration tests' shared Airflow home."""

import pytest


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory):
    """One Airflow metadata database (SQLite) for the whole session: migrated once, like a real home."""
    return tmp_path_factory.mktemp("airflow_home")
