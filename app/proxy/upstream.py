"""The HTTP clients that talk to exchanges: no environment proxies, no redirects, bounded waits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import NamedTuple, Protocol

import httpx

from app.errors import ProblemError
from app.exchanges.base import UpstreamRequest
from app.proxy.http1 import ConnectFailed, Http1Client, HttpError, InvalidRequest

# Response headers that describe our hop, not the exchange's answer; and the exchange's policies for
# browsers, which would bind signvault's own host: its HSTS (includeSubDomains: every name under
# signvault's) and its CORS grants (Access-Control-Allow-Origin: * to any web page).
_DROPPED_RESPONSE_HEADERS = frozenset({
    b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"set-cookie",
    b"proxy-authenticate", b"trailer", b"upgrade", b"alt-svc", b"server",
    b"strict-transport-security", b"access-control-allow-origin", b"access-control-allow-credentials",
    b"access-control-allow-methods", b"access-control-allow-headers", b"access-control-expose-headers",
    b"access-control-max-age",
})
_DROPPED_DECODED = _DROPPED_RESPONSE_HEADERS | {b"content-encoding"}


class UnsendableRequest(ProblemError):
    status, slug, title = 400, "unsendable-request", "The request cannot be sent as given"


class ExchangeUnreachable(ProblemError):
    status, slug, title = 502, "exchange-unreachable", "The exchange could not be reached"


class ExchangeNotSent(ExchangeUnreachable):
    """No byte of the request went out (no connection): a retry cannot repeat it, an order included."""


class ExchangeOutcomeUnknown(ProblemError):
    status, slug, title = 502, "exchange-outcome-unknown", "The exchange failed; the order's outcome is unknown"


class ExchangeTimeout(ProblemError):
    status, slug, title = 504, "exchange-timeout", "The exchange did not answer in time"


class ExchangeResponse(NamedTuple):
    status: int
    headers: list[tuple[bytes, bytes]]  # as received, names lowercased, our hop's removed
    body: bytes


class ResponseHeaders(Mapping[str, str]):
    """An answer's headers as the exchange adapters read them, by lowercase name: each value is
    decoded when it is read, since they read two or three of the twenty or so an exchange sends.
    A repeated header reads as its last value."""

    __slots__ = ("_raw",)

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self._raw = dict(headers)

    def __getitem__(self, name: str) -> str:
        return self._raw[name.encode("latin-1")].decode("latin-1")

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = self._raw.get(name.encode("latin-1"))
        return default if value is None else value.decode("latin-1")

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def connection_listed(value: bytes) -> frozenset[bytes]:
    """Headers a Connection header names are hop-by-hop too (RFC 9110 §7.6.1)."""
    return frozenset(token.strip().lower() for token in value.split(b",") if token.strip())


def create_client(timeout_s: float, connect_timeout_s: float = 5.0, *, egress_proxy: str | None = None,
                  source_ip: str | None = None) -> httpx.AsyncClient:
    """An httpx client on the one configured egress path: a forward proxy on the static-IP host, or
    sockets bound to one local address. For the egress check, and for exchange calls when chosen."""
    # Keep-alive for every connection it may open: a smaller pool closes a burst's surplus, and the next
    # burst opens (and handshakes) new ones (see Http1Client).
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512, keepalive_expiry=30)
    transport = httpx.AsyncHTTPTransport(limits=limits, proxy=egress_proxy, local_address=source_ip, retries=0)
    return httpx.AsyncClient(
        transport=transport,
        # trust_env=False: HTTP(S)_PROXY in the environment must not reroute traffic around the egress.
        trust_env=False,
        # A redirect could carry signed headers to another host; the client sees the 3xx instead.
        follow_redirects=False,
        timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
    )


def url_for(origin: str, request: UpstreamRequest) -> httpx.URL:
    # raw_path keeps the exact bytes that were signed; httpx must not re-encode them.
    base = httpx.URL(origin)
    prefix = base.raw_path.rstrip(b"/")
    return base.copy_with(raw_path=prefix + request.target.encode("ascii"))


def target_url(origin: str, request: UpstreamRequest) -> str:
    """The URL as text, the signed path and query appended unchanged (no parsing: origins are ours)."""
    return origin.rstrip("/") + request.target


def _not_sent(exchange: str, reason: str) -> ExchangeNotSent:
    """No byte went out: the caller may retry at once, an order included."""
    return ExchangeNotSent(f"{exchange}: {reason} (the request was not sent)")


def _doubt(unknown_outcome: bool) -> str:
    return " The order may or may not have been placed: check before retrying." if unknown_outcome else ""


def _answer(status: int, items: list[tuple[bytes, bytes]], body: bytes, decoded: bool = False) -> ExchangeResponse:
    """The exchange's answer without our hop's headers (`items`' names lowercased). `decoded`: the
    client already undid the content coding, so that header would misdescribe the body."""
    dropped = _DROPPED_DECODED if decoded else _DROPPED_RESPONSE_HEADERS
    connection = [v for k, v in items if k == b"connection"]
    if connection:
        dropped = dropped | connection_listed(b",".join(connection))
    return ExchangeResponse(status, [item for item in items if item[0] not in dropped], body)


class Upstream(Protocol):
    """Sends one request to an exchange, exactly as signed; transport failures become 502/504."""

    async def send(self, origin: str, request: UpstreamRequest, exchange: str, *,
                   unknown_outcome: bool) -> ExchangeResponse: ...

    async def aclose(self) -> None: ...


class HttpxUpstream:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, origin: str, request: UpstreamRequest, exchange: str, *,
                   unknown_outcome: bool) -> ExchangeResponse:
        try:
            response = await self.client.request(request.method, url_for(origin, request),
                                                 headers=dict(request.headers), content=request.body or None)
        except httpx.InvalidURL:
            raise UnsendableRequest("the URL cannot be sent as given") from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # before any byte went out
            raise _not_sent(exchange, type(exc).__name__) from None
        except httpx.TimeoutException:
            raise ExchangeTimeout(f"{exchange} did not answer in time.{_doubt(unknown_outcome)}") from None
        except httpx.HTTPError as exc:
            raise ExchangeUnreachable(f"{exchange}: {type(exc).__name__}{_doubt(unknown_outcome)}") from None
        # httpx decodes every content coding it knows; .content is the decoded body.
        return _answer(response.status_code, [(k.lower(), v) for k, v in response.headers.raw], response.content,
                       decoded=True)

    async def aclose(self) -> None:
        await self.client.aclose()


class Http1Upstream:
    """The hot path's client (app/proxy/http1.py). A connection that failed says nothing was sent;
    anything later may have reached the exchange, and an order's caller is told so."""

    def __init__(self, client: Http1Client) -> None:
        self.client = client

    async def send(self, origin: str, request: UpstreamRequest, exchange: str, *,
                   unknown_outcome: bool) -> ExchangeResponse:
        try:
            response = await self.client.request(request.method, origin, request.target, request.headers,
                                                 request.body)
        except InvalidRequest:
            raise UnsendableRequest("the URL cannot be sent as given") from None
        except TimeoutError:
            raise ExchangeTimeout(f"{exchange} did not answer in time.{_doubt(unknown_outcome)}") from None
        except ConnectFailed as exc:
            raise _not_sent(exchange, str(exc)) from None
        except HttpError as exc:
            raise ExchangeUnreachable(f"{exchange}: {type(exc).__name__}{_doubt(unknown_outcome)}") from None
        return _answer(response.status, response.headers, response.body)

    async def aclose(self) -> None:
        await self.client.aclose()
