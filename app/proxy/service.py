"""The signing pipeline: which credential, may this client do this, sign with the exchange's clock, send.

Order matters and is the same for `/proxy` and `/sign`: everything that can refuse a request
(unknown exchange, unsafe path, credential not granted, permission missing) happens before any
key is decrypted or any byte leaves for the exchange.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from contextvars import ContextVar
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, NamedTuple

import httpx

from app import metrics
from app.clients.auth import SigningClients
from app.clients.grants import KEY_RIGHTS, GrantedCredential, SigningClient
from app.credentials.models import Credential
from app.errors import Forbidden, InvalidInput, NotFound, ProblemError
from app.exchanges import params
from app.exchanges.base import (
    LIVE,
    Access,
    CheckResult,
    Exchange,
    Moment,
    RequestRefused,
    SigningKey,
    UpstreamRequest,
)
from app.exchanges.registry import family, get_adapter
from app.limits.limiter import Limiter
from app.observability.middleware import upstream_ms
from app.proxy import pacing
from app.proxy.caller import Caller, ClientGone
from app.proxy.clock import ExchangeClock, local_ms
from app.proxy.keys import SigningKeyCache
from app.proxy.nonces import NonceSource
from app.proxy.upstream import ExchangeOutcomeUnknown, ExchangeResponse, ExchangeTimeout, ExchangeUnreachable, Upstream
from app.settings import Settings

# Whether this request's call to the exchange has begun: set as the upstream send starts, so that a
# failure or a cancellation from then on counts as "it may have reached the exchange", and anything
# earlier as "not sent" (the Idempotency-Key's fate, app/proxy/gateway.py).
may_have_sent: ContextVar[bool] = ContextVar("signvault_may_have_sent", default=False)
READ_RETRIES = 2
BACKOFF_S = 0.2
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# Gate's WebSocket trading channels (spot.order_place, futures.order_batch_place, ...); order_status
# and order_list only read.
WS_ORDER_CHANNEL = re.compile(r"\.order_(?!status|list)", re.IGNORECASE)


class UnknownExchange(NotFound):
    slug, title = "unknown-exchange", "No such exchange"


class CredentialNotGranted(Forbidden):
    slug, title = "credential-not-granted", "The credential is not granted to this client"


class PermissionDenied(Forbidden):
    slug, title = "permission-denied", "The client or credential lacks the permission"


class BadExchangeRequest(ProblemError):
    status, slug, title = 400, "bad-exchange-request", "The request cannot be signed for this exchange"


@lru_cache(maxsize=256)
def host_of(origin: str) -> str:
    """host[:port] of an exchange origin; origins are few and fixed, and parsing one costs more than signing."""
    return httpx.URL(origin).netloc.decode()


def adapter_for(exchange_id: str) -> Exchange:
    adapter = get_adapter(exchange_id)
    if adapter is None:
        raise UnknownExchange(f"signvault does not know the exchange '{exchange_id}'")
    return adapter


def choose_credential(client: SigningClient, adapter: Exchange, ref: str | None) -> GrantedCredential:
    """The named credential, or the client's only one for this exchange. Same answer for
    "does not exist" and "not yours", so a client cannot probe other clients' labels."""
    ours = family(adapter.id)
    if ref:
        # A label is unique per exchange, not overall: this exchange's family's wins, this exchange's first.
        credential = min(_named(client, ref), key=lambda c: (family(c.exchange) != ours, c.exchange != adapter.id))
        if family(credential.exchange) != ours:
            raise InvalidInput.field("X-Signvault-Credential",
                                     f"the credential is for {credential.exchange}, not {adapter.id}")
        return credential
    mine = [c for c in client.credentials if family(c.exchange) == ours]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise CredentialNotGranted(f"this client holds no {adapter.id} credential")
    raise InvalidInput.field("X-Signvault-Credential",
                             f"this client holds {len(mine)} {adapter.id} credentials; name one")


def granted(client: SigningClient, ref: str) -> GrantedCredential:
    """A credential the client holds, named by id, label or exchange:label (for /sign and logins).
    A label used on several exchanges names none of them: the caller must say which."""
    named = _named(client, ref)
    if len(named) > 1:
        raise InvalidInput.field("credential", f"'{ref}' names {len(named)} of this client's credentials "
                                               f"({', '.join(sorted(c.exchange for c in named))}); name one as "
                                               "exchange:label or by id")
    return named[0]


def _named(client: SigningClient, ref: str) -> list[GrantedCredential]:
    """The client's credentials that `ref` names, by id, label or exchange:label; at least one."""
    exchange, sep, label = ref.partition(":")
    named = [c for c in client.credentials
             if ref in (c.id, c.label) or (sep and (exchange, label) == (c.exchange, c.label))]
    if not named:
        raise CredentialNotGranted(f"no credential '{ref}' is granted to this client")
    return named


def authorise(client: SigningClient, credential: GrantedCredential, access: Access) -> None:
    if not credential.enabled:
        raise PermissionDenied(f"credential '{credential.label}' is disabled")
    needed = "read" if access == "public" else access
    if needed not in client.permissions:
        raise PermissionDenied(f"this client may not {needed} (it has: {', '.join(client.permissions)})")
    if needed not in credential.permissions:
        raise PermissionDenied(f"credential '{credential.label}' is not allowed to {needed}")


def _may_do_all_the_key_can(client: SigningClient, credential: GrantedCredential, adapter: Exchange) -> None:
    """For /sign where the signature does not cover the endpoint (Binance, Bybit): the caller sends
    it, and it is as good on a withdrawal as on the read it was asked for. So the client and the
    credential must both allow all the key can do at the exchange, and all signvault lets it do."""
    for right in KEY_RIGHTS:
        if right not in credential.key_rights and right not in credential.permissions:
            continue
        if right not in client.permissions or right not in credential.permissions:
            raise PermissionDenied(
                f"{adapter.spec.name} signatures do not cover the endpoint, so /sign needs every right the key "
                f"has (at the exchange, as its last connection check said; all of them if unchecked) on both "
                f"client and credential, and this one can {right}; use /proxy")


class Prepared(NamedTuple):  # a NamedTuple for the reason UpstreamRequest is one
    adapter: Exchange
    request: UpstreamRequest  # stripped, not yet signed
    origin: str
    access: Access
    client: SigningClient | None  # None for an admin's connection check
    credential: GrantedCredential | None  # None for public endpoints
    key: SigningKey | None

    @property
    def host(self) -> str:
        return host_of(self.origin)


def nonce_scope(prepared: Prepared) -> str:
    """Nonces rise, and calls go out in turn, per exchange API key: two credentials holding the same
    Kraken key (two teams, say) draw from one sequence, as Kraken checks them."""
    if prepared.key is None:
        raise RuntimeError("only private requests are signed")
    return f"{prepared.adapter.id}:{prepared.key.key_id}"


class SigningService:
    """Holds what signing needs across requests: clients and keys (cached), clocks, nonces, the
    upstream client."""

    def __init__(self, settings: Settings, clients: SigningClients, keys: SigningKeyCache, nonces: NonceSource,
                 upstream: Upstream, limiter: Limiter) -> None:
        self.settings = settings
        self.clients = clients
        self.keys = keys
        self.nonces = nonces
        self.upstream = upstream
        self.limiter = limiter
        self.clock = ExchangeClock()

    def origin(self, adapter: Exchange, environment: str, path: str) -> str:
        override = self.settings.exchange_urls.get(adapter.id)
        return override if override else adapter.spec.origin(environment, path)

    def _aim(self, adapter: Exchange, request: UpstreamRequest, environment: str) -> tuple[UpstreamRequest, str]:
        """The request bound to its environment and the origin it goes to (Coinbase signs the host)."""
        origin = self.origin(adapter, environment, request.path)
        return request.changed(environment=environment, host=host_of(origin)), origin

    async def prepare(self, client: SigningClient, adapter: Exchange, request: UpstreamRequest,
                      credential_ref: str | None, *, always_sign: bool = False) -> Prepared:
        duplicate = params.duplicated(request.query, request.body.decode("latin-1")
                                      if adapter.form_body(request) else "")
        if duplicate is not None:
            raise BadExchangeRequest(f"the parameter '{duplicate}' appears more than once")
        try:
            request = adapter.strip(request)
        except RequestRefused as exc:
            raise BadExchangeRequest(str(exc)) from None
        access = adapter.classify(request)
        if access == "public" and not always_sign:
            environment = LIVE
            if credential_ref:
                environment = choose_credential(client, adapter, credential_ref).environment
            request, origin = self._aim(adapter, request, environment)
            return Prepared(adapter, request, origin, access, client, None, None)
        credential = choose_credential(client, adapter, credential_ref)
        authorise(client, credential, access)
        if always_sign and not adapter.signature_binds_endpoint:
            _may_do_all_the_key_can(client, credential, adapter)
        key = await self.keys.get(credential)
        request, origin = self._aim(adapter, request, credential.environment)
        return Prepared(adapter, request, origin, access, client, credential, key)

    async def check(self, credential: Credential, key: SigningKey) -> CheckResult:
        """The connection check: a cheap authenticated call through the egress path, read in the
        exchange's own terms. It is paced like any call, and never raises for the exchange's answer."""
        adapter = adapter_for(credential.exchange)
        request, origin = self._aim(adapter, adapter.check_request(), credential.environment)
        prepared = Prepared(adapter, request, origin, "read", None, GrantedCredential.of(credential), key)
        try:
            response = await self.forward(prepared)
        except ProblemError as exc:
            result = CheckResult("exchange_unavailable", f"{exc.title}: {exc.detail or ''}".rstrip(": "))
        else:
            result = adapter.read_check(response.status, _json(response.body))
        metrics.CREDENTIAL_CHECKS.labels(adapter.id, result.status).inc()
        return result

    async def ws_login(self, client: SigningClient, credential: GrantedCredential,
                       options: dict[str, str]) -> dict[str, object]:
        """A signed WebSocket login. A logged-in socket can place orders, so it needs `trade`;
        Gate signs one channel at a time, so there only order channels need it."""
        adapter = adapter_for(credential.exchange)
        trading = adapter.id != "gate" or bool(WS_ORDER_CHANNEL.search(options.get("channel") or ""))
        authorise(client, credential, "trade" if trading else "read")
        key = await self.keys.get(credential)
        origin = self.origin(adapter, credential.environment, adapter.time_path_for("/") or "/")
        prepared = Prepared(adapter, UpstreamRequest("GET", adapter.time_path_for("/") or "/"), origin, "read",
                            client, credential, key)
        await self._sync_clock(prepared, force=False)
        moment = Moment(self.clock.now_ms(self._clock_key(prepared)))
        try:
            return adapter.ws_login(key, moment, options)
        except RequestRefused as exc:
            raise BadExchangeRequest(str(exc)) from None

    async def sign(self, prepared: Prepared, *, fresh_clock: bool = False) -> UpstreamRequest:
        """Sign with the exchange's clock (syncing it first when stale) and, if needed, a nonce."""
        if prepared.credential is None or prepared.key is None:
            raise RuntimeError("only private requests are signed")
        await self._sync_clock(prepared, force=fresh_clock)
        nonce = await self.nonces.next(nonce_scope(prepared)) if prepared.adapter.uses_nonce else None
        moment = Moment(self.clock.now_ms(self._clock_key(prepared)), nonce)
        try:
            return prepared.adapter.sign(prepared.request, prepared.key, moment)
        except RequestRefused as exc:
            raise BadExchangeRequest(str(exc)) from None
        except UnicodeEncodeError:  # e.g. a lone surrogate ("\ud800") in a JSON string an adapter re-encodes
            raise BadExchangeRequest("the request holds text that cannot be encoded as UTF-8") from None

    async def forward(self, prepared: Prepared, caller: Caller | None = None) -> ExchangeResponse:
        """Send within the limits. Reads that fail in transit or with 502-504 are retried (jittered
        back-off, a small budget); orders never are: their outcome is unknown, and the client is told."""
        retries = READ_RETRIES if prepared.access in ("read", "public") else 0
        for attempt in range(retries + 1):
            try:
                response = await self._attempt(prepared, caller)
            except (ExchangeUnreachable, ExchangeTimeout):
                if attempt == retries:
                    raise
            else:
                if response.status not in RETRYABLE_STATUSES or attempt == retries:
                    break
            metrics.RETRIES.labels(prepared.adapter.id).inc()
            # bandit B311: jitter
            await asyncio.sleep(random.uniform(0, BACKOFF_S * 2**attempt))  # noqa: S311  # nosec B311
        if prepared.access in ("trade", "withdraw") and response.status >= 500:
            raise ExchangeOutcomeUnknown(
                f"{prepared.adapter.spec.name} answered {response.status}: the order may or may not have been "
                "placed. It was not retried; check its status before sending it again.")
        return response

    async def _attempt(self, prepared: Prepared, caller: Caller | None) -> ExchangeResponse:
        """One admitted send; if the exchange refuses only the timestamp (nothing executed), resync
        and resend once."""
        admission = await pacing.admit(self.limiter, prepared)
        try:  # a Binance order is in flight until answered (or failed): see pacing.admit
            if prepared.credential is None:
                response = await self._send(prepared, prepared.request)
            else:
                response = await self._send_signed(prepared, caller, fresh_clock=False)
                if prepared.adapter.refused_timestamp(response.status, response.body):
                    pacing.answered(self.limiter, admission)
                    admission = None  # answered: not again if the next admission is refused
                    admission = await pacing.admit(self.limiter, prepared)
                    response = await self._send_signed(prepared, caller, fresh_clock=True)
        finally:
            pacing.answered(self.limiter, admission)
        await pacing.observe(self.limiter, prepared, response, admission)
        return response

    async def _send_signed(self, prepared: Prepared, caller: Caller | None, *, fresh_clock: bool) -> ExchangeResponse:
        if prepared.credential is None:
            raise RuntimeError("only private requests are signed")
        if not prepared.adapter.uses_nonce:
            return await self._send(prepared, await self.sign(prepared, fresh_clock=fresh_clock))
        # Nonce order on the wire: sign and send one at a time per API key.
        if caller is not None:
            caller.watch()
        while True:
            scope = nonce_scope(prepared)
            async with self.nonces.in_order(scope):
                if caller is not None and caller.gone:
                    raise ClientGone("the bot hung up while its call waited for its turn; it was not sent")
                # Each call ahead took a round trip, so the client's grant is read again after the wait:
                # a key disabled or deleted, or a client revoked, meanwhile sends nothing more.
                prepared = await self._still_granted(prepared)
                if nonce_scope(prepared) == scope:  # else the key was rotated meanwhile: queue on the new one
                    return await self._send(prepared, await self.sign(prepared, fresh_clock=fresh_clock))

    async def _still_granted(self, prepared: Prepared) -> Prepared:
        """`prepared` as if it arrived now: its client and grant as the client cache has them (a
        lookup, unless a change cleared it), and the key of the credential's current version."""
        was = prepared.credential
        if prepared.client is None or was is None:  # an admin's connection check
            return prepared
        client = await self.clients.again(prepared.client)
        if client is prepared.client:
            return prepared
        credential = next((c for c in client.credentials if c.id == was.id), None)
        if credential is None:
            raise CredentialNotGranted(f"credential '{was.label}' is no longer granted to this client")
        authorise(client, credential, prepared.access)
        key = prepared.key if credential.active_version == was.active_version else await self.keys.get(credential)
        return prepared._replace(client=client, credential=credential, key=key)

    async def _send(self, prepared: Prepared, request: UpstreamRequest) -> ExchangeResponse:
        before = local_ms()
        started = time.perf_counter()  # the wait itself, finer than the clock's whole milliseconds
        may_have_sent.set(True)
        response = await self.upstream.send(prepared.origin, request, prepared.adapter.spec.name,
                                            unknown_outcome=prepared.access in ("trade", "withdraw"))
        waited_s = time.perf_counter() - started
        answered, latency = _upstream_series(prepared.adapter.id, response.status // 100)
        answered.inc()
        latency.observe(waited_s)
        upstream_ms.set(upstream_ms.get() + waited_s * 1000)
        if prepared.adapter.time_path_for(prepared.request.path) is None:
            # No time endpoint (Crypto.com): the Date header is the exchange's clock we can see.
            dates = [v for k, v in response.headers if k == b"date"]
            server_ms = _date_ms(dates[0].decode("latin-1") if dates else None)
            if server_ms is not None:
                self.clock.learn(self._clock_key(prepared), server_ms, before, local_ms())
        return response

    def _clock_key(self, prepared: Prepared) -> str:
        return f"{prepared.adapter.id}@{prepared.origin}{prepared.adapter.time_path_for(prepared.request.path)}"

    async def _sync_clock(self, prepared: Prepared, *, force: bool) -> None:
        adapter, key = prepared.adapter, self._clock_key(prepared)
        time_path = adapter.time_path_for(prepared.request.path)
        if time_path is None or not (force or self.clock.is_stale(key)):
            return

        async def probe() -> tuple[int, int, int] | None:
            time_request = UpstreamRequest("GET", time_path)
            before = local_ms()
            try:
                # Admitted like any call: during a ban it would leave from the banned IP (every 5 s
                # for a ws-login, whose sync is not behind a proxied call's admission).
                await pacing.admit(self.limiter, Prepared(adapter, time_request, prepared.origin, "public",
                                                          None, None, None))
                answer = await self.upstream.send(prepared.origin, time_request, adapter.spec.name,
                                                  unknown_outcome=False)
                after = local_ms()
                server = adapter.read_server_time(_json(answer.body)) if answer.status == 200 else None
            except ProblemError:
                return None
            return (server, before, after) if server is not None else None

        await self.clock.sync(key, probe, force=force)


@lru_cache(maxsize=1024)
def _upstream_series(exchange_id: str, status_class: int) -> tuple[Any, Any]:
    """The upstream answer counter and latency histogram for these labels, looked up once."""
    return (metrics.UPSTREAM_RESPONSES.labels(exchange_id, f"{status_class}xx"),
            metrics.UPSTREAM_LATENCY.labels(exchange_id))


def _date_ms(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(parsedate_to_datetime(value).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
