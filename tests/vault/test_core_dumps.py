"""A started app has turned core dumps off: a crash must not write unwrapped keys to disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import ctypes, resource, sys
from fastapi.testclient import TestClient
from app.main import create_app
from app.settings import Settings

settings = Settings(data_dir=sys.argv[1], admin_token="sva_test-admin-token-0123456789")
with TestClient(create_app(settings)) as api:
    assert api.get("/readyz").status_code == 200
    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    print(resource.getrlimit(resource.RLIMIT_CORE), dumpable)
"""


def test_a_started_app_cannot_dump_core(tmp_path: Path) -> None:
    child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True,
                           timeout=60, cwd=Path(__file__).parents[2])
    assert child.returncode == 0, child.stderr
    assert child.stdout.split("\n")[-2] == "(0, 0) 0"
