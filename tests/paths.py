"""Where the tests find the project and the shared MovieLens data (absent on a user's machine)."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"
SHIPPED_CONFIG = PROJECT / "config" / "recsys.toml"
