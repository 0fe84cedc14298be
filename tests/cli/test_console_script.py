"""The installed `signvault` console script, end to end in a child process, as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MASTER_KEY_A, random_secret

SIGNVAULT = Path(sys.executable).parent / "signvault"


def _run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SIGNVAULT), *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_credentials_add_from_stdin_through_the_console_script(tmp_path: Path) -> None:
    assert SIGNVAULT.exists(), f"{SIGNVAULT} is missing: pip install -e '.[test]' into this environment"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNVAULT_")}
    env.update(SIGNVAULT_DATA_DIR=str(tmp_path), SIGNVAULT_MASTER_KEY=MASTER_KEY_A,
               SIGNVAULT_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'vault.db'}")
    key, secret, passphrase = "K" + random_secret(40), random_secret(64), "sub-process-Pass1"
    argv = ["credentials", "add", "--exchange", "okx", "--label", "main", "--stdin"]

    added = _run(argv, env, stdin=f"{key}\n{secret}\n{passphrase}\n")
    assert added.returncode == 0, added.stderr
    assert "stored credential okx:main" in added.stdout
    for value in (secret, passphrase, key):
        assert value not in added.stdout + added.stderr
    assert "Traceback" not in added.stderr

    listed = _run(["credentials", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)["items"]
    assert (item["exchange"], item["label"], item["api_key_hint"]) == ("okx", "main", f"{key[:4]}…{key[-4:]}")

    refused = _run(argv, env, stdin=f"{key}\n{secret}\n")  # the label is taken now
    assert refused.returncode == 2
    assert refused.stderr == "signvault: error: okx already has a credential labelled 'main'\n"
