"""Schemathesis against the real app: every operation of the committed OpenAPI document, fuzzed.

The app runs under uvicorn on a real socket with every exchange pointed at the signature-verifying
simulator, so /proxy, /sign and the key checks get real answers. For each operation, 25 cases (valid and
invalid, derandomized) are sent with the admin token on /admin/* and a bot client's token on client
routes, twice over:

- test_no_server_error_and_no_secret: never a 5xx, never the canary secret (the seeded OKX credential's
  api_secret) in any header or body, and every problem+json well formed with the response's status;
- test_responses_conform_to_the_spec: status, content type, headers and body as the document declares
  for the operation (the refusals every route can give, and /proxy's passthrough of the exchange's own
  answers, included).

Part of the generated cases are steered at things that exist (the seeded credential and client, a
scratch credential and client for mutating operations, real OKX paths, the real master key id) so that
the fuzzing reaches past the 404s. Explicit cases cover what generators do not produce: bodies over the
size cap (declared and streamed), deeply nested JSON, malformed JSON, non-UTF-8 bytes, throttling.

The gaps this file first found (undocumented 400/413/429, Problem under the wrong media type, /proxy's
passthrough, a streamed oversized body answered 400) are fixed and pinned by the explicit tests below.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.contract.conftest import Enrolled, enrol, running_signvault
from tests.simulator import SimulatorServer

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
SPEC: dict[str, Any] = json.loads(SPEC_PATH.read_text())
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}

MAX_BODY = 64 * 1024  # a small cap keeps the oversized-body cases fast
CANARY = "CANARY-" + uuid.uuid4().hex + "-do-not-echo"  # the seeded credential's secret
EXAMPLES = 25
CONFORMANCE_CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
                      response_schema_conformance]
PROBLEM_TYPE = "urn:signvault:problem:"

# Real targets for the steered /proxy cases: granted reads, an order, a withdrawal the client may not
# make, a public path, a path the exchange does not have, an exchange the client holds no key for.
PROXY_TARGETS = [
    ("okx", "api/v5/account/balance"), ("okx", "api/v5/account/balance?ccy=BTC"), ("okx", "api/v5/trade/order"),
    ("okx", "api/v5/asset/withdrawal"), ("okx", "api/v5/public/time"), ("okx", "api/v5/no/such/path"),
    ("coinbaseexchange", "accounts"), ("binance", "api/v3/account"),
]
SIGN_PATHS = ["/api/v5/account/balance", "/api/v5/trade/order", "/api/v5/asset/withdrawal", "/api/v5/public/time"]


@dataclass
class Live:
    url: str
    sim: SimulatorServer
    canary: Enrolled  # OKX credential whose secret is CANARY, and a client granted it
    session: requests.Session
    master_key_ids: list[str]

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def auth_for(self, operation: Any) -> dict[str, str]:
        schemes = {name for requirement in operation.definition.raw.get("security", []) for name in requirement}
        if "AdminToken" in schemes:
            return dict(ADMIN)
        if "ClientToken" in schemes:
            return {"X-Signvault-Token": self.canary.token}
        return {}


@pytest.fixture(scope="module")
def live(contract_sim: SimulatorServer, ip_echo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    contract_sim.config.reset()
    with running_signvault(contract_sim, tmp_path_factory.mktemp("signvault"), ip_echo,
                           max_body_bytes=MAX_BODY) as url:
        # A generous per-key rate, so the fuzzing is not throttled into 429s (tested on their own below).
        canary = enrol(url, contract_sim, secret=CANARY, label="canary", rate_limit="1000/second")
        keys = httpx.get(f"{url}/admin/vault/keys", headers=ADMIN, timeout=10).json()
        with requests.Session() as session:
            yield Live(url, contract_sim, canary, session, [key["id"] for key in keys["items"]])


@pytest.fixture
def scratch(live: Live) -> dict[str, str]:
    """A credential and a client of this test's own, for the cases steered at mutating operations
    (delete, rotate, rollback, patch, revoke): the canary credential and client stay as they are."""
    enrolled = enrol(live.url, live.sim, secret=f"scratch-{uuid.uuid4().hex}")
    return {"credential": enrolled.ref, "client": enrolled.client["id"]}


def _header_lines(response: Any) -> list[tuple[str, str]]:
    """(name, value) pairs of an httpx response or a schemathesis one (whose values are lists)."""
    lines: list[tuple[str, str]] = []
    for name, value in response.headers.items():
        lines.extend((name, v) for v in (value if isinstance(value, list) else [value]))
    return lines


def _content_type(response: Any) -> str:
    return next((v for k, v in _header_lines(response) if k.lower() == "content-type"), "")


def assert_no_canary(response: Any) -> None:
    """The canary secret is in no header and no body, as is or in the encodings the app might use."""
    where = f"{response.request.method} {response.request.url}"
    text = "\n".join(f"{k}: {v}" for k, v in _header_lines(response))
    assert CANARY not in text, f"the canary secret is in a response header of {where}"
    forms = (CANARY.encode(), CANARY.encode().hex().encode(), base64.b64encode(CANARY.encode()),
             json.dumps(CANARY).encode())
    for form in forms:
        assert form not in response.content, f"the canary secret is in the response body of {where}"


def assert_problem_shape(response: Any) -> None:
    """The document gives problem+json no schema, so its shape is checked here (RFC 9457, app/errors.py)."""
    if not _content_type(response).startswith("application/problem+json"):
        return
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert body.get("status") == response.status_code, body
    assert isinstance(body.get("title"), str) and body["title"], body
    assert isinstance(body.get("type"), str) and body["type"].startswith(PROBLEM_TYPE), body
    for error in body.get("errors") or []:
        assert set(error) == {"field", "message"}, body


def _steer(operation: Any, live: Live, scratch: dict[str, str]) -> Callable[[Any, Any], Any]:
    """Returns f(case, choice) that points a generated case at something that exists."""
    path, method = operation.path, operation.method.upper()
    read_only_credential = method == "GET" or path.endswith("/check")

    def steer(case: Any, choice: Any) -> Any:
        params = dict(case.path_parameters or {})
        if path.startswith("/proxy/"):
            exchange, target = choice
            params.update(exchange=exchange, path=target.split("?")[0])
            if "?" in target:
                case.query = dict(pair.split("=") for pair in target.split("?")[1].split("&"))
        elif path.startswith("/admin/credentials/"):
            params["ref"] = live.canary.ref if read_only_credential else scratch["credential"]
        elif path.startswith("/admin/clients/"):
            params["ref"] = live.canary.client["id"] if method == "GET" else scratch["client"]
        elif path.startswith("/admin/vault/keys/"):
            params["key_id"] = live.master_key_ids[0]
        elif path == "/admin/credentials" and isinstance(case.body, dict):
            # A known exchange and its passphrase, so that some generated keys are stored (201).
            case.body = {**case.body, "exchange": "okx", "passphrase": "fuzz-Passphrase1", "environment": "live",
                         "api_key": f"FUZZKEY{len(json.dumps(case.body))}"}
            case.body.pop("key_type", None)
            case.body.pop("rate_limit", None)
            secret = case.body.get("api_secret")
            if not (isinstance(secret, str) and secret.isascii() and secret.isprintable() and secret.strip()):
                case.body["api_secret"] = "fuzz-secret"
        elif path in ("/sign", "/sign/ws-login") and isinstance(case.body, dict):
            case.body = {**case.body, "credential": live.canary.ref}
            if path == "/sign":
                case.body["path"] = choice
        if params:
            case.path_parameters = params
        return case

    return steer


def _choices(operation: Any) -> st.SearchStrategy[Any]:
    if operation.path.startswith("/proxy/"):
        return st.sampled_from(PROXY_TARGETS)
    return st.sampled_from(SIGN_PATHS)


def _steerable(operation: Any) -> bool:
    path = operation.path
    posts_a_body = operation.method.upper() == "POST" and path in ("/admin/credentials", "/sign", "/sign/ws-login")
    return "{" in path or posts_a_body


def _has_inputs(operation: Any) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody") or raw.get("security"))


def cases(operation: Any, live: Live, scratch: dict[str, str]) -> st.SearchStrategy[Any]:
    generated = operation.as_strategy(GenerationMode.POSITIVE)
    if _has_inputs(operation):  # nothing to make invalid in e.g. GET /healthz
        generated = st.one_of(generated, operation.as_strategy(GenerationMode.NEGATIVE))
    if not _steerable(operation):
        return generated
    steered = st.builds(_steer(operation, live, scratch), operation.as_strategy(GenerationMode.POSITIVE),
                        _choices(operation))
    return st.one_of(generated, steered)


Check = Callable[[Any, Any, dict[str, str]], None]


def fuzz(operation: Any, live: Live, scratch: dict[str, str], check: Check) -> None:
    """Send EXAMPLES derandomized cases (the same ones every run) of `operation`; `check(case, response)` each."""
    headers = live.auth_for(operation)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None, verbosity=Verbosity.quiet,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases(operation, live, scratch))
    def run(case: Any) -> None:
        response = case.call(base_url=live.url, session=live.session, headers=headers, timeout=15)
        check(case, response, headers)

    run()


def _exchange_failure(case: Any, response: Any) -> bool:
    """On /proxy, 502/504 saying the exchange failed (documented) are not signvault's own errors."""
    if not case.operation.path.startswith("/proxy/") or response.status_code not in (502, 504):
        return False
    if not _content_type(response).startswith("application/problem+json"):
        return False
    return str(json.loads(response.content).get("type", "")).startswith(PROBLEM_TYPE + "exchange-")


def _safe(case: Any, response: Any, headers: dict[str, str]) -> None:
    assert_no_canary(response)
    if not _exchange_failure(case, response):
        case.validate_response(response, checks=[not_a_server_error], headers=headers)
    assert_problem_shape(response)


def _conforms(case: Any, response: Any, headers: dict[str, str]) -> None:
    case.validate_response(response, checks=CONFORMANCE_CHECKS, headers=headers)


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_no_server_error_and_no_secret(label: str, live: Live, scratch: dict[str, str]) -> None:
    """Whatever is sent: never a 5xx, never the canary secret, every problem+json well formed."""
    fuzz(OPERATIONS[label], live, scratch, _safe)


@pytest.mark.parametrize("label", list(OPERATIONS))
def test_responses_conform_to_the_spec(label: str, live: Live, scratch: dict[str, str]) -> None:
    """Status code, content type, headers and body are the ones the document declares for the operation."""
    fuzz(OPERATIONS[label], live, scratch, _conforms)


# ---- without a token ---------------------------------------------------------------------------------

SECURED = [label for label, op in OPERATIONS.items() if op.definition.raw.get("security")]


def _concrete(operation: Any) -> str:
    return operation.path.replace("{exchange}", "okx").replace("{path}", "api/v5/account/balance") \
        .replace("{ref}", "okx:canary").replace("{key_id}", "k")


@pytest.mark.parametrize("label", SECURED)
def test_every_secured_operation_refuses_a_missing_or_wrong_token(label: str, live: Live) -> None:
    operation = OPERATIONS[label]
    target = _concrete(operation)
    body = {} if operation.definition.raw.get("requestBody") else None
    with live.http() as http:
        for headers in ({}, {"Authorization": "Bearer sva_wrong-token-0123456789"},
                        {"X-Signvault-Token": "sv_wrong-token-0123456789"}):
            response = http.request(operation.method.upper(), target, json=body, headers=headers)
            assert response.status_code == 401, (label, headers, response.text)
            assert_problem_shape(response)
            assert response.json()["type"] == PROBLEM_TYPE + "not-authenticated"


# ---- bodies generators do not make -------------------------------------------------------------------

def _status_documented(label: str, status: int) -> bool:
    return str(status) in OPERATIONS[label].definition.raw["responses"]


def _auth(live: Live, who: str) -> dict[str, str]:
    return dict(ADMIN) if who == "admin" else {"X-Signvault-Token": live.canary.token}


JSON = {"content-type": "application/json"}
BIG = b'{"pad": "' + b"x" * MAX_BODY + b'"}'
BODY_ROUTES = [("/admin/credentials", "admin"), ("/admin/clients", "admin"), ("/sign", "client"),
               ("/proxy/okx/api/v5/trade/order", "client")]
@pytest.mark.parametrize(("target", "who"), BODY_ROUTES)
def test_a_declared_body_over_the_cap_is_413(target: str, who: str, live: Live) -> None:
    with live.http() as http:
        response = http.post(target, content=BIG, headers={**_auth(live, who), **JSON})
    assert response.status_code == 413, response.text
    assert response.json()["type"] == PROBLEM_TYPE + "body-too-large"
    assert_problem_shape(response)


@pytest.mark.parametrize(("target", "who"), [
    pytest.param(target, who)
    for target, who in BODY_ROUTES])
def test_a_streamed_body_over_the_cap_is_413(target: str, who: str, live: Live) -> None:
    with live.http() as http:  # an iterator: sent chunked, so no Content-Length to refuse up front
        response = http.post(target, content=iter([BIG[:1000], BIG[1000:]]), headers={**_auth(live, who), **JSON})
    assert response.status_code == 413, response.text
    assert_problem_shape(response)


def _nested(depth: int) -> bytes:
    return b'{"exchange": ' + b"[" * depth + b"]" * depth + b', "label": "x", "api_key": "k", "api_secret": "s"}'


@pytest.mark.parametrize("depth", [64, 1_000, 30_000])
def test_deeply_nested_json_is_refused_with_4xx(depth: int, live: Live) -> None:
    body = _nested(depth)
    assert len(body) < MAX_BODY
    with live.http() as http:
        for target, who in BODY_ROUTES[:3]:
            response = http.post(target, content=body, headers={**_auth(live, who), **JSON})
            assert 400 <= response.status_code < 500, (target, depth, response.status_code, response.text[:300])
            assert_problem_shape(response)


MALFORMED = [b"{", b'{"exchange": "okx",}', b"{'exchange': 'okx'}", b'{"exchange": NaN}', b"[1, 2", b"\x00",
             b'{"a": 1} trailing', b'"just a string"', b"null", b"1e999999", b""]


@pytest.mark.parametrize("body", MALFORMED, ids=[repr(b)[2:-1][:20] or "empty" for b in MALFORMED])
def test_malformed_json_is_refused_with_4xx(body: bytes, live: Live) -> None:
    with live.http() as http:
        for target, who in (*BODY_ROUTES[:3], ("/sign/ws-login", "client")):
            response = http.post(target, content=body, headers={**_auth(live, who), **JSON})
            assert 400 <= response.status_code < 500, (target, body, response.status_code, response.text[:300])
            assert_problem_shape(response)


NOT_UTF8 = {
    "ff-fe": b'{"exchange": "okx", "label": "\xff\xfe", "api_key": "k", "api_secret": "s"}',
    "latin-1": '{"exchange": "okx", "label": "caf\u00e9", "api_key": "k", "api_secret": "s"}'.encode("latin-1"),
    "utf-16": '{"exchange": "okx"}'.encode("utf-16"),
    "lone-surrogate": b'{"exchange": "okx", "label": "\xed\xa0\x80"}',
    "escaped-lone-surrogate": b'{"exchange": "okx", "label": "\\ud800", "api_key": "k", "api_secret": "s"}',
}


@pytest.mark.parametrize("body", list(NOT_UTF8.values()), ids=list(NOT_UTF8))
def test_non_utf8_bodies_are_refused_with_4xx(body: bytes, live: Live) -> None:
    with live.http() as http:
        for target, who in BODY_ROUTES[:3]:
            response = http.post(target, content=body, headers={**_auth(live, who), **JSON})
            assert 400 <= response.status_code < 500, (target, body, response.status_code, response.text[:300])
            assert_problem_shape(response)


def test_non_utf8_bytes_in_paths_queries_and_headers_are_4xx(live: Live) -> None:
    token = live.canary.token.encode()
    cases_ = [
        ("GET", "/admin/credentials/%FF%FE", {"Authorization": b"Bearer " + ADMIN_TOKEN.encode()}),
        ("GET", "/admin/clients/%C0%AF", {"Authorization": b"Bearer " + ADMIN_TOKEN.encode()}),
        ("GET", "/proxy/okx/api/v5/%FF", {"X-Signvault-Token": token}),
        ("GET", "/proxy/okx/api/v5/account/balance?ccy=%FF%FE&ccy=%FF", {"X-Signvault-Token": token}),
        ("GET", "/proxy/okx/api/v5/account/balance", {"X-Signvault-Token": token,
                                                      "X-Signvault-Credential": b"okx:\xff\xfe"}),
        ("GET", "/me", {"X-Signvault-Token": b"sv_\xff\xfe"}),
        ("GET", "/admin/credentials", {"Authorization": b"Bearer \xff\xfe"}),
        ("POST", "/sign", {"X-Signvault-Token": token, "Idempotency-Key": b"\xff\xfe"}),
    ]
    with live.http() as http:
        for method, target, headers in cases_:
            response = http.request(method, target, headers=headers, json={} if method == "POST" else None)
            assert 400 <= response.status_code < 500, (target, headers, response.status_code, response.text[:300])
            assert_no_canary(response)
            assert_problem_shape(response)


# ---- statuses the fuzzing meets on every route (pinned here, filtered out of the conformance fuzz) ------

SAMPLE_PATH_PARAMETERS = {"exchange": "okx", "path": "api/v5/account/balance", "ref": "okx:canary", "key_id": "mk_x"}


def _sample_case(label: str, path_parameters: dict[str, str] | None = None, **overrides: Any) -> Any:
    operation = OPERATIONS[label]
    names = [p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"]
    parameters = {name: SAMPLE_PATH_PARAMETERS[name] for name in names} | (path_parameters or {})
    return operation.Case(path_parameters=parameters, **overrides)


def _with_body(label: str) -> bool:
    return "requestBody" in OPERATIONS[label].definition.raw or label.startswith(("POST /proxy", "PUT /proxy",
                                                                                   "PATCH /proxy"))


UNDOCUMENTED_REFUSAL = pytest.mark.xfail(strict=True, reason=(
    "BUG: RequestGuard's 400 (control characters in the path or query) and FastAPI's 400 ('There was an error "
    "parsing the body') answer on every route, and BodyLimit's 413 on every route that takes a body, but the spec "
    "documents 400 and 413 only on /proxy and /sign"))


def _refusal_param(label: str) -> Any:
    documented = _status_documented(label, 400) and (not _with_body(label) or _status_documented(label, 413))
    return pytest.param(label, marks=[] if documented else [UNDOCUMENTED_REFUSAL])


@pytest.mark.parametrize("label", [_refusal_param(label) for label in OPERATIONS])
def test_global_refusals_are_documented(label: str, live: Live) -> None:
    """A control character in the query (400) and, where a body is read, one over the cap (413): both are
    refused before any route runs, and the document must say so for the operation."""
    headers = live.auth_for(OPERATIONS[label])
    control = _sample_case(label, query={"x": "\x01"})
    response = control.call(base_url=live.url, session=live.session, headers=headers)
    assert response.status_code == 400, response.content
    assert json.loads(response.content)["type"] == PROBLEM_TYPE + "bad-request"
    control.validate_response(response, checks=[status_code_conformance], headers=headers)
    if _with_body(label):
        oversized = _sample_case(label, body={"pad": "x" * MAX_BODY}, media_type="application/json")
        response = oversized.call(base_url=live.url, session=live.session, headers=headers)
        assert response.status_code == 413, response.content
        oversized.validate_response(response, checks=[status_code_conformance], headers=headers)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_proxy_passthrough_is_documented(method: str, live: Live) -> None:
    label = f"{method} /proxy/{{exchange}}/{{path}}"
    headers = live.auth_for(OPERATIONS[label])
    case = _sample_case(label, path_parameters={"exchange": "okx", "path": "api/v5/no/such/path"})
    response = case.call(base_url=live.url, session=live.session, headers=headers)
    # The exchange's own answer, passed through: not a signvault problem.
    assert response.status_code == 404, response.content
    assert _content_type(response).startswith("application/json")
    assert json.loads(response.content)["code"] == "404"
    case.validate_response(response, checks=CONFORMANCE_CHECKS, headers=headers)


# ---- what the document says about errors ------------------------------------------------------------

def test_problem_responses_are_described_as_sent(live: Live) -> None:
    with live.http() as http:
        answers = {
            "GET /admin/audit": http.get("/admin/audit?limit=abc", headers=ADMIN),
            "GET /admin/credentials/{ref}": http.get("/admin/credentials/okx:missing", headers=ADMIN),
            "POST /admin/credentials": http.post("/admin/credentials", json={}, headers=ADMIN),
            "POST /sign": http.post("/sign", json={}, headers=_auth(live, "client")),
        }
    for label, response in answers.items():
        assert 400 <= response.status_code < 500, (label, response.status_code)
        media_type = response.headers["content-type"].split(";")[0]
        documented = OPERATIONS[label].definition.raw["responses"][str(response.status_code)]["content"]
        schema = documented.get(media_type, {}).get("schema")
        assert schema == {"$ref": "#/components/schemas/Problem"}, (label, response.status_code, documented)


# ---- throttling ---------------------------------------------------------------------------------------

def test_a_throttled_request_is_a_429_problem_with_retry_after(live: Live) -> None:
    with live.http() as http:
        made = http.post("/admin/clients", headers=ADMIN, json={
            "name": f"slow-{uuid.uuid4().hex[:8]}", "credentials": [live.canary.ref], "rate_limit": "1/minute"})
        assert made.status_code == 201, made.text
        slow = {"X-Signvault-Token": made.json()["token"]}
        answers = [http.get("/proxy/okx/api/v5/account/balance", headers=slow) for _ in range(2)]
        signed = http.post("/sign", headers=slow, json={"credential": live.canary.ref, "method": "GET",
                                                        "path": "/api/v5/account/balance"})
    assert [a.status_code for a in answers] == [200, 429]
    for throttled in (answers[1], signed):
        assert throttled.status_code == 429, throttled.text
        assert int(throttled.headers["retry-after"]) >= 1
        assert_problem_shape(throttled)
        assert_no_canary(throttled)


@pytest.mark.parametrize("label", ["GET /proxy/{exchange}/{path}", "POST /proxy/{exchange}/{path}", "POST /sign"])
def test_429_is_documented(label: str) -> None:
    assert _status_documented(label, 429)
