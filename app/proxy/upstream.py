"""The one HTTP client that talks to exchanges: no environment proxies, no redirects, bounded waits."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from app.errors import ProblemError
from app.exchanges.base import UpstreamRequest

# Response headers that describe our hop, not the exchange's answer.
_DROPPED_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "set-cookie",
    "proxy-authenticate", "trailer", "upgrade", "alt-svc", "server",
})


class UnsendableRequest(ProblemError):
    status, slug, title = 400, "unsendable-request", "The request cannot be sent as given"


class ExchangeUnreachable(ProblemError):
    status, slug, title = 502, "exchange-unreachable", "The exchange could not be reached"


class ExchangeOutcomeUnknown(ProblemError):
    status, slug, title = 502, "exchange-outcome-unknown", "The exchange failed; the order's outcome is unknown"


class ExchangeTimeout(ProblemError):
    status, slug, title = 504, "exchange-timeout", "The exchange did not answer in time"


@dataclass(frozen=True)
class ExchangeResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def connection_listed(value: str) -> frozenset[str]:
    """Headers a Connection header names are hop-by-hop too (RFC 9110 §7.6.1)."""
    return frozenset(token.strip().lower() for token in value.split(",") if token.strip())


def create_client(timeout_s: float, connect_timeout_s: float = 5.0, *, egress_proxy: str | None = None,
                  source_ip: str | None = None) -> httpx.AsyncClient:
    """Every byte to an exchange leaves through this client, so through the one configured egress path:
    a forward proxy on the static-IP host, or sockets bound to one local address."""
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30)
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


async def send(client: httpx.AsyncClient, origin: str, request: UpstreamRequest, exchange: str,
               *, unknown_outcome: bool) -> ExchangeResponse:
    """Send once. Transport failures become 502/504 naming the exchange (and, for writes, the doubt)."""
    doubt = " The order may or may not have been placed: check before retrying." if unknown_outcome else ""
    try:
        response = await client.request(
            request.method, url_for(origin, request), headers=dict(request.headers), content=request.body or None)
    except httpx.InvalidURL:
        raise UnsendableRequest("the URL cannot be sent as given") from None
    except httpx.TimeoutException:
        raise ExchangeTimeout(f"{exchange} did not answer in time.{doubt}") from None
    except httpx.HTTPError as exc:
        raise ExchangeUnreachable(f"{exchange}: {type(exc).__name__}{doubt}") from None
    dropped = _DROPPED_RESPONSE_HEADERS | connection_listed(response.headers.get("connection", ""))
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    return ExchangeResponse(response.status_code, headers, response.content)
