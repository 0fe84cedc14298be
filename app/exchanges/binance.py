"""Binance spot (`/api`, `/sapi`) and USDⓈ-M futures (`/fapi`): one scheme, routed by path prefix.

Signature: over query string + form body concatenated with no separator, appended as the last
parameter; HMAC-SHA256 hex, or Ed25519 / RSA base64 percent-encoded.
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/endpoint-security-type
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from app.exchanges import params
from app.exchanges.base import (
    Access,
    Cooldown,
    Exchange,
    ExchangeSpec,
    KeyPermissions,
    KeyType,
    Moment,
    RequestRefused,
    SigningKey,
    UpstreamRequest,
    Usage,
    retry_after_s,
)
from app.exchanges.crypto import b64, sign_asymmetric

SPOT_HOSTS = {
    "live": "https://api.binance.com",
    "testnet": "https://testnet.binance.vision",
    "demo": "https://demo-api.binance.com",
}
USDM_HOSTS = {
    "live": "https://fapi.binance.com",
    "testnet": "https://testnet.binancefuture.com",
    "demo": "https://demo-fapi.binance.com",
}
# One ccxt client spans several hosts; the path prefix says which (so one base URL serves it).
HOSTS_BY_PREFIX = {"/api": SPOT_HOSTS, "/sapi": SPOT_HOSTS, "/fapi": USDM_HOSTS,
                   "/dapi": {"live": "https://dapi.binance.com", "testnet": "https://testnet.binancefuture.com"},
                   "/papi": {"live": "https://papi.binance.com"}}
# Request weight per egress IP a minute: the spot host's, and the futures hosts'.
SPOT_IP_RATE, FUTURES_IP_RATE = "6000/minute", "2400/minute"
FUTURES_HOSTS = frozenset(url.removeprefix("https://") for prefix in ("/fapi", "/dapi")
                          for url in HOSTS_BY_PREFIX[prefix].values())
# New orders per account, counted apart per market (spot's and USDⓈ-M's exchangeInfo ORDERS), by
# path whichever id, host or base URL sends them: ccxt's `binance` trades futures through /fapi.
# COIN-M and portfolio margin get no budget of ours; their 429s still stop that key's new orders.
SPOT_ORDER_RATE, USDM_ORDER_RATE = "100/10second;200000/day", "300/10second;1200/minute"
ORDER_COUNTS = (("/api/", "spot", SPOT_ORDER_RATE), ("/sapi/", "spot", SPOT_ORDER_RATE),
                ("/fapi/", "usdm", USDM_ORDER_RATE), ("/dapi/", "coinm", None), ("/papi/", "pm", None))
# HMAC is "deprecated" in Binance's key-type FAQ; Ed25519 is what they recommend.
KEY_TYPES: tuple[KeyType, ...] = ("hmac", "ed25519", "rsa")

# MARKET_DATA endpoints need no key; userDataStream needs the key header but no signature.
PUBLIC = tuple(f"/{api}/{v}/{name}" for api, v in (("api", "v3"), ("fapi", "v1"), ("fapi", "v2"), ("dapi", "v1"))
               for name in ("ping", "time", "exchangeInfo", "depth", "trades", "historicalTrades", "aggTrades",
                            "klines", "uiKlines", "continuousKlines", "indexPriceKlines", "markPriceKlines",
                            "avgPrice", "ticker", "premiumIndex", "fundingRate", "fundingInfo", "openInterest"))
TIME_PATHS = (("/fapi/", "/fapi/v1/time"), ("/dapi/", "/dapi/v1/time"), ("/papi/", "/papi/v1/time"))
# apiRestrictions flags (GET /sapi/v1/account/apiRestrictions) that move funds, and those that only read.
_MOVES_FUNDS = frozenset({"enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer"})
_READS_ONLY = frozenset({"enableReading", "enableFixReadOnly"})
_TRADES = frozenset({"enableSpotAndMarginTrading", "enableFutures", "enableMargin", "enableVanillaOptions",
                     "enablePortfolioMarginTrading", "enableFixApiTrade"})
KEY_ONLY = ("/api/v3/userDataStream", "/sapi/v1/userDataStream", "/fapi/v1/listenKey", "/dapi/v1/listenKey",
            "/papi/v1/listenKey")
KEY_ONLY_TREES = tuple(path + "/" for path in KEY_ONLY)  # e.g. /sapi/v1/userDataStream/isolated


def is_listen_key(path: str) -> bool:
    """A listen key's endpoint (the account's own event stream): the key header, no signature."""
    return path in KEY_ONLY or path.startswith(KEY_ONLY_TREES)


# Request weight of the endpoints bots call most (anything else counts 1; the X-MBX-USED-WEIGHT-1M
# header then corrects the count). https://developers.binance.com/docs/binance-spot-api-docs/rest-api
WEIGHTS = {
    ("GET", "/api/v3/account"): 20, ("GET", "/api/v3/allOrders"): 20, ("GET", "/api/v3/myTrades"): 20,
    ("GET", "/api/v3/order"): 4, ("GET", "/api/v3/openOrders"): 6, ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/depth"): 5, ("GET", "/api/v3/ticker/24hr"): 2, ("GET", "/api/v3/ticker/price"): 2,
    ("GET", "/api/v3/klines"): 2, ("DELETE", "/api/v3/openOrders"): 1,
    ("GET", "/fapi/v2/account"): 5, ("GET", "/fapi/v2/balance"): 5, ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v1/openOrders"): 1, ("GET", "/fapi/v1/allOrders"): 5, ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/depth"): 5, ("GET", "/fapi/v1/exchangeInfo"): 1, ("POST", "/fapi/v1/batchOrders"): 5,
    ("PUT", "/fapi/v1/batchOrders"): 5,
}
# Requests that do not add one order to the order count, and what each adds (by its interval in
# seconds where the intervals differ): an OCO, OTO or OPO list 2, an OTOCO or OPOCO 3 (the
# endpoints' "Unfilled Order Count"); a USDⓈ-M batch of up to five orders, placed or modified, 5 to
# the 10 s count and 1 to the minute's; a test order or an amendment that keeps priority nothing.
# Counted as 1, signvault's in-flight orders fell short of Binance's count by the rest.
_BATCH = {10.0: 5, 60.0: 1}
ORDER_UNITS: dict[tuple[str, str], int | dict[float, int]] = {
    ("POST", "/api/v3/order/oco"): 2, ("POST", "/api/v3/orderList/oco"): 2, ("POST", "/api/v3/orderList/oto"): 2,
    ("POST", "/api/v3/orderList/opo"): 2, ("POST", "/api/v3/orderList/otoco"): 3,
    ("POST", "/api/v3/orderList/opoco"): 3,
    ("POST", "/sapi/v1/margin/order/oco"): 2, ("POST", "/sapi/v1/margin/order/oto"): 2,
    ("POST", "/sapi/v1/margin/order/otoco"): 3,
    ("POST", "/fapi/v1/batchOrders"): _BATCH, ("PUT", "/fapi/v1/batchOrders"): _BATCH,
    ("POST", "/api/v3/order/test"): 0, ("POST", "/api/v3/sor/order/test"): 0,
    ("PUT", "/api/v3/order/amend/keepPriority"): 0,
}
BANNED_UNTIL = re.compile(rb"banned until (\d{13})")
# -1015 "Too many new orders; current limit is 50 orders per 10 SECOND.": the account's order count,
# not the IP's weight. Its windows start on the interval (a day at 00:00 UTC), as the weight's do.
TOO_MANY_ORDERS = re.compile(rb'"code":\s*-1015\b(?:.*?per (\d+) (SECOND|MINUTE|HOUR|DAY))?')
INTERVAL_S = {b"SECOND": 1, b"MINUTE": 60, b"HOUR": 3600, b"DAY": 86400}


class Binance(Exchange):
    auth_headers = frozenset({"x-mbx-apikey"})
    auth_params = frozenset({"signature", "timestamp"})
    public_prefixes = PUBLIC

    key_rate = None  # Binance limits by IP weight and by orders per account, not by requests per key
    # Its order count is of unfilled orders: one that fills is taken off every interval's count
    # (developers.binance.com/docs/binance-spot-api-docs/faqs/order_count_decrement), and each
    # order's answer carries the count in X-MBX-ORDER-COUNT-10S / -1D (USDⓈ-M: -10S / -1M).
    order_count_exact = True
    signature_binds_endpoint = False

    def __init__(self, spec: ExchangeSpec, time_path: str, market: str, order_rate: str) -> None:
        self.spec = spec
        self.time_path = time_path
        self.market = market
        self.order_rate = order_rate

    def classify(self, request: UpstreamRequest) -> Access:
        path = request.path
        if is_listen_key(path):
            return "read"
        return super().classify(request)

    def ip_rate_for(self, host: str) -> str | None:
        # By host, not by exchange id: binance reaches fapi.binance.com for /fapi paths as binanceusdm does.
        return FUTURES_IP_RATE if host in FUTURES_HOSTS else SPOT_IP_RATE

    def order_count(self, path: str) -> tuple[str, str | None]:
        for prefix, market, rate in ORDER_COUNTS:
            if path.startswith(prefix):
                return market, rate
        return self.market, self.order_rate

    def weight(self, request: UpstreamRequest) -> int:
        return WEIGHTS.get((request.method, request.path), 1)

    def order_units(self, request: UpstreamRequest, window_s: float) -> int:
        units = ORDER_UNITS.get((request.method, request.path), 1)
        return units if isinstance(units, int) else units.get(window_s, 1)

    def usage(self, headers: Mapping[str, str]) -> list[Usage]:
        # Weight is counted per IP per minute; orders per account (so per credential here).
        reported = []
        for name, scope, window in (("x-mbx-used-weight-1m", "ip", 60.0), ("x-mbx-order-count-10s", "orders", 10.0),
                                    ("x-mbx-order-count-1m", "orders", 60.0),
                                    ("x-mbx-order-count-1d", "orders", 86400.0)):
            value = headers.get(name, "")
            if value.isdigit():
                reported.append(Usage(scope, window, int(value)))  # type: ignore[arg-type]
        return reported

    def cooldown(self, status: int, headers: Mapping[str, str], body: bytes) -> Cooldown | None:
        if status == 429 and (orders := TOO_MANY_ORDERS.search(body)):
            # Orders are counted per account: that key's new orders wait for the window's end; its
            # cancels and reads, and the IP's other keys, go on.
            interval = int(orders.group(1)) * INTERVAL_S[orders.group(2)] if orders.group(1) else 10
            return Cooldown("orders", retry_after_s(headers, interval - time.time() % interval))
        # Weight is counted per IP: a 429 from one key means every key behind our egress must stop,
        # and going on after 429s earns a 418 ban of 2 minutes to 3 days.
        if status in (418, 429) or body.find(b'"code":-1003') >= 0:
            banned = status == 418 or body.find(b"banned until") >= 0
            seconds = retry_after_s(headers, 120.0 if banned else 60.0)
            if match := BANNED_UNTIL.search(body):
                seconds = max(seconds, int(match.group(1)) / 1000 - time.time())
            return Cooldown("ip", seconds, ban=banned)
        return None

    check_path = "/sapi/v1/account/apiRestrictions"
    check_errors = {"-2014": "invalid_key", "-2015": "invalid_key", "-1022": "invalid_signature",
                    "-1021": "clock_skew", "-1002": "permission_denied"}
    ambiguous_errors = {"-2015": "Binance uses it for an invalid key, an IP not whitelisted, or a missing permission"}

    def error_code(self, status: int, body: Any) -> str | None:
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] < 0:
            return str(body["code"])
        return None if status < 400 else str(status)

    def key_permissions(self, body: Any) -> KeyPermissions | None:
        if not isinstance(body, dict):
            return None
        if not isinstance(body.get("enableWithdrawals"), bool):
            return None  # not the answer we know: unchecked, so every right counts
        granted = {name for name, on in body.items() if name.startswith(("enable", "permits")) and on is True}
        # A flag this code does not know may move funds: it counts as both, never as nothing.
        unknown = granted - _MOVES_FUNDS - _TRADES - _READS_ONLY
        return KeyPermissions(read=bool(body.get("enableReading")), trade=bool(granted & _TRADES or unknown),
                              withdraw=bool(granted & _MOVES_FUNDS or unknown),
                              ip_restricted=bool(body.get("ipRestrict")))

    def sign(self, request: UpstreamRequest, key: SigningKey, moment: Moment) -> UpstreamRequest:
        request = request.with_headers(**{"X-MBX-APIKEY": key.api_key})
        if is_listen_key(request.path):
            return request
        # timestamp and signature go where the parameters are: the form body if there is one.
        in_body = bool(request.body) and params.is_form(request.headers)
        query, body = params.normalise_query(request.query), request.body.decode("latin-1")
        if in_body:
            body = params.append(body, "timestamp", str(moment.now_ms))
        else:
            query = params.append(query, "timestamp", str(moment.now_ms))
        payload = (query + body).encode("latin-1")
        if key.key_type == "hmac":
            signature = key.hmac.sha256(payload).hex()
        else:
            signature = quote(b64(sign_asymmetric(key.private_key, payload)), safe="")
        if in_body:
            body = f"{body}&signature={signature}"
        else:
            query = f"{query}&signature={signature}"
        return request.changed(query=query, body=body.encode("latin-1"))

    def ws_login(self, key: SigningKey, moment: Moment, options: Mapping[str, str]) -> dict[str, Any]:
        # WebSocket API session.logon takes Ed25519 keys only; parameters signed sorted by name.
        # https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/authentication-requests
        if key.key_type != "ed25519":
            raise RequestRefused("Binance WebSocket API login needs an Ed25519 key")
        timestamp = moment.now_ms
        payload = f"apiKey={key.api_key}&timestamp={timestamp}".encode()
        signature = b64(sign_asymmetric(key.private_key, payload))
        return {"id": options.get("id") or str(uuid.uuid4()), "method": "session.logon",
                "params": {"apiKey": key.api_key, "signature": signature, "timestamp": timestamp}}

    def time_path_for(self, path: str) -> str | None:
        for prefix, time_path in TIME_PATHS:
            if path.startswith(prefix):
                return time_path
        return "/api/v3/time"

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["serverTime"])

    timestamp_error_marker = b"-1021"

    def is_timestamp_error(self, status: int, body: Any) -> bool:
        # -1021: timestamp outside recvWindow or ahead of server time; nothing was executed.
        return isinstance(body, dict) and body.get("code") == -1021


SPOT = Binance(
    ExchangeSpec(id="binance", name="Binance", base_urls=SPOT_HOSTS, key_types=KEY_TYPES,
                 hosts_by_prefix=HOSTS_BY_PREFIX),
    time_path="/api/v3/time", market="spot", order_rate=SPOT_ORDER_RATE,
)
USDM = Binance(
    ExchangeSpec(id="binanceusdm", name="Binance USDⓈ-M futures", base_urls=USDM_HOSTS, key_types=KEY_TYPES,
                 hosts_by_prefix=HOSTS_BY_PREFIX),
    time_path="/fapi/v1/time", market="usdm", order_rate=USDM_ORDER_RATE,
)
