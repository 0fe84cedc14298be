"""KuCoin spot and futures: reference section 7.

KC-API-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD + path[?query] + body)); timestamp in ms
within 5 s. KC-API-PASSPHRASE: key version 1 plain text; version 2/3 (KC-API-KEY-VERSION header)
base64(HMAC-SHA256(secret, passphrase)).
"""

from __future__ import annotations

import uuid
from urllib.parse import unquote

from ..core import (
    Endpoint,
    Reject,
    SimRequest,
    SimResponse,
    Venue,
    b64,
    consteq,
    hmac_digest,
    json_response,
    lookup,
    require_key_type,
    single_header,
)
from ..state import (
    BAD_PASSPHRASE,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    IP_NOT_WHITELISTED,
    UNKNOWN_KEY,
    Account,
)

WINDOW_MS = 5_000


def error(code: str, msg: str, status: int = 401) -> SimResponse:
    return json_response(status, {"code": code, "msg": msg})


def ok(data: object) -> SimResponse:
    return json_response(200, {"code": "200000", "data": data})


class KuCoin(Venue):
    futures = False

    def build_endpoints(self) -> list[Endpoint]:
        if self.futures:
            return [
                Endpoint("GET", "/api/v1/timestamp", "public", self.timestamp),
                Endpoint("GET", "/api/v1/account-overview", "read", self.account_overview),
                Endpoint("POST", "/api/v1/orders", "trade", self.order),
                Endpoint("POST", "/api/v1/withdrawals", "withdraw", self.withdraw),
            ]
        return [
            Endpoint("GET", "/api/v1/timestamp", "public", self.timestamp),
            Endpoint("GET", "/api/v1/accounts", "read", self.accounts),
            Endpoint("POST", "/api/v1/orders", "trade", self.order),
            Endpoint("GET", "/api/v1/user/api-key", "keyinfo", self.api_key_info),
            Endpoint("POST", "/api/v1/withdrawals", "withdraw", self.withdraw),
            # The endpoint of the published signing example (reference section 19, #6).
            Endpoint("POST", "/api/v1/deposit-addresses", "read", self.deposit_address),
        ]

    def not_found(self, req: SimRequest) -> SimResponse:
        return error("404000", "Url Not Found", 404)

    def permission_error(self, req: SimRequest, endpoint: Endpoint) -> SimResponse:
        return error("400007", "Access denied, require more permission.", 403)

    def extra_headers(self, req: SimRequest) -> dict[str, str]:
        return {"gw-ratelimit-limit": "4000", "gw-ratelimit-remaining": "3999", "gw-ratelimit-reset": "30000"}

    def authenticate(self, req: SimRequest, endpoint: Endpoint) -> Account:
        values: dict[str, str] = {}
        for name in ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE"):
            refusal = error("400001", "Please check the header of your request for " + name)
            values[name] = single_header(req, name, refusal)
        versions = req.header_values("KC-API-KEY-VERSION")
        version = versions[0] if len(versions) == 1 else ("1" if not versions else "")

        account = lookup(req, values["KC-API-KEY"])
        if account is None:
            raise Reject(UNKNOWN_KEY, error("400003", "KC-API-KEY not exists"))
        if not account.ip_allowed(req.client_ip):
            raise Reject(
                IP_NOT_WHITELISTED,
                error("400006", f"Invalid request ip, the current clientIp is:{req.client_ip}"),
                req.client_ip,
            )
        require_key_type(account, ("hmac",), error("400003", "KC-API-KEY not exists"))

        # The header says how the passphrase is sent; a v2/v3 key needs the HMAC form (version 2 or 3).
        if version == "1" and account.kucoin_key_version == 1:
            expected_pass = account.passphrase or ""
        elif version in ("2", "3") and account.kucoin_key_version >= 2:
            expected_pass = b64(hmac_digest(account.secret.encode(), (account.passphrase or "").encode()))
        else:
            expected_pass = None
        if (
            account.passphrase is None
            or expected_pass is None
            or not consteq(expected_pass, values["KC-API-PASSPHRASE"])
        ):
            raise Reject(BAD_PASSPHRASE, error("400004", "Invalid KC-API-PASSPHRASE"), f"header version {version!r}")

        ts = values["KC-API-TIMESTAMP"]
        if not ts.isdigit() or abs(req.now_ms - int(ts)) > WINDOW_MS:
            raise Reject(
                BAD_TIMESTAMP,
                error("400002", "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds"),
                f"{ts} vs {req.now_ms:.0f}",
            )
        # The raw query as received; the universal SDK signs it unescaped while sending it escaped,
        # so the percent-decoded form is accepted too (reference section 7, query-encoding nuance).
        targets = [req.target]
        if "%" in req.query:
            targets.append(req.path + "?" + unquote(req.query))
        for target in targets:
            prehash = ts.encode() + req.method.encode() + target.encode() + req.body
            if consteq(b64(hmac_digest(account.secret.encode(), prehash)), values["KC-API-SIGN"]):
                return account
        raise Reject(BAD_SIGNATURE, error("400005", "Signature verification failed"), f"target {req.target}")

    # -- handlers -------------------------------------------------------------------------------
    def timestamp(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(req.config.now_ms())

    def accounts(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(
            [
                {
                    "id": "5bd6e9286d99522a52e458de",
                    "currency": "USDT",
                    "type": "trade",
                    "balance": "1000",
                    "available": "1000",
                    "holds": "0",
                },
                {
                    "id": "5bd6e9216d99522a52e458d6",
                    "currency": "BTC",
                    "type": "main",
                    "balance": "0.5",
                    "available": "0.5",
                    "holds": "0",
                },
            ]
        )

    def account_overview(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok(
            {
                "accountEquity": 1000.0,
                "unrealisedPNL": 0,
                "marginBalance": 1000.0,
                "positionMargin": 0,
                "orderMargin": 0,
                "frozenFunds": 0,
                "availableBalance": 1000.0,
                "currency": "USDT",
            }
        )

    def order(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        body = body if isinstance(body, dict) else {}
        return ok({"orderId": uuid.uuid4().hex[:24], "clientOid": body.get("clientOid", "")})

    def api_key_info(self, req: SimRequest, account: Account | None) -> SimResponse:
        assert account is not None
        permission = (
            ["General"]
            + (["Spot", "Futures"] if account.can_trade else [])
            + (["Transfer"] if account.can_withdraw else [])
        )
        return ok(
            {
                "remark": "signvault-sim",
                "apiKey": req.record.api_key,
                "apiVersion": account.kucoin_key_version,
                "permission": ",".join(permission),
                "ipWhitelist": ",".join(sorted(account.ip_whitelist or ())),
                "isMaster": True,
                "uid": 165111215,
                "createdAt": 1724000000000,
            }
        )

    def deposit_address(self, req: SimRequest, account: Account | None) -> SimResponse:
        body = req.json_body() or {}
        currency = body.get("currency", "BTC") if isinstance(body, dict) else "BTC"
        return ok({"address": "bc1qsimulatoraddress0000000000000000000000", "memo": "", "chain": currency.lower()})

    def withdraw(self, req: SimRequest, account: Account | None) -> SimResponse:
        return ok({"withdrawalId": uuid.uuid4().hex[:24]})


class KuCoinFutures(KuCoin):
    futures = True
