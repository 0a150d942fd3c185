"""Shared test fixtures.

Real data lives in ../shared/data (see its README). Outside CI a missing folder skips the tests that need
it, with a message; in CI (CI=true) a missing dataset fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Return the path of ../shared/data, skipping (or failing in CI) when it is missing."""
    override = os.environ.get("KIZUNA_SHARED_DATA")
    path = Path(override) if override else SHARED_DATA
    if not path.is_dir():
        msg = f"shared data folder {path} not found (set KIZUNA_SHARED_DATA to its location)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
