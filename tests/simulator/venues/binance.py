"""Binance spot (/api, /sapi) and USD-M futures (/fapi): reference section 1.

Auth: X-MBX-APIKEY header; `timestamp`, optional `recvWindow` and `signature` as ordinary parameters
in the query or the form body. Signed payload = raw query + raw body (no separator) with the
`signature=` pair taken out; the signature pair must be the last pair of the part it is in.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    parse_form,
    rand_int,
    require_key_type,
    single_header,
    verify_asymmetric,
)
from ..state import (
    BAD_REQUEST,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    DUPLICATE_PARAMETER,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)

AUTH_PARAMS = ("signature", "timestamp", "recvWindow")


def error(status: int, code: int, msg: str) -> SimResponse:
    return json_response(status, {"code": code, "msg": msg})


REJECTED_KEY = (401, -2015, "Invalid API-key, IP, or permissions for action.")
# Unfilled order limits per account: (header suffix, interval in seconds, limit), as exchangeInfo gives them.
SPOT_ORDER_LIMITS = (("10S", 10, 100), ("1D", 86400, 200_000))
FUTURES_ORDER_LIMITS = (("10S", 10, 300), ("1M", 60, 1200))
ORDER_INTERVALS = {"10S": (10, "SECOND"), "1D": (1, "DAY"), "1M": (1, "MINUTE")}
# What one request adds to each order count, where it is not one: an OTOCO list is three orders; a
# USDⓈ-M batch counts 5 on the 10 s count and 1 on the minute's, however many orders it holds.
OTOCO_UNITS = {"10S": 3, "1D": 3}
BATCH_UNITS = {"10S": 5, "1M": 1}
BAD_SIG = (400, -1022, "Signature for this request is not valid.")


class Binance(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/api/v3/ping", "public", lambda r, a: json_response(200, {})),
            Endpoint("GET", "/api/v3/time", "public", self.time),
            Endpoint("GET", "/api/v3/exchangeInfo", "public", self.exchange_info),
            Endpoint("GET", "/fapi/v1/ping", "public", lambda r, a: json_response(200, {})),
            Endpoint("GET", "/fapi/v1/time", "public", self.time),
            Endpoint("GET", "/api/v3/account", "read", self.account),
            Endpoint("POST", "/api/v3/order", "trade", self.order),
            Endpoint("POST", "/api/v3/orderList/otoco", "trade", self.otoco),
            Endpoint("GET", "/sapi/v1/account/apiRestrictions", "keyinfo", self.api_restrictions),
            Endpoint("POST", "/sapi/v1/capital/withdraw/apply", "withdraw", self.withdraw),
            Endpoint("GET", "/fapi/v2/balance", "read", self.futures_balance),
            Endpoint("POST", "/fapi/v1/order", "trade", self.order),
            Endpoint("POST", "/fapi/v1/batchOrders", "trade", self.batch_orders),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return error(404, -1000, f"Unknown endpoint {req.method} {req.path}")

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return error(*REJECTED_KEY)

    # -- verification ---------------------------------------------------------------------------
    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        api_key = single_header(req, "X-MBX-APIKEY", error(401, -2014, "API-key format invalid."))
        account = lookup(req, api_key)
        if account is None:
            raise Reject(UNKNOWN_KEY, error(*REJECTED_KEY))
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, error(*REJECTED_KEY), req.client_ip)
        require_key_type(account, ("hmac", "ed25519", "rsa"), error(*REJECTED_KEY))

        query = parse_form(req.query)
        body = parse_form(req.body_text)
        names_q = [n for n, _, _ in query]
        names_b = [n for n, _, _ in body]
        for name in set(names_q + names_b):
            in_q, in_b = names_q.count(name), names_b.count(name)
            # A name twice in one part is always a duplicate; auth parameters may not appear in
            # both parts either (for other names "the query value wins", reference section 1).
            if in_q > 1 or in_b > 1 or (name in AUTH_PARAMS and in_q + in_b > 1):
                raise Reject(DUPLICATE_PARAMETER, error(400, -1101, "Duplicate values for a parameter detected."), name)
        params = {n: v for n, v, _ in body} | {n: v for n, v, _ in query}  # query wins

        ts_raw = params.get("timestamp")
        if not ts_raw:
            raise Reject(BAD_REQUEST, _mandatory("timestamp"), "timestamp missing")
        if not ts_raw.isdigit():
            raise Reject(BAD_REQUEST, error(400, -1100, "Illegal characters found in parameter 'timestamp'."))
        ts = int(ts_raw)
        ts_ms = ts / 1000.0 if ts >= 10**14 else float(ts)  # microseconds are allowed too
        recv_window = Decimal(5000)
        if "recvWindow" in params:
            try:
                recv_window = Decimal(params["recvWindow"])
            except InvalidOperation:
                raise Reject(
                    BAD_REQUEST, error(400, -1100, "Illegal characters found in parameter 'recvWindow'.")
                ) from None
            if not recv_window.is_finite() or recv_window <= 0 or int(recv_window.as_tuple().exponent) < -3:
                raise Reject(BAD_REQUEST, error(400, -1100, "Illegal characters found in parameter 'recvWindow'."))
            if recv_window > 60000:
                raise Reject(BAD_REQUEST, error(400, -1131, "recvWindow must be less than 60000"))
        server = req.now_ms
        if not ts_ms < server + 1000:
            raise Reject(
                BAD_TIMESTAMP,
                error(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."),
                f"timestamp {ts_raw} server {server:.0f}",
            )
        if Decimal(repr(server - ts_ms)) > recv_window:
            raise Reject(
                BAD_TIMESTAMP,
                error(400, -1021, "Timestamp for this request is outside of the recvWindow."),
                f"timestamp {ts_raw} server {server:.0f} recvWindow {recv_window}",
            )

        if "signature" not in params:
            raise Reject(BAD_REQUEST, _mandatory("signature"), "signature missing")
        part = query if "signature" in names_q else body
        if part[-1][0] != "signature":
            raise Reject(BAD_SIGNATURE, error(*BAD_SIG), "signature is not the last parameter")
        signature = part[-1][1]
        q_raw = "&".join(p for _, _, p in query) if part is body else "&".join(p for _, _, p in query[:-1])
        b_raw = "&".join(p for _, _, p in body) if part is query else "&".join(p for _, _, p in body[:-1])
        payload = (q_raw + b_raw).encode()
        if account.key_type == "hmac":
            expected = hmac_digest(account.secret.encode(), payload).hex()
            ok = consteq(expected, signature.lower())
        else:
            ok = verify_asymmetric(account, signature, payload)
        if not ok:
            raise Reject(BAD_SIGNATURE, error(*BAD_SIG), f"payload {payload!r}")
        return account

    def extra_headers(self, req: SimRequest) -> dict[str, str]:
        return {"X-MBX-USED-WEIGHT-1M": "1"}

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(200, {"serverTime": req.config.now_ms()})

    def exchange_info(self, req: SimRequest, account: Account | None) -> SimResponse:
        """One spot market, enough for a client library's market loading (ccxt's load_markets)."""
        symbol = {
            "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "baseAssetPrecision": 8,
            "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True,
            "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
            "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00", "stepSize": "0.00001"},
                {"filterType": "NOTIONAL", "minNotional": "5.00", "maxNotional": "9000000.00"},
            ],
        }
        return json_response(200, {"timezone": "UTC", "serverTime": req.config.now_ms(), "rateLimits": [],
                                   "exchangeFilters": [], "symbols": [symbol]})

    def account(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return json_response(
            200,
            {
                "makerCommission": 10,
                "takerCommission": 10,
                "canTrade": account.can_trade,
                "canWithdraw": account.can_withdraw,
                "canDeposit": True,
                "updateTime": req.config.now_ms(),
                "accountType": "SPOT",
                "balances": [
                    {"asset": "BTC", "free": "0.50000000", "locked": "0.00000000"},
                    {"asset": "USDT", "free": "1000.00000000", "locked": "0.00000000"},
                ],
                "permissions": ["SPOT"],
            },
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        params = dict((n, v) for n, v, _ in parse_form(req.body_text)) | {n: v for n, v, _ in parse_form(req.query)}
        assert account is not None
        fills = not req.path.startswith("/fapi/") and params.get("type", "LIMIT") == "MARKET"
        return self._placed(
            req, account, {},
            {
                "symbol": params.get("symbol", "BTCUSDT"),
                "orderId": rand_int(10**8, 10**9),
                "clientOrderId": params.get("newClientOrderId", "sim" + str(rand_int(10**6, 10**7))),
                "transactTime": req.config.now_ms(),
                "price": params.get("price", "0.00000000"),
                "origQty": params.get("quantity", "0.00000000"),
                "status": "FILLED" if fills else "NEW",
                "type": params.get("type", "LIMIT"),
                "side": params.get("side", "BUY"),
            },
            fills=fills,
        )

    def otoco(self, req: SimRequest, account: Account | None) -> SimResponse:
        """An OTOCO list: its working order rests, so its three orders stay counted."""
        assert account is not None
        listed = {"orderListId": rand_int(10**6, 10**7), "contingencyType": "OTO", "listStatusType": "EXEC_STARTED",
                  "listOrderStatus": "EXECUTING"}
        return self._placed(req, account, OTOCO_UNITS, listed)

    def batch_orders(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return self._placed(req, account, BATCH_UNITS, [])

    @staticmethod
    def _placed(req: SimRequest, account: Account, units: dict[str, int], answer: Any, *,
                fills: bool = False) -> SimResponse:
        """`answer` with the unfilled order count in its headers, or Binance's -1015 when the
        request's orders do not fit: each interval's starts on the clock (a day at 00:00 UTC). An
        order adds one (`units` where more); on spot, one that fills (a MARKET order, here at once)
        is taken off again after its own answer (Binance's "short delay"). Futures orders stay
        counted."""
        now_s = req.config.now_ms() / 1000
        market = "usdm" if req.path.startswith("/fapi/") else "spot"
        limits = FUTURES_ORDER_LIMITS if market == "usdm" else SPOT_ORDER_LIMITS
        counts = {(market, name, int(now_s // seconds)): limit for name, seconds, limit in limits}
        with req.config.lock:
            held = account.order_counts  # this market's intervals that are over go
            kept = {key: count for key, count in held.items() if key[0] != market and key[1] != market}
            account.order_counts = kept | {key: held[key] - held.get(("filled", *key), 0) for key in counts
                                           if key in held}
            for key, limit in counts.items():
                if account.order_counts.get(key, 0) + units.get(key[1], 1) > limit:
                    number, unit = ORDER_INTERVALS[key[1]]
                    return error(429, -1015, f"Too many new orders; current limit is {limit} orders per {number} "
                                             f"{unit}.")
            for key in counts:
                account.order_counts[key] = account.order_counts.get(key, 0) + units.get(key[1], 1)
                if fills:
                    account.order_counts[("filled", *key)] = 1
            reported = {f"X-MBX-ORDER-COUNT-{key[1]}": str(account.order_counts[key]) for key in counts}
        return json_response(200, answer, reported)

    def api_restrictions(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        return json_response(
            200,
            {
                "ipRestrict": account.ip_whitelist is not None,
                "createTime": 1698645219000,
                "enableReading": True,
                "enableWithdrawals": account.can_withdraw,
                "enableInternalTransfer": False,
                "permitsUniversalTransfer": False,
                "enableMargin": False,
                "enableFutures": account.can_trade,
                "enableSpotAndMarginTrading": account.can_trade,
                "enableVanillaOptions": False,
                "enablePortfolioMarginTrading": False,
                "enableFixApiTrade": False,
                "enableFixReadOnly": False,
            },
        )

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(200, {"id": "7213fea8e94b4a5593d507237e5a555b"})

    def futures_balance(self, req: SimRequest, account: Account | None) -> SimResponse:
        return json_response(
            200,
            [
                {
                    "accountAlias": "SgsR",
                    "asset": "USDT",
                    "balance": "1000.00000000",
                    "crossWalletBalance": "1000.00000000",
                    "crossUnPnl": "0.00000000",
                    "availableBalance": "1000.00000000",
                    "maxWithdrawAmount": "1000.00000000",
                    "marginAvailable": True,
                    "updateTime": req.config.now_ms(),
                }
            ],
        )


def _mandatory(name: str) -> SimResponse:
    return error(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
