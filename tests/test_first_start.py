"""First start as a user meets it: the real `signvault serve` in an empty directory, no configuration."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

SIGNVAULT = Path(sys.executable).parent / "signvault"
STARTUP_TIMEOUT = 20.0
FILES = ("signvault.db", "signvault.master.key", "signvault.admin-token")
ENV_ADMIN_TOKEN = "sva_first-start-test-token-0123456789"


@dataclass
class Server:
    url: str
    log_path: Path
    output: str = ""  # stdout and stderr, filled in once the process has stopped


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNVAULT_")}
    env.update(extra)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@contextmanager
def serve(cwd: Path, log_path: Path, **env: str) -> Iterator[Server]:
    """Run `signvault serve` in cwd until the block ends; server.output is readable after it."""
    assert SIGNVAULT.exists(), f"{SIGNVAULT} is missing: pip install -e '.[test]' into this environment"
    port = _free_port()
    server = Server(url=f"http://127.0.0.1:{port}", log_path=log_path)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SIGNVAULT), "serve", "--port", str(port)],
            cwd=cwd, env=_clean_env(**env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(process, server)
        yield server
    finally:
        _stop(process)
        server.output = log_path.read_text(errors="replace")


def _wait_healthy(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"signvault serve exited with {process.returncode}:\n"
                        f"{server.log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"/healthz did not answer within {STARTUP_TIMEOUT:.0f} s:\n"
                f"{server.log_path.read_text(errors='replace')}")


def _admin(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _assert_private(path: Path) -> None:
    assert path.is_file(), f"{path} was not created"
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o600, f"{path.name} has mode {mode:o}, expected 600"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "run"
    path.mkdir()
    return path


def test_first_start_creates_private_dev_files_and_says_where(workdir: Path, tmp_path: Path) -> None:
    with serve(workdir, tmp_path / "server.log") as server:
        for name in FILES:
            _assert_private(workdir / name)
        # SQLite's side files (WAL, shared memory) hold the same data as the database file.
        for side in workdir.glob("signvault.db-*"):
            _assert_private(side)

        token = (workdir / "signvault.admin-token").read_text().strip()
        assert token.startswith("sva_")
        response = httpx.get(f"{server.url}/admin/credentials", headers=_admin(token), timeout=10)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": []}

        bogus = httpx.get(f"{server.url}/admin/credentials", headers=_admin("sva_" + "x" * 43), timeout=10)
        _assert_problem(bogus, 401)

        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

    master_key = (workdir / "signvault.master.key").read_text().strip()
    assert master_key
    output = server.output
    assert "DEVELOPMENT" in output
    assert str((workdir / "signvault.master.key").resolve()) in output
    assert str((workdir / "signvault.admin-token").resolve()) in output
    assert master_key not in output, "the master key was printed"
    assert token not in output, "the admin token was printed"


def test_data_dir_moves_the_files(workdir: Path, tmp_path: Path) -> None:
    data_dir = workdir / "state" / "signvault"  # does not exist yet
    with serve(workdir, tmp_path / "server.log", SIGNVAULT_DATA_DIR=str(data_dir)) as server:
        for name in FILES:
            _assert_private(data_dir / name)
        token = (data_dir / "signvault.admin-token").read_text().strip()
        response = httpx.get(f"{server.url}/admin/credentials", headers=_admin(token), timeout=10)
        assert response.status_code == 200, response.text
    for name in FILES:
        assert not (workdir / name).exists(), f"{name} was written to the working directory"
    assert str((data_dir / "signvault.master.key").resolve()) in server.output
    assert str((data_dir / "signvault.admin-token").resolve()) in server.output


def test_second_start_reuses_key_and_token(workdir: Path, tmp_path: Path) -> None:
    with serve(workdir, tmp_path / "first.log"):
        pass
    key_file = workdir / "signvault.master.key"
    token_file = workdir / "signvault.admin-token"
    key_before, key_stat = key_file.read_bytes(), key_file.stat()
    token_before, token_stat = token_file.read_bytes(), token_file.stat()

    with serve(workdir, tmp_path / "second.log") as server:
        token = token_before.decode().strip()
        response = httpx.get(f"{server.url}/admin/credentials", headers=_admin(token), timeout=10)
        assert response.status_code == 200, response.text
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200

    assert key_file.read_bytes() == key_before
    assert key_file.stat().st_mtime_ns == key_stat.st_mtime_ns
    assert token_file.read_bytes() == token_before
    assert token_file.stat().st_mtime_ns == token_stat.st_mtime_ns
    assert "created the first admin token" not in server.output
    assert "DEVELOPMENT" in server.output  # still the generated key, so still a development setup


def test_invalid_master_key_starts_but_refuses_to_store(workdir: Path, tmp_path: Path) -> None:
    env = {"SIGNVAULT_MASTER_KEY": "too-short", "SIGNVAULT_ADMIN_TOKEN": ENV_ADMIN_TOKEN}
    with serve(workdir, tmp_path / "server.log", **env) as server:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        body = _assert_problem(ready, 503)
        assert "SIGNVAULT_MASTER_KEY" in ready.text
        assert body["checks"]["database"] == "ok"

        create = httpx.post(
            f"{server.url}/admin/credentials",
            json={"exchange": "binance", "label": "first-start", "api_key": "Kabcdef0123456789",
                  "api_secret": "s3cret-value-for-the-test"},
            headers=_admin(ENV_ADMIN_TOKEN), timeout=10,
        )
        _assert_problem(create, 503)
        assert "s3cret-value-for-the-test" not in create.text

    # A configured but broken key must not quietly fall back to a generated one.
    assert not (workdir / "signvault.master.key").exists()
    assert not (workdir / "signvault.admin-token").exists()
    assert "too-short" not in server.output
    assert ENV_ADMIN_TOKEN not in server.output
    assert "s3cret-value-for-the-test" not in server.output
