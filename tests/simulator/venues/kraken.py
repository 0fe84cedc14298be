"""Kraken spot: reference section 4a.

API-Sign = base64(HMAC-SHA512(b64decode(secret), uri_path + SHA256(nonce + postdata))), where
uri_path is the request path (plus ?query if any) and postdata the exact body. The nonce must be
strictly greater than the last nonce accepted for the key. Every error is HTTP 200 {"error": [...]}.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from email.utils import formatdate

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    b64,
    b64decode_strict,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    parse_form,
    require_key_type,
    single_header,
)
from ..state import (
    BAD_NONCE,
    BAD_REQUEST,
    BAD_SIGNATURE,
    DUPLICATE_PARAMETER,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)


def error(*messages: str) -> SimResponse:
    return json_response(200, {"error": list(messages)})


def ok(result: object) -> SimResponse:
    return json_response(200, {"error": [], "result": result})


class Kraken(Venue):
    def build_endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("GET", "/0/public/Time", "public", self.time),
            Endpoint("POST", "/0/private/Balance", "read", self.balance),
            Endpoint("POST", "/0/private/AddOrder", "trade", self.add_order),
            Endpoint("POST", "/0/private/Withdraw", "withdraw", self.withdraw),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return json_response(404, {"error": ["EGeneral:Unknown method"]})

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return error("EGeneral:Permission denied")

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        account = lookup(req, single_header(req, "API-Key", error("EAPI:Invalid key")))
        if account is None:
            raise Reject(UNKNOWN_KEY, error("EAPI:Invalid key"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(IP_NOT_WHITELISTED, error("EGeneral:Permission denied"), req.client_ip)
        require_key_type(account, ("hmac",), error("EAPI:Invalid key"))

        content_type = (req.header("content-type") or "").split(";")[0].strip().lower()
        nonce_raw: object = None
        if content_type == "application/json":
            try:
                data = json.loads(req.body) if req.body else {}
            except ValueError:
                raise Reject(BAD_REQUEST, error("EGeneral:Invalid arguments"), "body is not JSON") from None
            nonce_raw = data.get("nonce") if isinstance(data, dict) else None
        else:
            pairs = [(n, v) for n, v, _ in parse_form(req.body_text)]
            nonces = [v for n, v in pairs if n == "nonce"]
            if len(nonces) > 1:
                raise Reject(DUPLICATE_PARAMETER, error("EAPI:Invalid nonce"), "nonce twice")
            nonce_raw = nonces[0] if nonces else None
        nonce_str = str(nonce_raw) if isinstance(nonce_raw, (str, int)) and not isinstance(nonce_raw, bool) else ""
        if not nonce_str.isdigit() or int(nonce_str) >= 2**64:
            raise Reject(BAD_NONCE, error("EAPI:Invalid nonce"), f"nonce {nonce_raw!r}")
        nonce = int(nonce_str)
        with req.config.lock:
            if account.last_nonce is not None and nonce <= account.last_nonce:
                raise Reject(BAD_NONCE, error("EAPI:Invalid nonce"), f"nonce {nonce} <= {account.last_nonce}")

            sign = single_header(req, "API-Sign", error("EAPI:Invalid signature"))
            secret = b64decode_strict(account.secret)
            if secret is None:
                raise Reject(BAD_SIGNATURE, error("EAPI:Invalid signature"), "secret is not base64")
            message = req.target.encode() + hashlib.sha256(nonce_str.encode() + req.body).digest()
            expected = b64(hmac_digest(secret, message, "sha512"))
            if not consteq(expected, sign):
                raise Reject(BAD_SIGNATURE, error("EAPI:Invalid signature"), f"path {req.target} body {req.body!r}")
            account.last_nonce = nonce  # consumed once the signature is good, even if permission fails
        return account

    # -- handlers -------------------------------------------------------------------------------
    def time(self, req: SimRequest, account: Account | None) -> SimResponse:
        now = req.config.now()
        return ok({"unixtime": int(now), "rfc1123": formatdate(now, usegmt=True)})

    def balance(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok({"ZUSD": "1000.0000", "XXBT": "0.5000000000"})

    def add_order(self, req: SimRequest, account: Account | None) -> SimResponse:
        params = {n: v for n, v, _ in parse_form(req.body_text)}
        descr = f"{params.get('type', 'buy')} {params.get('volume', '0')} {params.get('pair', 'XBTUSD')}"
        if params.get("ordertype", "market") == "limit":
            descr += f" @ limit {params.get('price', '0')}"
        txid = "O" + secrets.token_hex(3).upper()[:5] + "-SIMUL-ATORXX"
        return ok({"descr": {"order": descr}, "txid": [txid]})

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok({"refid": "FTQcuak-V6Za8qrWnhzTx67yYHz8Tg"})
