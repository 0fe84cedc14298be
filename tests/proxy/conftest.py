"""The proxy unit tests fake the exchange with respx, which intercepts httpx: they use that upstream
client. The end-to-end tests against the simulator use the default (app/proxy/http1.py)."""

from __future__ import annotations

from typing import Any

import pytest

from app.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(tmp_path: Any, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url, upstream_client="httpx")
