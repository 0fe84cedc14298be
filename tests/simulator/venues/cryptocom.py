"""Crypto.com Exchange v1: reference section 8.

POST /exchange/v1/{method} with JSON {id, method, params, api_key, sig, nonce}; `method` must equal the
path's method. sig = hex(HMAC-SHA256(secret, method + id + api_key + paramString(params) + nonce)).
nonce (ms) within 60 s of the server.

paramString follows the rules on which the three reference implementations agree (reference
section 8): keys sorted, each key followed by its value with no separators, strings as they are,
null as "null", lists rendered element by element (objects recursively with their own sorted keys,
scalars appended), nested objects recursively. Where the implementations disagree (booleans,
non-integer JSON numbers, objects nested three or more levels deep) the request is refused with
40004 instead of guessing.
"""

from __future__ import annotations

import json
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
    rand_int,
    require_key_type,
)
from ..state import (
    BAD_REQUEST,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    DUPLICATE_PARAMETER,
    IP_NOT_WHITELISTED,
    MISSING_AUTH,
    UNKNOWN_KEY,
    Account,
)

PREFIX = "/exchange/v1/"
WINDOW_MS = 60_000
MAX_LEVEL = 3


class AmbiguousParams(ValueError):
    pass


def param_string(params: dict[str, Any], level: int = 0) -> str:
    if level >= MAX_LEVEL:
        raise AmbiguousParams("objects nested 3 or more levels deep")
    out = []
    for key in sorted(params):
        out.append(key)
        out.append(_render(params[key], level))
    return "".join(out)


def _render(value: Any, level: int) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        raise AmbiguousParams("boolean value (Python renders True, JS and Java true)")
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise AmbiguousParams("non-integer JSON number (numbers must be sent as strings)")
    if isinstance(value, list):
        return "".join(param_string(el, level + 1) if isinstance(el, dict) else _render(el, level) for el in value)
    if isinstance(value, dict):
        return param_string(value, level + 1)
    raise AmbiguousParams(f"unsupported value {value!r}")


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object with a key twice is refused: a first-wins and a last-wins parser would disagree."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r} appears twice")
        out[key] = value
    return out


def _decimal(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None


class CryptoCom(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", PREFIX + "public/get-instruments", "public", self.instruments),
            Endpoint("GET", PREFIX + "public/get-tickers", "public", self.tickers),
            Endpoint("POST", PREFIX + "private/user-balance", "read", self.user_balance),
            Endpoint("POST", PREFIX + "private/create-order", "trade", self.create_order),
            Endpoint("POST", PREFIX + "private/create-withdrawal", "withdraw", self.create_withdrawal),
        ]

    def _method(self, req: SimRequest) -> str:
        return req.path[len(PREFIX) :] if req.path.startswith(PREFIX) else req.path

    def _error(self, req: SimRequest, status: int, code: int, text: str) -> SimResponse:
        body = req.scratch.get("json")
        request_id = body.get("id", -1) if isinstance(body, dict) else -1
        return json_response(status, {"id": request_id, "method": self._method(req), "code": code, "message": text})

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"id": -1, "method": self._method(req), "code": 40002, "message": "METHOD_NOT_FOUND"})

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        # The reference names no permission code; UNAUTHORIZED is the closest documented one.
        return self._error(req, 401, 40101, "UNAUTHORIZED")

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        try:
            body = json.loads(req.body, object_pairs_hook=_no_duplicate_keys) if req.body else None
        except _DuplicateKey as dup:
            req.scratch["json"] = None
            raise Reject(DUPLICATE_PARAMETER, self._error(req, 400, 40003, "INVALID_REQUEST"), str(dup)) from None
        except ValueError:
            body = None
        req.scratch["json"] = body
        if not isinstance(body, dict):
            raise Reject(BAD_REQUEST, self._error(req, 400, 40003, "INVALID_REQUEST"), "body is not a JSON object")
        if body.get("method") != self._method(req):
            raise Reject(
                BAD_REQUEST,
                self._error(req, 400, 40003, "INVALID_REQUEST"),
                f"body method {body.get('method')!r} != path method {self._method(req)!r}",
            )
        for name in ("api_key", "sig", "nonce", "id"):
            if name not in body:
                raise Reject(MISSING_AUTH, self._error(req, 401, 40101, "UNAUTHORIZED"), f"{name} missing")
        if not isinstance(body.get("params"), dict):
            raise Reject(BAD_REQUEST, self._error(req, 400, 40004, "MISSING_OR_INVALID_ARGUMENT"), "params missing")

        api_key = body["api_key"] if isinstance(body["api_key"], str) else None
        account = lookup(req, api_key)
        if account is None:
            raise Reject(UNKNOWN_KEY, self._error(req, 401, 40101, "UNAUTHORIZED"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, self._error(req, 401, 40103, "IP_ILLEGAL"), req.client_ip)
        require_key_type(account, ("hmac",), self._error(req, 401, 40101, "UNAUTHORIZED"))

        nonce = _decimal(body["nonce"])
        request_id = _decimal(body["id"])
        if nonce is None or abs(req.now_ms - int(nonce)) > WINDOW_MS:
            raise Reject(BAD_TIMESTAMP, self._error(req, 401, 40102, "INVALID_NONCE"), f"nonce {body['nonce']!r}")
        if request_id is None:
            raise Reject(BAD_REQUEST, self._error(req, 400, 40004, "MISSING_OR_INVALID_ARGUMENT"), "id")
        try:
            params = param_string(body["params"])
        except AmbiguousParams as exc:
            raise Reject(BAD_REQUEST, self._error(req, 400, 40004, "MISSING_OR_INVALID_ARGUMENT"), str(exc)) from None
        prehash = body["method"] + request_id + api_key + params + nonce
        expected = hmac_digest(account.secret.encode(), prehash.encode()).hex()
        if not isinstance(body["sig"], str) or not consteq(expected, body["sig"].lower()):
            raise Reject(BAD_SIGNATURE, self._error(req, 401, 40101, "UNAUTHORIZED"), f"prehash {prehash!r}")
        return account

    # -- handlers -------------------------------------------------------------------------------
    def _ok(self, req: SimRequest, result: object) -> SimResponse:
        body = req.scratch.get("json")
        request_id = body.get("id", -1) if isinstance(body, dict) else -1
        return json_response(200, {"id": request_id, "method": self._method(req), "code": 0, "result": result})

    def instruments(self, req: SimRequest, account: Account | None) -> SimResponse:
        return self._ok(
            req,
            {
                "data": [
                    {
                        "symbol": "BTCUSD-PERP",
                        "inst_type": "PERPETUAL_SWAP",
                        "display_name": "BTCUSD Perpetual",
                        "base_ccy": "BTC",
                        "quote_ccy": "USD",
                        "quote_decimals": 1,
                        "quantity_decimals": 4,
                        "price_tick_size": "0.1",
                        "qty_tick_size": "0.0001",
                        "max_leverage": "100",
                        "tradable": True,
                        "expiry_timestamp_ms": 0,
                    }
                ]
            },
        )

    def tickers(self, req: SimRequest, account: Account | None) -> SimResponse:
        # No time method exists; the ticker's "t" field carries the server time.
        return self._ok(
            req,
            {
                "data": [
                    {
                        "i": "BTCUSD-PERP",
                        "h": "51000.0",
                        "l": "49000.0",
                        "a": "50000.0",
                        "c": "0.01",
                        "b": "49999.9",
                        "k": "50000.1",
                        "v": "1000.0",
                        "vv": "50000000.00",
                        "oi": "100.0",
                        "t": req.config.now_ms(),
                    }
                ]
            },
        )

    def user_balance(self, req: SimRequest, account: Account | None) -> SimResponse:
        return self._ok(
            req,
            {
                "data": [
                    {
                        "total_available_balance": "1000.00",
                        "total_margin_balance": "1000.00",
                        "total_initial_margin": "0",
                        "total_maintenance_margin": "0",
                        "total_position_cost": "0",
                        "total_cash_balance": "1000.00",
                        "instrument_name": "USD",
                        "position_balances": [
                            {"instrument_name": "USD", "quantity": "1000.00", "market_value": "1000.00"}
                        ],
                    }
                ]
            },
        )

    def create_order(self, req: SimRequest, account: Account | None) -> SimResponse:
        params = req.scratch["json"].get("params", {})
        return self._ok(req, {"client_oid": params.get("client_oid", ""), "order_id": str(rand_int(10**17, 10**18))})

    def create_withdrawal(self, req: SimRequest, account: Account | None) -> SimResponse:
        params = req.scratch["json"].get("params", {})
        return self._ok(
            req,
            {
                "id": rand_int(1000, 9999),
                "amount": params.get("amount", "0"),
                "fee": "0.0004",
                "symbol": params.get("currency", "BTC"),
                "address": params.get("address", ""),
                "client_wid": params.get("client_wid", ""),
                "create_time": req.config.now_ms(),
            },
        )
