"""Building blocks shared by the fake exchanges: the request as received, responses, rejections,
routing and the permission step."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from . import keys
from .state import (
    ACCEPTED,
    DUPLICATE_PARAMETER,
    MISSING_AUTH,
    NOT_FOUND,
    PERMISSION_DENIED,
    UNSUPPORTED_KEY_TYPE,
    Account,
    ReceivedRequest,
    SimulatorConfig,
)


@dataclass
class SimResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> SimResponse:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return SimResponse(status, body, {"content-type": "application/json", **(headers or {})})


class Reject(Exception):
    """Stop verification here and answer with `response`; `verdict` goes into the request log."""

    def __init__(self, verdict: str, response: SimResponse, detail: str = "") -> None:
        super().__init__(f"{verdict}: {detail}")
        self.verdict = verdict
        self.response = response
        self.detail = detail


@dataclass
class SimRequest:
    """A request as one fake exchange sees it (mount prefix stripped, everything else raw)."""

    exchange: str
    method: str
    path: str  # exchange-relative raw path
    query: str  # raw query string
    raw_headers: list[tuple[str, str]]  # lower-cased names
    body: bytes
    client_ip: str
    host: str | None
    full_path: str  # raw path as it was on the wire, with the mount prefix
    config: SimulatorConfig
    record: ReceivedRequest
    now_ms: float = 0.0  # simulator clock when verification started
    path_params: dict[str, str] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)  # per-request notes of a venue

    def header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.raw_headers if k == lname]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def target(self) -> str:
        """path?query, or just path when there is no query."""
        return self.path + ("?" + self.query if self.query else "")

    @property
    def body_text(self) -> str:
        return self.body.decode("utf-8", errors="surrogateescape")

    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None


Handler = Callable[[SimRequest, Account | None], SimResponse]


@dataclass
class Endpoint:
    method: str
    pattern: str  # exact path, or a regex when it contains "(?P<"
    kind: str  # "public" | "read" | "trade" | "withdraw" | "keyinfo"
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        if "(?P<" in self.pattern:
            found = re.fullmatch(self.pattern, path)
            return found.groupdict() if found else None
        return {} if path == self.pattern else None


class Venue:
    """One fake exchange. Subclasses set `endpoints` and implement `authenticate` and the errors."""

    exchange_id: str = ""
    endpoints: list[Endpoint]

    def __init__(self, exchange_id: str) -> None:
        self.exchange_id = exchange_id
        self.endpoints = self.build_endpoints()

    # -- to override ---------------------------------------------------------------------------
    def build_endpoints(self) -> list[Endpoint]:
        raise NotImplementedError

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        """Run the exchange's checks (key, IP, passphrase, time, signature); raise Reject."""
        raise NotImplementedError

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        raise NotImplementedError

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"error": "not found", "path": req.path, "method": req.method})

    def extra_headers(self, req: SimRequest) -> dict[str, str]:
        return {}

    # -- the pipeline ---------------------------------------------------------------------------
    def handle(self, req: SimRequest) -> tuple[str, SimResponse, str]:
        for endpoint in self.endpoints:
            params = endpoint.match(req.method, req.path)
            if params is not None:
                req.path_params = params
                break
        else:
            return NOT_FOUND, self.not_found(req), ""
        try:
            if endpoint.kind == "public":
                return ACCEPTED, endpoint.handler(req, None), ""
            account = self.authenticate(req, endpoint)
            if (endpoint.kind == "trade" and not account.can_trade) or (
                endpoint.kind == "withdraw" and not account.can_withdraw
            ):
                raise Reject(PERMISSION_DENIED, self.permission_error(req, endpoint), endpoint.kind)
            return ACCEPTED, endpoint.handler(req, account), ""
        except Reject as rejected:
            return rejected.verdict, rejected.response, rejected.detail


# -- small helpers shared by the venues ------------------------------------------------------------


def single_header(req: SimRequest, name: str, refusal: SimResponse) -> str:
    """The one value of auth header `name`; absent or empty -> MISSING_AUTH, repeated -> DUPLICATE_PARAMETER."""
    values = req.header_values(name)
    if len(values) > 1:
        raise Reject(DUPLICATE_PARAMETER, refusal, f"{name} sent {len(values)} times")
    if not values or not values[0]:
        raise Reject(MISSING_AUTH, refusal, f"{name} missing")
    return values[0]


def lookup(req: SimRequest, api_key: str | None) -> Account | None:
    req.record.api_key = api_key
    return req.config.get_account(req.exchange, api_key)


def hmac_digest(key: bytes, msg: bytes, algo: str = "sha256") -> bytes:
    return hmac.new(key, msg, getattr(hashlib, algo)).digest()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64decode_strict(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def consteq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode("utf-8", "surrogateescape"))


def verify_asymmetric(account: Account, signature_b64: str, payload: bytes) -> bool:
    """Verify a base64 RSA-PKCS1v15-SHA256 or pure-Ed25519 signature with the account's public key."""
    sig = b64decode_strict(signature_b64)
    if sig is None:
        return False
    public = keys.public_key(account.secret, account.key_type)
    try:
        if isinstance(public, ed25519.Ed25519PublicKey):
            public.verify(sig, payload)
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(sig, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except InvalidSignature:
        return False
    return True


def require_key_type(account: Account, allowed: tuple[str, ...], response: SimResponse) -> None:
    if account.key_type not in allowed:
        raise Reject(UNSUPPORTED_KEY_TYPE, response, f"{account.key_type} keys are not used on this exchange")


def parse_form(raw: str) -> list[tuple[str, str, str]]:
    """Split a urlencoded string into (decoded name, decoded value, raw pair) triples, in order."""
    if not raw:
        return []
    out = []
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        out.append((unquote_plus(name), unquote_plus(value), pair))
    return out


def new_id() -> str:
    return uuid.uuid4().hex


def rand_int(low: int, high: int) -> int:
    """A random integer in [low, high), for made-up order and withdrawal ids."""
    return low + secrets.randbelow(high - low)
