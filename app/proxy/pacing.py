"""Which budgets and cooldowns a request draws on, and what the exchange's answer says about pace.

Budgets: the credential's rate (its own rate_limit or the exchange's default per key), its order
rate for new orders, the client's rate, and the exchange-wide weighted rate of the egress IP. New
orders and reads may use 90% of the exchange's published budgets (the IP rate and the default key
rate); cancels may use all of it, so a bot can still get out of a position when the budget is tight.
Limits an operator sets are applied exactly.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from app import metrics
from app.exchanges.base import Cooldown, Exchange
from app.exchanges.registry import family
from app.limits.budgets import Budget, Rate, parse_rates
from app.limits.limiter import Limiter, cooldown_key
from app.proxy.upstream import ExchangeResponse, ResponseHeaders

if TYPE_CHECKING:
    from app.proxy.service import Prepared

NORMAL_SHARE = 0.9
ENDPOINT_NAME_MAX = 120
SCOPES = {"cred:": "credential", "orders:": "order", "client:": "client", "ip:": "exchange"}


@lru_cache(maxsize=4096)
def rates(text: str | None) -> tuple[Rate, ...]:
    return parse_rates(text) if text else ()


def _kind(prepared: Prepared) -> tuple[bool, tuple[str, str | None] | None]:
    """Whether the request is a cancel and, for a key's new order, the order count it draws on
    (market, rate): what both its budgets and its cooldowns depend on, worked out once."""
    cancel = prepared.adapter.is_cancel(prepared.request)
    if prepared.access != "trade" or cancel or prepared.credential is None:
        return cancel, None
    return cancel, prepared.adapter.order_count(prepared.request.path)


def budgets(prepared: Prepared) -> tuple[Budget, ...]:
    return _budgets_of(prepared, *_kind(prepared))


def _budgets_of(prepared: Prepared, cancel: bool, order: tuple[str, str | None] | None) -> tuple[Budget, ...]:
    adapter, credential, client, request = prepared.adapter, prepared.credential, prepared.client, prepared.request
    market, order_rate = order or ("", None)
    # What the order adds to each of its counts: more than 1 for a list or a batch.
    units = tuple(adapter.order_units(request, r.window_s) for r in rates(order_rate)) if order_rate else ()
    return _budgets(adapter, prepared.host, adapter.weight(request), 1.0 if cancel else NORMAL_SHARE,
                    client.id if client else None, client.rate_limit if client else None,
                    credential.id if credential else None, credential.rate_limit if credential else None,
                    market, order_rate, units)


@lru_cache(maxsize=16384)  # the same few shapes per client and key: built once, not per request
def _budgets(adapter: Exchange, host: str, weight: int, share: float, client_id: str | None,
             client_rate: str | None, credential_id: str | None, credential_rate: str | None,
             market: str, order_rate: str | None, order_units: tuple[int, ...]) -> tuple[Budget, ...]:
    out = [r.budget(f"client:{client_id}") for r in rates(client_rate)] if client_id is not None else []
    out += [r.budget(_ip_scope(adapter, host), weight, share=share) for r in rates(adapter.ip_rate_for(host))]
    if credential_id is not None:
        # An operator's own rate_limit is honoured exactly; the exchange's default keeps the headroom.
        key_share = 1.0 if credential_rate else share
        out += [r.budget(f"cred:{credential_id}", share=key_share) for r in rates(credential_rate or adapter.key_rate)]
        # A request the exchange counts no order for (a test order) draws on no order budget: at a
        # cost of 0 it would still be refused by a count already over the limit.
        out += [r.budget(_orders_scope(credential_id, market), units, share=share, exact=adapter.order_count_exact)
                for r, units in zip(rates(order_rate), order_units, strict=True) if units]
    return tuple(out)


def _egress_at(exchange: str, host: str) -> str:
    """The egress IP's standing at an exchange host, whichever id of the family reaches it: one
    budget and one ban, both named by this."""
    return f"{family(exchange)}@{host}"


def _ip_scope(adapter: Exchange, host: str) -> str:
    return f"ip:{_egress_at(adapter.id, host)}"


def _orders_scope(credential_id: str, market: str) -> str:
    """A key's new orders, per market where the exchange counts them apart (Binance spot, USDⓈ-M)."""
    return f"orders:{credential_id}@{market}" if market else f"orders:{credential_id}"


def _owner(exchange: str, host: str, credential_id: str | None, scope: str, market: str = "") -> tuple[str, str]:
    """Whose cooldown: the egress IP at the exchange host, or one key, or its new orders in a
    market, whichever id of the family sent them (when there is a key)."""
    if scope == "ip" or credential_id is None:
        return _egress_at(exchange, host), "ip"
    if scope == "orders":
        return f"{family(exchange)}:{_orders_scope(credential_id, market)}", scope
    return f"{exchange}:{scope}:{credential_id}", scope


def _endpoint_owner(exchange: str, caller: str, method: str, path: str) -> tuple[str, str]:
    """One caller's calls to one endpoint (a key's, or the egress IP's public ones): its method and
    path, without the query (Gate places, lists and cancels all orders on one path, and counts each
    apart). A long path is named by its digest, so that the cooldown's name fits a notice to the
    other replicas. A path that carries an id (an order's) is an endpoint of its own here, so its
    cooldown stops only calls for that id."""
    if len(path) > ENDPOINT_NAME_MAX:
        path = hashlib.sha256(path.encode()).hexdigest()
    return f"{exchange}:endpoint:{caller}", f"{method}:{path}"


def _cooldown_owner(prepared: Prepared, scope: str) -> tuple[str, str]:
    credential = prepared.credential
    if scope == "endpoint":
        return _endpoint_owner(prepared.adapter.id, _endpoint_caller(prepared), prepared.request.method,
                               prepared.request.path)
    market = prepared.adapter.order_count(prepared.request.path)[0] if scope == "orders" else ""
    return _owner(prepared.adapter.id, prepared.host, credential.id if credential is not None else None, scope,
                  market)


def cooldown_keys(prepared: Prepared) -> tuple[str, ...]:
    return _cooldown_keys_of(prepared, _kind(prepared)[1])


def _cooldown_keys_of(prepared: Prepared, order: tuple[str, str | None] | None) -> tuple[str, ...]:
    adapter, credential = prepared.adapter, prepared.credential
    keys = _cooldown_keys(adapter.id, prepared.host, credential.id if credential is not None else None,
                          order is not None, order[0] if order else "")
    if not adapter.endpoint_cooldowns:
        return keys
    request = prepared.request
    return keys + _endpoint_cooldown_keys(adapter.id, _endpoint_caller(prepared), request.method, request.path)


def _endpoint_caller(prepared: Prepared) -> str:
    """Who the exchange counts an endpoint's calls for: the key, or for a public call the egress IP
    (a public endpoint spent must not stop the IP's private calls, cancels included)."""
    credential = prepared.credential
    return credential.id if credential is not None else _egress_at(prepared.adapter.id, prepared.host)


@lru_cache(maxsize=4096)  # apart from _cooldown_keys: a path that carries an order's id is one entry each
def _endpoint_cooldown_keys(exchange: str, caller: str, method: str, path: str) -> tuple[str, ...]:
    owner = _endpoint_owner(exchange, caller, method, path)
    return cooldown_key(*owner, "ban"), cooldown_key(*owner, "throttle")


@lru_cache(maxsize=16384)
def _cooldown_keys(exchange: str, host: str, credential_id: str | None, new_order: bool,
                   market: str) -> tuple[str, ...]:
    scopes = ("ip",) if credential_id is None else ("ip", "key", "orders") if new_order else ("ip", "key")
    return tuple(cooldown_key(*_owner(exchange, host, credential_id, scope, market), kind)
                 for scope in scopes for kind in ("ban", "throttle"))


class Admission(NamedTuple):
    """A new order counted in exact budgets: in flight on them (its units on each) until `answered`."""

    at: float  # time.monotonic()
    budgets: tuple[Budget, ...]


async def admit(limiter: Limiter, prepared: Prepared) -> Admission | None:
    """Admit the request or raise the refusal. A new order counted in exact budgets is in flight on
    them from now: call `answered` once it is answered or failed."""
    cancel, order = _kind(prepared)
    budgets, cooldowns = _budgets_of(prepared, cancel, order), _cooldown_keys_of(prepared, order)
    trading = prepared.access in ("trade", "withdraw")
    if order is None or not prepared.adapter.order_count_exact:
        await limiter.admit(budgets, cooldowns, exchange=prepared.adapter.id, trading=trading, scopes=SCOPES)
        return None
    # In flight from before its admission, so that a report used meanwhile counts it on top; and
    # the exact counts are at least the orders in flight before it, which the exchange may count in
    # an interval that began after they were admitted.
    admission = Admission(time.monotonic(), tuple(b for b in budgets if b.exact))
    floors = limiter.sent(admission.budgets)
    try:
        await limiter.admit(budgets, cooldowns, exchange=prepared.adapter.id, trading=trading, scopes=SCOPES,
                            floors=floors)
    except BaseException:
        limiter.answered(admission.budgets)
        raise
    return admission


def answered(limiter: Limiter, admission: Admission | None) -> None:
    if admission is not None:
        limiter.answered(admission.budgets)


async def observe(limiter: Limiter, prepared: Prepared, response: ExchangeResponse,
                  admission: Admission | None) -> None:
    """Open a cooldown when the exchange says stop; count what the exchange says is used (an exact
    count as `Limiter.report` says)."""
    adapter = prepared.adapter
    headers = ResponseHeaders(response.headers)
    cooldown: Cooldown | None = adapter.cooldown(response.status, headers, response.body)
    if cooldown is not None:
        kind = "ban" if cooldown.ban else "throttle"
        await limiter.cool_down(cooldown_key(*_cooldown_owner(prepared, cooldown.scope), kind), cooldown.seconds)
        metrics.COOLDOWNS.labels(adapter.id, kind, cooldown.scope).inc()
    for usage in adapter.usage(headers):
        if usage.scope == "ip":
            metrics.WEIGHT_USED.labels(adapter.id).set(usage.used)
            scope, text, exact = _ip_scope(adapter, prepared.host), adapter.ip_rate_for(prepared.host), False
        elif prepared.credential is not None:
            market, text = adapter.order_count(prepared.request.path)
            scope, exact = _orders_scope(prepared.credential.id, market), adapter.order_count_exact
        else:
            continue
        for rate in rates(text):
            if rate.window_s == usage.window_s:
                if exact:
                    await limiter.report(rate.budget(scope, exact=True), usage.used,
                                         admission.at if admission is not None else None)
                else:
                    await limiter.reconcile(rate.budget(scope), usage.used)
