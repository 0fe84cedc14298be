"""Redis is optional: a worker without SIGNVAULT_REDIS_URL never loads its client library (~6 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from fastapi.testclient import TestClient
from app.main import create_app

with TestClient(create_app()) as client:
    assert client.get("/readyz").status_code == 200
print(sorted(name for name in sys.modules if name == "redis" or name.startswith("redis.")))
"""


def test_a_worker_without_redis_never_imports_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNVAULT_")}
    env.update(SIGNVAULT_DATA_DIR=str(tmp_path), SIGNVAULT_EGRESS_ECHO_URL="",
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
