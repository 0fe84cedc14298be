"""The one interface every exchange adapter implements, and the request it signs."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from app.exchanges import params
from app.exchanges.crypto import HmacKey

KeyType = Literal["hmac", "ed25519", "rsa", "ecdsa"]
SecretEncoding = Literal["utf8", "base64"]
Access = Literal["public", "read", "trade", "withdraw"]

LIVE = "live"

# Headers that belong to one hop, or that would let a client steer where or as whom we connect.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length", "expect", "forwarded", "x-forwarded-for",
    "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip", "x-original-url",
    "x-rewrite-url", "x-http-method-override", "cookie", "authorization", "x-signvault-token",
    "x-signvault-credential", "accept-encoding",
})


_PLAIN_CONNECTION = frozenset({"keep-alive", "close"})


class RequestRefused(Exception):
    """The request cannot be signed as the exchange requires; the message is safe to show the client."""


# Binance's longest IP ban: its bans grow from 2 minutes to 3 days. An exchange's or a CDN's header
# can say anything ("inf", "1e300", a date decades away); a cooldown never lasts longer than this.
MAX_COOLDOWN_S = 3 * 24 * 3600.0
# What reading an answer's JSON raises when the exchange sent another shape than it documents (a
# maintenance page, a CDN's error page, a changed API): such an answer is read as saying nothing.
UNREADABLE = (LookupError, TypeError, ValueError, AttributeError, OverflowError)


@dataclass(frozen=True)
class Cooldown:
    """The exchange said stop: for the whole egress IP, one key, one key's new orders (its cancels
    and reads go on), or one key's calls to one endpoint, where the exchange counts each endpoint
    apart (its other endpoints, cancels included, go on); for how long, and whether it is a ban.
    `seconds` is held between 1 s and MAX_COOLDOWN_S (found by drawing headers at random)."""

    scope: Literal["ip", "key", "orders", "endpoint"]
    seconds: float
    ban: bool = False

    def __post_init__(self) -> None:
        seconds = self.seconds if self.seconds >= 1.0 else 1.0  # NaN too: it compares false
        object.__setattr__(self, "seconds", min(seconds, MAX_COOLDOWN_S))


CheckStatus = Literal["connected", "invalid_key", "invalid_signature", "ip_not_whitelisted", "clock_skew",
                     "permission_denied", "exchange_unavailable"]


@dataclass(frozen=True)
class KeyPermissions:
    """What the key may do at the exchange, where the exchange says (None: it does not say)."""

    read: bool | None = None
    trade: bool | None = None
    withdraw: bool | None = None
    ip_restricted: bool | None = None


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    detail: str
    permissions: KeyPermissions | None = None


@dataclass(frozen=True)
class Usage:
    """What the exchange says is spent: on the egress IP ("ip") or the key's orders ("orders")."""

    scope: Literal["ip", "orders"]
    window_s: float
    used: int


def reset_in_s(value: str, *, unit_ms: bool | None = True) -> float | None:
    """Seconds until an epoch reset timestamp (ms, s when unit_ms is False, or when None whichever
    its size says: 10^11 is in the year 5138 as seconds, in 1973 as milliseconds); None if
    unreadable. A reset already past is fine: a Cooldown holds its seconds between 1 s and
    MAX_COOLDOWN_S."""
    try:
        at = float(value)
    except ValueError:
        return None
    if unit_ms or (unit_ms is None and at >= 1e11):
        at /= 1000
    return at - time.time()


def retry_after_s(headers: Mapping[str, str], default: float) -> float:
    """Retry-After in seconds, as a Cooldown takes it (which holds it between 1 s and MAX_COOLDOWN_S)."""
    value = headers.get("retry-after", "")
    try:
        return float(value)
    except ValueError:
        return default


@dataclass(frozen=True)
class ExchangeSpec:
    """An exchange's needs: key types, passphrase, how the secret is encoded, its base URLs."""

    id: str  # as ccxt names it, so users recognise it
    name: str
    base_urls: Mapping[str, str]  # environment ("live", "testnet", "demo") -> origin
    key_types: tuple[KeyType, ...] = ("hmac",)
    needs_passphrase: bool = False
    secret_encoding: SecretEncoding = "utf8"  # how an HMAC secret becomes key bytes
    # Path prefix -> {environment -> origin}, for clients that span several hosts (Binance /fapi).
    hosts_by_prefix: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def default_key_type(self) -> KeyType:
        return self.key_types[0]

    @property
    def environments(self) -> tuple[str, ...]:
        return tuple(self.base_urls)

    def origin(self, environment: str, path: str) -> str:
        for prefix, hosts in self.hosts_by_prefix.items():
            if (path == prefix or path.startswith(prefix + "/")) and environment in hosts:
                return hosts[environment]
        return self.base_urls[environment]


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


# The request, the moment and the objects around them in the signing pipeline are NamedTuples:
# immutable like a frozen dataclass, and built in one C call where a frozen dataclass sets each field
# through object.__setattr__ (2.7 against 1.0 µs for this one on the bench's VM, four times a request).
class UpstreamRequest(NamedTuple):
    """What goes to the exchange. `query` and `body` are the exact bytes sent, and signed."""

    method: str
    path: str  # exchange-relative, percent-encoded, starting with "/"
    query: str = ""  # without the "?"
    body: bytes = b""
    headers: Mapping[str, str] = _NO_HEADERS  # lower-case names
    host: str = ""  # the exchange host the request goes to (Coinbase signs it)
    environment: str = LIVE

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def with_headers(self, **headers: str) -> UpstreamRequest:
        merged = dict(self.headers)
        merged.update({k.lower(): v for k, v in headers.items()})
        return self.changed(headers=merged)

    def changed(self, *, query: str | None = None, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, host: str | None = None,
                environment: str | None = None) -> UpstreamRequest:
        """A copy with these fields replaced (_replace, without its keyword dictionary)."""
        return UpstreamRequest(
            method=self.method, path=self.path, query=self.query if query is None else query,
            body=self.body if body is None else body, headers=self.headers if headers is None else headers,
            host=self.host if host is None else host,
            environment=self.environment if environment is None else environment)


@dataclass(frozen=True)
class SigningKey:
    """A credential version's material, decoded once: the HMAC key bytes or the loaded private key."""

    api_key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str | None = field(repr=False)
    key_type: KeyType
    hmac_key: bytes = field(default=b"", repr=False)
    private_key: Any = field(default=None, repr=False)
    hmac: HmacKey = field(init=False, repr=False, compare=False)  # hmac_key's, what HMAC signers use
    # Which exchange API key this is, however many credentials hold it: a digest, never the key.
    # Kraken counts nonces per API key, so they are drawn per key_id, not per credential.
    key_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hmac", HmacKey(self.hmac_key))
        object.__setattr__(self, "key_id", hashlib.sha256(self.api_key.encode()).hexdigest()[:32])


class Moment(NamedTuple):
    """When the request is signed, in the exchange's clock, and the nonce if the exchange uses one."""

    now_ms: int
    nonce: int | None = None


_JSON_STARTS = (b"{", b"[", b" ", b"\t", b"\r", b"\n")


class Exchange:
    """An exchange adapter. Subclasses set the data below and implement `sign`."""

    spec: ExchangeSpec
    auth_headers: frozenset[str] = frozenset()  # client auth headers to strip (lower-case)
    auth_params: frozenset[str] = frozenset()  # client auth parameters to strip from query and form body
    always_form: bool = False  # signs and sends any body as a form, whatever its label (Kraken)
    public_prefixes: tuple[str, ...] = ()  # forwarded unsigned
    time_path: str | None = None  # public server-time endpoint
    uses_nonce: bool = False  # needs a strictly increasing nonce per key (Kraken)
    # Counts each endpoint apart per key, and may answer Cooldown("endpoint"): every call on a key then
    # also checks its endpoint's cooldown. Off elsewhere, so that they pay nothing for it.
    endpoint_cooldowns: bool = False
    # Writes that move funds or keys out of a trading key's reach: refused unless both credential and
    # client allow "withdraw". Withdrawals, transfers and gift codes move funds; sub-accounts and
    # brokers' sub-accounts take transfers in and hold keys of their own; creating or changing API
    # keys hands a bot a secret signvault does not mediate, or loosens the key's own limits. Matched
    # by word, in any case and any API version, since the exchanges add versions and spellings.
    withdraw_pattern: re.Pattern[str] = re.compile(
        r"withdraw|transfer|giftcard|sub[-_]?account|sub-?member|sub-api|/sub/|/broker/|api-?key",
        re.IGNORECASE)
    read_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    # Default limits, from the exchange's published ones (a credential's own rate_limit replaces key_rate).
    key_rate: str | None = "10/second"  # requests per credential
    order_rate: str | None = None  # new orders per credential (cancels are not counted)
    # The exchange counts new orders in intervals that start on the clock, reports its count on each
    # order's answer, and may lower it (Binance takes filled orders off): its report sets ours.
    order_count_exact: bool = False
    ip_rate: str | None = None  # weighted requests per egress IP, shared by every key

    @cached_property  # read some eight times a request: after the first, a plain attribute
    def id(self) -> str:
        return self.spec.id

    def is_public(self, request: UpstreamRequest) -> bool:
        return request.path.startswith(self.public_prefixes) if self.public_prefixes else False

    def classify(self, request: UpstreamRequest) -> Access:
        """read, trade or withdraw, from the exchange's documented endpoints; unknown writes are trades."""
        if self.is_public(request):
            return "public"
        if request.method in self.read_methods:
            return "read"
        if self.withdraw_pattern.search(request.path):
            return "withdraw"
        return "trade"

    def ip_rate_for(self, host: str) -> str | None:
        """The weighted rate the egress IP may send to `host`."""
        return self.ip_rate

    def order_count(self, path: str) -> tuple[str, str | None]:
        """Which of a key's order counts a new order at `path` draws on (named where the exchange
        keeps several, one per market), and that count's rate."""
        return "", self.order_rate

    def weight(self, request: UpstreamRequest) -> int:
        """What the request costs against `ip_rate`."""
        return 1

    def order_units(self, request: UpstreamRequest, window_s: float) -> int:
        """How many orders a new order's request adds to the order count kept over `window_s`, as the
        exchange counts them: more than one for a list or a batch, none for a test order."""
        return 1

    def is_cancel(self, request: UpstreamRequest) -> bool:
        """Cancels keep some budget when it is tight: they reduce risk, new orders add it. A cancel
        that places a replacement (Binance cancelReplace, Bitget cancel-replace-order) is an order."""
        path = request.path.lower()
        return request.method == "DELETE" or ("cancel" in path and "replace" not in path)

    def usage(self, headers: Mapping[str, str]) -> list[Usage]:
        """What the exchange reports used, to stay in step with its own count."""
        return []

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        """Whether this response means "stop"; 429 slows one key down, 418 is an IP ban.

        Markers in a body are looked for with `bytes.find`, here and in the exchanges: `marker in
        body` first tries the marker as an integer and formats the TypeError that raises, ~2k
        instructions on CPython 3.11 (callgrind), and every answer is checked."""
        if status == 418:
            return Cooldown("ip", retry_after_s(headers, 120.0), ban=True)
        if status == 429:
            return Cooldown("key", retry_after_s(headers, 5.0))
        return None

    @cached_property
    def _not_forwarded(self) -> frozenset[str]:
        return HOP_BY_HOP | self.auth_headers

    def strip(self, request: UpstreamRequest) -> UpstreamRequest:
        """Remove whatever authentication the client attached; signvault signs afresh."""
        dropped = self._not_forwarded
        connection = request.headers.get("connection")
        if connection and connection.lower() not in _PLAIN_CONNECTION:  # it names headers of this hop
            dropped = dropped | {t.strip().lower() for t in connection.split(",")}
        headers = {k: v for k, v in request.headers.items() if k not in dropped}
        if not "".join(headers.values()).isascii():
            raise RequestRefused("header values must be ASCII")
        query = params.drop(request.query, self.auth_params)
        body = request.body
        if body and self.form_body(request):
            body = params.drop(body.decode("latin-1"), self.auth_params).encode("latin-1")
        return request.changed(headers=headers, query=query, body=body)

    def request_content(self, request: UpstreamRequest) -> bytes:
        """The body as an Idempotency-Key compares it: what the order says, not how this attempt was
        authenticated (stripped already, where the exchange takes auth in headers or form fields)."""
        return request.body

    def form_body(self, request: UpstreamRequest) -> bool:
        """Whether the body goes out as form parameters, where stripping and the duplicate check look."""
        return self.always_form or params.is_form(request.headers)

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        raise NotImplementedError

    # Connection check: a cheap authenticated call, preferably the key-info endpoint, and what the
    # exchange's error codes mean in signvault's terms.
    check_method: str = "GET"
    check_path: str = "/"
    check_body: bytes = b""
    check_errors: Mapping[str, CheckStatus] = {}
    # Codes that mean several things at this exchange: said in the check's detail.
    ambiguous_errors: Mapping[str, str] = {}

    def check_request(self) -> UpstreamRequest:
        headers = {"content-type": "application/json"} if self.check_body.startswith(b"{") else {}
        path, _, query = self.check_path.partition("?")
        return UpstreamRequest(self.check_method, path, query=query, body=self.check_body, headers=headers)

    def error_code(self, status: int, body: Any) -> str | None:
        """The exchange's own error code in a response, or None for success."""
        return None if status < 400 else str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        return None

    def read_check(self, status: int, body: Any) -> CheckResult:
        try:
            code = self.error_code(status, body)
        except UNREADABLE:  # a body of another shape: the status says it all, as for any exchange
            code = Exchange.error_code(self, status, body)
        if code is None and status < 400:
            try:
                permissions = self.key_permissions(body)
            except UNREADABLE:
                permissions = None
            return CheckResult("connected", f"{self.spec.name} accepted the key", permissions)
        mapped = self.check_errors.get(code or "")
        if mapped is None:
            mapped = ("exchange_unavailable" if status >= 500 or status == 429 else
                      "permission_denied" if status == 403 else "invalid_key")
        detail = f"{self.spec.name} answered {status}" + (f" with code {code}" if code else "")
        ambiguity = self.ambiguous_errors.get(code or "")
        if ambiguity is not None:
            detail += f" ({ambiguity})"
        return CheckResult(mapped, detail)

    # Binance and Bybit sign the parameters but not the method or path: a signature from /sign for one
    # endpoint also works on another, so /sign must only go to clients entitled to all the key can do.
    signature_binds_endpoint: bool = True

    @staticmethod
    def require_json_boundary(request: UpstreamRequest) -> None:
        """For prehashes that run path straight into body (OKX, KuCoin, Bitget, Coinbase Exchange):
        a body starting with a path character could carry the path's tail, and move a withdrawal
        past the classifier. A JSON body starts with `{`, `[` or white space, none of which a path has;
        anything else is refused, `%` and `;` included (`/with` + `%64rawals{...}`)."""
        if request.body and request.body[:1] not in _JSON_STARTS:
            raise RequestRefused(f"{request.method} {request.path} takes a JSON body")

    # Bytes that appear in the exchange's "timestamp outside the window" error; a cheap pre-filter so
    # that ordinary responses are never parsed.
    timestamp_error_marker: bytes | None = None

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        """The signed WebSocket login message, for exchanges that authenticate WebSockets so."""
        raise RequestRefused(f"{self.spec.name} WebSockets are not authenticated by a signed login message")

    def time_path_for(self, path: str) -> str | None:
        """The server-time endpoint on the host that serves `path`."""
        return self.time_path

    def server_time_ms(self, body: Any) -> int | None:
        """The exchange time in ms from its time endpoint's JSON, read as the exchange documents it:
        another shape may raise. Callers use `read_server_time`."""
        return None

    def read_server_time(self, body: Any) -> int | None:
        """`server_time_ms`, with an answer of another shape (say `{"serverTime": null}`) read as no time."""
        try:
            return self.server_time_ms(body)
        except UNREADABLE:
            return None

    def refused_timestamp(self, status: int, body: bytes) -> bool:
        """The exchange refused the request for its timestamp, before executing anything."""
        if self.timestamp_error_marker is None or body.find(self.timestamp_error_marker) < 0:
            return False
        try:
            return self.is_timestamp_error(status, json.loads(body))
        except ValueError:
            return False

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        return False
