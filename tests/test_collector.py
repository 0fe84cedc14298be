"""The garbage collector as a started worker leaves it: startup objects frozen, young collections rarer."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from app.main import YOUNG_COLLECTION_THRESHOLD


def test_a_started_worker_freezes_its_startup_heap_and_raises_the_young_threshold(api: TestClient) -> None:
    assert api.get("/healthz").status_code == 200
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD
