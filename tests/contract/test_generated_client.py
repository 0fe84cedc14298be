"""A Python client generated from the committed OpenAPI document, used against the real app.

openapi-python-client turns openapi/openapi.json into a typed package at the start of the session; the
tests then drive signvault (uvicorn on a real socket, exchanges pointed at the signature-verifying
simulator) only through that package: store a credential, make a client, ask /me, sign, proxy, and read
the typed models and typed problems back. If the document stops describing what the app does, or a
generator cannot make sense of it, these tests say so before a bot author does.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN
from tests.contract.conftest import OKX_PASSPHRASE, Enrolled, enrol, running_signvault
from tests.simulator import ACCEPTED, SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi" / "openapi.json"
PACKAGE = "signvault_client"  # --meta none writes the importable package itself at --output-path


@dataclass
class Generated:
    root: Path
    output: str

    def module(self, name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.{name}")

    def api(self, tag: str, operation_id: str) -> ModuleType:
        return self.module(f"api.{tag}.{operation_id}")

    @property
    def models(self) -> ModuleType:
        return self.module("models")

    def client(self, base_url: str, token: str, *, header: str = "Authorization", prefix: str = "Bearer") -> Any:
        client_module = self.module("client")
        return client_module.AuthenticatedClient(base_url=base_url, token=token, auth_header_name=header,
                                                 prefix=prefix, raise_on_unexpected_status=True)


def _generator() -> str | None:
    # The venv's own scripts first: pytest may run as .venv/bin/pytest without the venv on PATH.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("openapi-python-client", path=search)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    tool = _generator()
    if tool is None:
        pytest.skip("openapi-python-client is not installed (pip install -e '.[test]'), so the client cannot be "
                    "generated; nothing here needs the network")
    root = tmp_path_factory.mktemp("generated-client")
    output = root / PACKAGE
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(tool).parent), os.environ.get("PATH", "")])}
    done = subprocess.run(
        [tool, "generate", "--path", str(SPEC), "--output-path", str(output), "--meta", "none"],
        capture_output=True, text=True, timeout=180, env=env, cwd=root, check=False,
    )
    text = done.stdout + done.stderr
    if done.returncode != 0 or not (output / "__init__.py").is_file():
        pytest.fail(f"openapi-python-client could not generate a client from {SPEC.name}:\n{text}")
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield Generated(root, text)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def live(contract_sim: SimulatorServer, ip_echo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_signvault(contract_sim, tmp_path_factory.mktemp("signvault"), ip_echo) as url:
        yield url


@pytest.fixture
def admin(generated: Generated, live: str) -> Iterator[Any]:
    with generated.client(live, ADMIN_TOKEN) as client:
        yield client


def bot(generated: Generated, live: str, token: str) -> Any:
    """A client authenticated as a bot: its token in X-Signvault-Token, no scheme prefix."""
    return generated.client(live, token, header="X-Signvault-Token", prefix="")


def okx_key_body(generated: Generated, sim: SimulatorServer, secret: str) -> Any:
    models = generated.models
    label = f"okx-gen-{uuid.uuid4().hex[:8]}"
    api_key = f"GEN{uuid.uuid4().hex[:16].upper()}"
    sim.config.add_account("okx", api_key, secret, passphrase=OKX_PASSPHRASE)
    return models.CredentialCreate(
        exchange="okx", label=label, api_key=api_key, api_secret=secret, passphrase=OKX_PASSPHRASE,
        permissions=[models.Permission.READ, models.Permission.TRADE],
    )


def test_generation_is_clean(generated: Generated) -> None:
    """The generator understood every operation and schema (a warning means a part was left out)."""
    assert "Warning" not in generated.output, generated.output
    for tag, operation in [("credentials", "create_credential"), ("clients", "create_client"),
                           ("signing", "sign_request"), ("signing", "proxy_get"), ("audit", "list_audit_events")]:
        assert hasattr(generated.api(tag, operation), "sync_detailed"), f"{tag}.{operation} was not generated"


def test_admin_creates_a_credential_and_a_client_through_typed_models(
    generated: Generated, admin: Any, contract_sim: SimulatorServer, live: str,
) -> None:
    models = generated.models
    secret = f"gen-secret-{uuid.uuid4().hex}"
    body = okx_key_body(generated, contract_sim, secret)

    created = generated.api("credentials", "create_credential").sync_detailed(client=admin, body=body)
    assert created.status_code == 201
    credential = created.parsed
    assert isinstance(credential, models.CredentialDetail)
    assert (credential.exchange, credential.label, credential.active_version) == ("okx", body.label, 1)
    assert credential.api_key_hint and credential.api_key_hint != body.api_key
    assert [v.version for v in credential.versions] == [1] and credential.versions[0].active is True
    assert secret.encode() not in created.content and OKX_PASSPHRASE.encode() not in created.content

    ref = f"okx:{body.label}"
    fetched = generated.api("credentials", "get_credential").sync(ref, client=admin)
    assert isinstance(fetched, models.CredentialDetail) and fetched.id == credential.id
    page = generated.api("credentials", "list_credentials").sync(client=admin, exchange="okx")
    assert isinstance(page, models.CredentialPage)
    assert credential.id in [item.id for item in page.items]
    assert all(isinstance(item, models.CredentialRead) for item in page.items)

    made = generated.api("clients", "create_client").sync_detailed(client=admin, body=models.ClientCreate(
        name=f"gen-bot-{uuid.uuid4().hex[:8]}", credentials=[ref],
        permissions=[models.Permission.READ]))
    assert made.status_code == 201
    client = made.parsed
    assert isinstance(client, models.ClientWithToken)
    assert client.token.startswith("sv_") and client.active is True
    assert [(c.id, c.exchange, c.label) for c in client.credentials] == [(credential.id, "okx", body.label)]

    with bot(generated, live, client.token) as as_bot:
        me = generated.api("me", "whoami").sync(client=as_bot)
    assert isinstance(me, models.Whoami)
    assert me.name == client.name and me.permissions == ["read"]
    assert [c.id for c in me.credentials] == [credential.id]


def test_sign_returns_a_typed_request_the_exchange_accepts(
    generated: Generated, admin: Any, contract_sim: SimulatorServer, live: str,
) -> None:
    models = generated.models
    enrolled = enrol(live, contract_sim, secret=f"gen-sign-{uuid.uuid4().hex}")
    with bot(generated, live, enrolled.token) as as_bot:
        response = generated.api("signing", "sign_request").sync_detailed(client=as_bot, body=models.SignRequest(
            credential=enrolled.ref, method="GET", path="/api/v5/account/balance", query="ccy=BTC"))
    assert response.status_code == 200, response.content
    signed = response.parsed
    assert isinstance(signed, models.SignedRequest)
    assert isinstance(signed.headers, models.SignedRequestHeaders)
    assert signed.method == "GET" and signed.url.endswith("/okx/api/v5/account/balance?ccy=BTC")
    assert "ok-access-sign" in signed.headers.additional_properties

    # Send exactly what /sign said to send: the simulator verifies the signature.
    sent = httpx.request(signed.method, signed.url, headers=signed.headers.to_dict(),
                         content=signed.body.encode() or None, timeout=10)
    assert sent.status_code == 200, sent.text
    assert sent.json()["code"] == "0"
    assert contract_sim.config.received[-1].verdict == ACCEPTED


def test_proxy_get_on_a_one_segment_path(generated: Generated, contract_sim: SimulatorServer, live: str) -> None:
    """Coinbase Exchange's `/accounts` has no slash inside, so the generated proxy_get can reach it."""
    secret = base64.b64encode(os.urandom(64)).decode()
    enrolled = enrol(live, contract_sim, exchange="coinbaseexchange", secret=secret, passphrase="gen-cbx-pass")
    with bot(generated, live, enrolled.token) as as_bot:
        response = generated.api("signing", "proxy_get").sync_detailed("coinbaseexchange", "accounts", client=as_bot)
    assert response.status_code == 200, response.content
    # The exchange's own JSON, passed through untyped (the document allows it or a Problem, so the
    # generator leaves parsing to the caller).
    assert isinstance(json.loads(response.content), list)
    assert contract_sim.config.received[-1].verdict == ACCEPTED


def test_proxy_get_on_a_nested_exchange_path(generated: Generated, contract_sim: SimulatorServer, live: str) -> None:
    enrolled: Enrolled = enrol(live, contract_sim, secret=f"gen-proxy-{uuid.uuid4().hex}")
    with bot(generated, live, enrolled.token) as as_bot:
        response = generated.api("signing", "proxy_get").sync_detailed("okx", "api/v5/account/balance",
                                                                        client=as_bot)
    assert response.status_code == 200, (response.status_code, response.content)
    assert json.loads(response.content)["code"] == "0"


def test_errors_come_back_as_typed_problems(generated: Generated, admin: Any, live: str) -> None:
    models = generated.models
    missing = generated.api("credentials", "get_credential").sync_detailed("okx:no-such-label", client=admin)
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.type_ == "urn:signvault:problem:credential-not-found" and missing.parsed.status == 404

    body = models.CredentialCreate(exchange="okx", label="has spaces", api_key="K" * 20, api_secret="s" * 20,
                                   passphrase=OKX_PASSPHRASE)
    invalid = generated.api("credentials", "create_credential").sync_detailed(client=admin, body=body)
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.Problem)
    assert invalid.parsed.errors and all(isinstance(e, models.FieldProblem) for e in invalid.parsed.errors)
    assert "label" in [e.field for e in invalid.parsed.errors]

    with generated.client(live, "sva_not-the-admin-token-000000") as stranger:
        refused = generated.api("credentials", "list_credentials").sync_detailed(client=stranger)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Problem)
    assert refused.parsed.type_ == "urn:signvault:problem:not-authenticated"
