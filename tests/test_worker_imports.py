"""What a worker does not load: the Redis client without Redis, and alembic (a child process migrates
a schema that is behind). Each would cost the worker ~6 and ~10 MB for as long as it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from app.migrate import HEAD, alembic_config

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from app.main import create_app

with TestClient(create_app()) as client:
    assert client.get("/readyz").status_code == 200
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & {"redis", "alembic"})))
"""


def _loaded_by_a_worker(data_dir: Path) -> list[str]:
    """Which of redis and alembic a worker on `data_dir` (SQLite, no Redis) has imported once ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNVAULT_")}
    env.update(SIGNVAULT_DATA_DIR=str(data_dir), SIGNVAULT_EGRESS_ECHO_URL="",
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_a_worker_never_imports_alembic_nor_redis_without_redis(tmp_path: Path) -> None:
    assert _loaded_by_a_worker(tmp_path) == []  # the first start: a child process creates the schema
    assert _loaded_by_a_worker(tmp_path) == []  # the schema is current: nothing to migrate


def test_head_is_the_newest_migration() -> None:
    newest = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert newest == HEAD, f"a new migration: set HEAD = {newest!r} in app/migrate.py"
