"""The simulator checked on its own, independent of signvault.

Every request here is signed by hand with hashlib/hmac/cryptography following
../shared/exchange-signing.md; each recipe is first proven on the published vectors of
../shared/test-vectors.json (and the reference's derived fixtures), then used against the live
simulator under a real uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.simulator import (
    ACCEPTED,
    BAD_NONCE,
    BAD_PASSPHRASE,
    BAD_REQUEST,
    BAD_SIGNATURE,
    BAD_TIMESTAMP,
    DUPLICATE_PARAMETER,
    EXCHANGE_IDS,
    FORCED,
    IP_NOT_WHITELISTED,
    PENDING,
    PERMISSION_DENIED,
    UNKNOWN_KEY,
    SimulatorConfig,
    SimulatorServer,
    cryptocom_param_string,
    new_ec_pem,
    new_ed25519_b64,
    new_ed25519_pem,
    new_rsa_pem,
)

# The exchanges' published examples, as committed beside the signer tests (a copy of
# ../shared/test-vectors.json), so a clone outside this workspace runs them too.
VECTORS = json.loads((Path(__file__).parents[1] / "exchanges" / "published_vectors.json").read_text())["vectors"]


def vector(exchange: str, name: str) -> dict[str, Any]:
    return next(v for v in VECTORS if v["exchange"] == exchange and v["name"] == name)


# =================================================================================================
# Signing recipes, written from the reference only
# =================================================================================================


def hmac_hex(secret: bytes, msg: bytes, algo: Any = hashlib.sha256) -> str:
    return hmac.new(secret, msg, algo).hexdigest()


def hmac_b64(secret: bytes, msg: bytes, algo: Any = hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(secret, msg, algo).digest()).decode()


def kraken_sign(secret_b64: str, uri_path: str, nonce: str, postdata: str) -> str:
    """base64(HMAC-SHA512(b64decode(secret), path + SHA256(nonce + postdata)))  (section 4a)."""
    message = uri_path.encode() + hashlib.sha256((nonce + postdata).encode()).digest()
    return hmac_b64(base64.b64decode(secret_b64), message, hashlib.sha512)


def gate_sign(secret: str, method: str, path: str, query: str, body: str, ts: str) -> str:
    """hex(HMAC-SHA512(secret, METHOD\\nPATH\\nQUERY\\nsha512hex(BODY)\\nTS))  (section 10)."""
    text = "\n".join([method, path, query, hashlib.sha512(body.encode()).hexdigest(), ts])
    return hmac_hex(secret.encode(), text.encode(), hashlib.sha512)


def kucoin_passphrase(secret: str, passphrase: str) -> str:
    return hmac_b64(secret.encode(), passphrase.encode())


def cryptocom_params(obj: dict[str, Any]) -> str:
    """paramString for the subset the reference implementations agree on (section 8)."""
    out = ""
    for key in sorted(obj):
        out += key
        value = obj[key]
        if value is None:
            out += "null"
        elif isinstance(value, list):
            out += "".join(cryptocom_params(v) if isinstance(v, dict) else str(v) for v in value)
        elif isinstance(value, dict):
            out += cryptocom_params(value)
        else:
            out += str(value)
    return out


def cryptocom_sig(secret: str, method: str, req_id: int, api_key: str, params: dict[str, Any], nonce: int) -> str:
    return hmac_hex(secret.encode(), f"{method}{req_id}{api_key}{cryptocom_params(params)}{nonce}".encode())


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def coinbase_jwt(
    key_name: str,
    secret: str,
    key_type: str,
    uri: str | None,
    now_s: int,
    *,
    lifetime: int = 120,
    der: bool = False,
    claims_extra: dict[str, Any] | None = None,
) -> str:
    """A CDP JWT (section 3): ES256 raw r||s, or EdDSA; kid/sub = key name, iss cdp, uri claim."""
    alg = "ES256" if key_type == "ecdsa" else "EdDSA"
    header = {"alg": alg, "kid": key_name, "nonce": secrets.token_hex(), "typ": "JWT"}
    claims: dict[str, Any] = {"sub": key_name, "iss": "cdp", "nbf": now_s, "exp": now_s + lifetime}
    if uri is not None:
        claims["uri"] = uri
    claims.update(claims_extra or {})
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}".encode()
    if key_type == "ecdsa":
        key = serialization.load_pem_private_key(secret.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        der_sig = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der_sig)
        sig = der_sig if der else r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        seed = base64.b64decode(secret)[:32]
        sig = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(signing_input)
    return signing_input.decode() + "." + b64url(sig)


def asym_sign_b64(pem: str, payload: bytes) -> str:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return base64.b64encode(key.sign(payload)).decode()
    return base64.b64encode(key.sign(payload, padding.PKCS1v15(), hashes.SHA256())).decode()  # type: ignore[union-attr]


def flip(sig: str) -> str:
    """Change the first character to another one of the same alphabet (hex stays hex, b64 stays b64)."""
    c = sig[0]
    alphabet = "0123456789abcdef" if c in "0123456789abcdef" else "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return (alphabet[(alphabet.index(c) + 1) % len(alphabet)] if c in alphabet else "A") + sig[1:]


# =================================================================================================
# 1. The recipes reproduce the published vectors (and the reference's derived fixtures)
# =================================================================================================


@pytest.mark.parametrize("name", ["hmac-ascii", "hmac-nonascii", "hmac-mixed-query-body"])
def test_vector_binance_hmac(name: str) -> None:
    v = vector("binance", name)
    assert hmac_hex(v["secret"].encode(), v["prehash"].encode()) == v["expected"]
    if "query" in v:
        assert v["query"] + v["body"] == v["prehash"]


def test_vector_kraken() -> None:
    v = vector("kraken", "spot-addorder")
    assert kraken_sign(v["secret"], v["path"], v["nonce"], v["body"]) == v["expected"]


def test_vector_kucoin_and_derived_passphrase() -> None:
    v = vector("kucoin", "sign")
    assert hmac_b64(v["secret"].encode(), v["prehash"].encode()) == v["expected"]
    assert kucoin_passphrase(v["secret"], "Ab12345678)(*&^%$#@") == "F2p2bNS1bBehHvC/Z4YkB7l1Wd0Pq2iV/oLHM/DyE+I="


@pytest.mark.parametrize("name", ["get", "post"])
def test_vector_gate(name: str) -> None:
    v = vector("gate", name)
    assert gate_sign(v["secret"], v["method"], v["path"], v["query"], v["body"], v["timestamp"]) == v["expected"]


def test_vector_ed25519_rfc8032_and_binance_derived() -> None:
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
        "d25bf5f0595bbe24655141438e7a100b"
    )
    assert asym_sign_b64(BINANCE_ED25519_PEM, BINANCE_ED25519_PAYLOAD.encode()) == BINANCE_ED25519_SIG


def test_vector_cryptocom_derived() -> None:
    # The reference's derived fixtures (section 19), for the recipe and for the simulator's paramString.
    params = {"order_id": "53287421324"}
    assert cryptocom_params(params) == cryptocom_param_string(params) == "order_id53287421324"
    assert (
        cryptocom_sig("secretKey", "private/get-order-detail", 11, "token", params, 1587846358253)
        == "02ef0a52c9428e5d3dcc5dd24d534ca39ef73f35acd3f6945f139a2364ef67a9"
    )
    order_list = {
        "contingency_type": "LIST",
        "order_list": [
            {"instrument_name": "ONE_USDT", "side": "BUY", "type": "LIMIT", "price": "0.24", "quantity": "1.0"},
            {
                "instrument_name": "ONE_USDT",
                "side": "BUY",
                "type": "STOP_LIMIT",
                "price": "0.27",
                "quantity": "1.0",
                "trigger_price": "0.26",
            },
        ],
    }
    expected = (
        "contingency_typeLISTorder_listinstrument_nameONE_USDTprice0.24quantity1.0sideBUYtypeLIMIT"
        "instrument_nameONE_USDTprice0.27quantity1.0sideBUYtrigger_price0.26typeSTOP_LIMIT"
    )
    assert cryptocom_params(order_list) == cryptocom_param_string(order_list) == expected
    assert (
        cryptocom_sig("SECRET_KEY", "private/create-order-list", 14, "API_KEY", order_list, 1587846358253)
        == "0ce830395a52b741cd79a3f20d623de0eff72bfa9c6d87af37eba0cfafb51c6e"
    )
    assert (
        cryptocom_sig("secretKey", "public/auth", 11, "token", {}, 1589594102779)
        == "9dcebf6eeec155f829227ee447dee73120e0aead42fab74d38ed5d8271793dc8"
    )


# The reference's derived Binance Ed25519 fixture (section 19): RFC 8032 TEST 1 seed as PKCS#8.
BINANCE_ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n"
)
BINANCE_ED25519_PAYLOAD = (
    "symbol=BTCUSDT&side=SELL&type=LIMIT&timeInForce=GTC&quantity=1&price=0.2&timestamp=1668481559918&recvWindow=5000"
)
BINANCE_ED25519_SIG = "XtZirsmmi0noRzUfkqktvkVfxpkq/WtbLg2UOL3QGYdUBZVlqOBEMuEVw8zioY93N54NcKj9UuAXQEa9zgTDBg=="


# =================================================================================================
# The live server
# =================================================================================================


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(host="127.0.0.1") as srv:
        yield srv


@pytest.fixture
def sim(server: SimulatorServer) -> Iterator[SimulatorServer]:
    server.config.reset()
    yield server
    server.config.reset()


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


@dataclass
class Prepared:
    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def send(client: httpx.Client, sim: SimulatorServer, exchange: str, p: Prepared) -> httpx.Response:
    url = sim.url_for(exchange) + p.path + ("?" + p.query if p.query else "")
    return client.request(p.method, url, headers=p.headers, content=p.body.encode())


def set_clock(sim: SimulatorServer, at_ms: float) -> None:
    """Make the simulator clock read `at_ms` now."""
    sim.config.clock_offset_ms = at_ms - time.time() * 1000


# =================================================================================================
# 2. The published requests themselves are accepted by the simulator, byte for byte
# =================================================================================================


def test_published_binance_requests_accepted(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account(
        "binance",
        "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A",
        vector("binance", "hmac-ascii")["secret"],
    )
    headers = {"X-MBX-APIKEY": "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"}
    form = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    set_clock(sim, 1499827319559 + 200)
    for name in ("hmac-ascii", "hmac-nonascii"):
        v = vector("binance", name)
        r = send(
            client,
            sim,
            "binance",
            Prepared("POST", "/api/v3/order", "", form, v["prehash"] + "&signature=" + v["expected"]),
        )
        assert r.status_code == 200, r.text
        r = send(
            client,
            sim,
            "binance",
            Prepared("POST", "/api/v3/order", v["prehash"] + "&signature=" + v["expected"], headers),
        )
        assert r.status_code == 200, r.text
    v = vector("binance", "hmac-mixed-query-body")
    r = send(
        client,
        sim,
        "binance",
        Prepared("POST", "/api/v3/order", v["query"], form, v["body"] + "&signature=" + v["expected"]),
    )
    assert r.status_code == 200, r.text
    # HMAC hex is accepted in either case (section 0.3).
    r = send(
        client,
        sim,
        "binance",
        Prepared("POST", "/api/v3/order", v["query"], form, v["body"] + "&signature=" + v["expected"].upper()),
    )
    assert r.status_code == 200, r.text
    assert [x.verdict for x in sim.config.received] == [ACCEPTED] * 6
    # The same request a second later than the 5000 ms recvWindow allows.
    set_clock(sim, 1499827319559 + 5001)
    r = send(
        client,
        sim,
        "binance",
        Prepared("POST", "/api/v3/order", v["query"], form, v["body"] + "&signature=" + v["expected"]),
    )
    assert (r.status_code, r.json()["code"]) == (400, -1021)


def test_published_binance_ed25519_fixture_accepted(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account("binance", "ed-key", BINANCE_ED25519_PEM, key_type="ed25519")
    payload = BINANCE_ED25519_PAYLOAD
    set_clock(sim, 1668481559918 + 10)
    headers = {"X-MBX-APIKEY": "ed-key", "Content-Type": "application/x-www-form-urlencoded"}
    r = send(
        client,
        sim,
        "binance",
        Prepared("POST", "/api/v3/order", "", headers, payload + "&signature=" + quote(BINANCE_ED25519_SIG, safe="")),
    )
    assert r.status_code == 200, r.text
    # Not percent-encoded: a '+' in the base64 decodes to a space and the signature no longer verifies.
    template = payload
    for ts in range(1668481559918, 1668481559918 + 50):
        payload = template.replace("timestamp=1668481559918", f"timestamp={ts}")
        sig = asym_sign_b64(BINANCE_ED25519_PEM, payload.encode())
        if "+" in sig:
            break
    assert "+" in sig
    r = send(client, sim, "binance", Prepared("POST", "/api/v3/order", "", headers, payload + "&signature=" + sig))
    assert (r.status_code, r.json()["code"]) == (400, -1022)
    r = send(
        client,
        sim,
        "binance",
        Prepared("POST", "/api/v3/order", "", headers, payload + "&signature=" + quote(sig, safe="")),
    )
    assert r.status_code == 200, r.text


def test_published_kraken_request_accepted_then_replay_refused(sim: SimulatorServer, client: httpx.Client) -> None:
    v = vector("kraken", "spot-addorder")
    sim.config.add_account("kraken", "kraken-key", v["secret"])
    headers = {"API-Key": "kraken-key", "API-Sign": v["expected"], "Content-Type": "application/x-www-form-urlencoded"}
    r = send(client, sim, "kraken", Prepared("POST", v["path"], "", headers, v["body"]))
    assert r.json()["error"] == [], r.text
    r = send(client, sim, "kraken", Prepared("POST", v["path"], "", headers, v["body"]))  # replay
    assert (r.status_code, r.json()["error"]) == (200, ["EAPI:Invalid nonce"])
    lower = str(int(v["nonce"]) - 1)
    body = v["body"].replace(v["nonce"], lower)
    headers["API-Sign"] = kraken_sign(v["secret"], v["path"], lower, body)
    r = send(client, sim, "kraken", Prepared("POST", v["path"], "", headers, body))
    assert r.json()["error"] == ["EAPI:Invalid nonce"]
    assert [x.verdict for x in sim.config.received] == [ACCEPTED, BAD_NONCE, BAD_NONCE]


def test_published_kucoin_request_accepted(sim: SimulatorServer, client: httpx.Client) -> None:
    v = vector("kucoin", "sign")
    sim.config.add_account("kucoin", "kc-key", v["secret"], passphrase="Ab12345678)(*&^%$#@")
    set_clock(sim, 1547015186532 + 100)
    headers = {
        "KC-API-KEY": "kc-key",
        "KC-API-SIGN": v["expected"],
        "KC-API-TIMESTAMP": "1547015186532",
        "KC-API-PASSPHRASE": "F2p2bNS1bBehHvC/Z4YkB7l1Wd0Pq2iV/oLHM/DyE+I=",
        "KC-API-KEY-VERSION": "2",
        "Content-Type": "application/json",
    }
    r = send(client, sim, "kucoin", Prepared("POST", "/api/v1/deposit-addresses", "", headers, '{"currency":"BTC"}'))
    assert r.json()["code"] == "200000", r.text
    # The doc's own curl example sends the plain base64 of the passphrase with version 2: refused.
    headers["KC-API-PASSPHRASE"] = "QWIxMjM0NTY3OCkoKiZeJSQjQA=="
    r = send(client, sim, "kucoin", Prepared("POST", "/api/v1/deposit-addresses", "", headers, '{"currency":"BTC"}'))
    assert r.json()["code"] == "400004"


@pytest.mark.parametrize("name", ["get", "post"])
def test_published_gate_requests_accepted(sim: SimulatorServer, client: httpx.Client, name: str) -> None:
    v = vector("gate", name)
    sim.config.add_account("gate", "key", v["secret"])
    set_clock(sim, int(v["timestamp"]) * 1000 + 500)
    headers = {"KEY": "key", "Timestamp": v["timestamp"], "SIGN": v["expected"], "Content-Type": "application/json"}
    r = send(client, sim, "gate", Prepared(v["method"], v["path"], v["query"], headers, v["body"]))
    assert r.status_code in (200, 201), r.text
    assert sim.config.received[-1].verdict == ACCEPTED


# =================================================================================================
# 3. Every exchange: a hand-signed request is accepted; each fault gets that exchange's own error
# =================================================================================================


@dataclass
class Ctx:
    key: str
    secret: str
    passphrase: str | None
    key_type: str
    now_ms: int
    host: str
    mount: str
    tamper: Callable[[str], str] = lambda s: s
    kucoin_version: str = "2"


@dataclass
class Spec:
    exchange: str
    build: Callable[[str, Ctx], Prepared]  # kind ("read"|"trade"|"withdraw"|"keyinfo") -> request
    time_path: str
    time_ms: Callable[[Any], int]
    code: Callable[[httpx.Response], Any]
    errors: dict[str, tuple[int, Any]]
    passphrase: bool = False
    kinds: tuple[str, ...] = ("read", "trade", "withdraw", "keyinfo")
    tight_window: bool = False  # a 15 s clock skew is outside the window
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))


def _binance(kind: str, c: Ctx, futures: bool = False) -> Prepared:
    routes = {
        "read": ("GET", "/fapi/v2/balance" if futures else "/api/v3/account", []),
        "trade": (
            "POST",
            "/fapi/v1/order" if futures else "/api/v3/order",
            [
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.001"),
                ("price", "30000"),
            ],
        ),
        "keyinfo": ("GET", "/sapi/v1/account/apiRestrictions", []),
        "withdraw": (
            "POST",
            "/sapi/v1/capital/withdraw/apply",
            [("coin", "USDT"), ("address", "TXYZ"), ("amount", "10")],
        ),
    }
    method, path, params = routes[kind]
    payload = urlencode([*params, ("recvWindow", "5000"), ("timestamp", str(c.now_ms))])
    if c.key_type == "hmac":
        sig = hmac_hex(c.secret.encode(), payload.encode())
    else:
        sig = asym_sign_b64(c.secret, payload.encode())
    full = payload + "&signature=" + quote(c.tamper(sig), safe="")
    headers = {"X-MBX-APIKEY": c.key}
    if method == "POST":
        return Prepared(method, path, "", {**headers, "Content-Type": "application/x-www-form-urlencoded"}, full)
    return Prepared(method, path, full, headers)


def _okx(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/api/v5/account/balance", "ccy=BTC,USDT", ""),
        "trade": (
            "POST",
            "/api/v5/trade/order",
            "",
            '{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"limit","px":"30000","sz":"0.01"}',
        ),
        "keyinfo": ("GET", "/api/v5/account/config", "", ""),
        "withdraw": (
            "POST",
            "/api/v5/asset/withdrawal",
            "",
            '{"ccy":"USDT","amt":"10","dest":"4","toAddr":"TXYZ","chain":"USDT-TRC20"}',
        ),
    }
    method, path, query, body = routes[kind]
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(c.now_ms // 1000)) + f".{c.now_ms % 1000:03d}Z"
    target = path + ("?" + query if query else "")
    sig = hmac_b64(c.secret.encode(), (ts + method + target + body).encode())
    headers = {
        "OK-ACCESS-KEY": c.key,
        "OK-ACCESS-SIGN": c.tamper(sig),
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-PASSPHRASE": c.passphrase or "",
        "Content-Type": "application/json",
    }
    return Prepared(method, path, query, headers, body)


def _bybit(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/v5/account/wallet-balance", "accountType=UNIFIED&coin=BTC", ""),
        "trade": (
            "POST",
            "/v5/order/create",
            "",
            '{"category":"spot","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.01","price":"30000"}',
        ),
        "keyinfo": ("GET", "/v5/user/query-api", "", ""),
        "withdraw": (
            "POST",
            "/v5/asset/withdraw/create",
            "",
            '{"coin":"USDT","chain":"TRX","address":"TXYZ","amount":"10","timestamp":1}',
        ),
    }
    method, path, query, body = routes[kind]
    ts, recv = str(c.now_ms), "5000"
    prehash = ts + c.key + recv + (query if method == "GET" else body)
    sig = (
        hmac_hex(c.secret.encode(), prehash.encode())
        if c.key_type == "hmac"
        else asym_sign_b64(c.secret, prehash.encode())
    )
    headers = {
        "X-BAPI-API-KEY": c.key,
        "X-BAPI-TIMESTAMP": ts,
        "X-BAPI-RECV-WINDOW": recv,
        "X-BAPI-SIGN": c.tamper(sig),
        "X-BAPI-SIGN-TYPE": "2",
        "Content-Type": "application/json",
    }
    return Prepared(method, path, query, headers, body)


_kraken_nonce = [int(time.time() * 1000) * 1000]
_kraken_lock = threading.Lock()


def _kraken(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": "/0/private/Balance",
        "trade": "/0/private/AddOrder",
        "withdraw": "/0/private/Withdraw",
    }
    path = routes[kind]
    with _kraken_lock:
        _kraken_nonce[0] += 1
        nonce = str(_kraken_nonce[0])
    extra = {
        "trade": "&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25",
        "withdraw": "&asset=XBT&key=wallet&amount=0.1",
    }
    body = "nonce=" + nonce + extra.get(kind, "")
    sig = kraken_sign(c.secret, path, nonce, body)
    headers = {
        "API-Key": c.key,
        "API-Sign": c.tamper(sig),
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "sim-test",
    }
    return Prepared("POST", path, "", headers, body)


def _coinbase(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/api/v3/brokerage/accounts", "limit=10", ""),
        "trade": (
            "POST",
            "/api/v3/brokerage/orders",
            "",
            '{"client_order_id":"abc","product_id":"BTC-USD","side":"BUY","order_configuration":{"market_market_ioc":{"quote_size":"10"}}}',
        ),
        "keyinfo": ("GET", "/api/v3/brokerage/key_permissions", "", ""),
        "withdraw": (
            "POST",
            "/v2/accounts/0c8a3e2f-0000-4000-8000-000000000000/transactions",
            "",
            '{"type":"send","to":"bc1qxyz","amount":"0.01","currency":"BTC"}',
        ),
    }
    method, path, query, body = routes[kind]
    token = coinbase_jwt(c.key, c.secret, c.key_type, f"{method} {c.host}{c.mount}{path}", c.now_ms // 1000)
    head, claims, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
    if c.tamper("A") != "A":  # flip one bit of the signature bytes
        raw[0] ^= 0x01
    token = f"{head}.{claims}.{b64url(bytes(raw))}"
    return Prepared(method, path, query, {"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body)


def _coinbaseexchange(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/accounts", "", ""),
        "trade": (
            "POST",
            "/orders",
            "",
            '{"product_id":"BTC-USD","side":"buy","type":"limit","price":"30000.00","size":"0.01"}',
        ),
        "withdraw": (
            "POST",
            "/withdrawals/crypto",
            "",
            '{"amount":"0.01","currency":"BTC","crypto_address":"bc1qxyz"}',
        ),
    }
    method, path, query, body = routes[kind]
    ts = f"{c.now_ms / 1000:.3f}"
    sig = hmac_b64(base64.b64decode(c.secret), (ts + method + path + ("?" + query if query else "") + body).encode())
    headers = {
        "CB-ACCESS-KEY": c.key,
        "CB-ACCESS-SIGN": c.tamper(sig),
        "CB-ACCESS-TIMESTAMP": ts,
        "CB-ACCESS-PASSPHRASE": c.passphrase or "",
        "Content-Type": "application/json",
    }
    return Prepared(method, path, query, headers, body)


def _cryptocom(kind: str, c: Ctx) -> Prepared:
    routes: dict[str, tuple[str, dict[str, Any]]] = {
        "read": ("private/user-balance", {}),
        "trade": (
            "private/create-order",
            {
                "instrument_name": "BTCUSD-PERP",
                "side": "BUY",
                "type": "LIMIT",
                "price": "30000",
                "quantity": "0.01",
                "client_oid": "c-1",
            },
        ),
        "withdraw": (
            "private/create-withdrawal",
            {"currency": "BTC", "amount": "0.01", "address": "bc1qxyz", "client_wid": "w-1"},
        ),
    }
    method, params = routes[kind]
    req_id = 7
    sig = cryptocom_sig(c.secret, method, req_id, c.key, params, c.now_ms)
    body = json.dumps(
        {"id": req_id, "method": method, "api_key": c.key, "params": params, "nonce": c.now_ms, "sig": c.tamper(sig)}
    )
    return Prepared("POST", "/exchange/v1/" + method, "", {"Content-Type": "application/json"}, body)


def _kucoin(kind: str, c: Ctx, futures: bool = False) -> Prepared:
    routes = {
        "read": ("GET", "/api/v1/account-overview", "currency=USDT", "")
        if futures
        else ("GET", "/api/v1/accounts", "currency=USDT&type=trade", ""),
        "trade": (
            "POST",
            "/api/v1/orders",
            "",
            '{"clientOid":"c-1","side":"buy","symbol":"BTC-USDT","type":"limit","price":"30000","size":"0.01"}',
        ),
        "keyinfo": ("GET", "/api/v1/user/api-key", "", ""),
        "withdraw": (
            "POST",
            "/api/v1/withdrawals",
            "",
            '{"currency":"USDT","address":"TXYZ","amount":"10","chain":"trx"}',
        ),
    }
    method, path, query, body = routes[kind]
    ts = str(c.now_ms)
    sig = hmac_b64(c.secret.encode(), (ts + method + path + ("?" + query if query else "") + body).encode())
    passphrase = c.passphrase or ""
    headers = {
        "KC-API-KEY": c.key,
        "KC-API-SIGN": c.tamper(sig),
        "KC-API-TIMESTAMP": ts,
        "KC-API-PASSPHRASE": kucoin_passphrase(c.secret, passphrase) if c.kucoin_version != "1" else passphrase,
        "KC-API-KEY-VERSION": c.kucoin_version,
        "Content-Type": "application/json",
    }
    return Prepared(method, path, query, headers, body)


def _bitget(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/api/v2/spot/account/assets", "coin=USDT", ""),
        "trade": (
            "POST",
            "/api/v2/spot/trade/place-order",
            "",
            '{"symbol":"BTCUSDT","side":"buy","orderType":"limit","force":"gtc","price":"30000","size":"0.01"}',
        ),
        "keyinfo": ("GET", "/api/v2/spot/account/info", "", ""),
        "withdraw": (
            "POST",
            "/api/v2/spot/wallet/withdrawal",
            "",
            '{"coin":"USDT","transferType":"on_chain","address":"TXYZ","chain":"trc20","size":"10"}',
        ),
    }
    method, path, query, body = routes[kind]
    ts = str(c.now_ms)
    prehash = (ts + method + path + ("?" + query if query else "") + body).encode()
    sig = hmac_b64(c.secret.encode(), prehash) if c.key_type == "hmac" else asym_sign_b64(c.secret, prehash)
    headers = {
        "ACCESS-KEY": c.key,
        "ACCESS-SIGN": c.tamper(sig),
        "ACCESS-TIMESTAMP": ts,
        "ACCESS-PASSPHRASE": c.passphrase or "",
        "locale": "en-US",
        "Content-Type": "application/json",
    }
    return Prepared(method, path, query, headers, body)


def _gate(kind: str, c: Ctx) -> Prepared:
    routes = {
        "read": ("GET", "/api/v4/spot/accounts", "currency=USDT", ""),
        "trade": (
            "POST",
            "/api/v4/spot/orders",
            "",
            '{"currency_pair":"BTC_USDT","side":"buy","amount":"0.01","price":"30000"}',
        ),
        "keyinfo": ("GET", "/api/v4/account/detail", "", ""),
        "withdraw": (
            "POST",
            "/api/v4/withdrawals",
            "",
            '{"currency":"USDT","address":"TXYZ","amount":"10","chain":"TRX"}',
        ),
    }
    method, path, query, body = routes[kind]
    ts = str(c.now_ms // 1000)
    sig = gate_sign(c.secret, method, path, query, body, ts)
    headers = {"KEY": c.key, "Timestamp": ts, "SIGN": c.tamper(sig), "Content-Type": "application/json"}
    return Prepared(method, path, query, headers, body)


def _json_code(field_name: str) -> Callable[[httpx.Response], Any]:
    return lambda r: r.json()[field_name]


SPECS = [
    Spec(
        "binance",
        _binance,
        "/api/v3/time",
        lambda j: j["serverTime"],
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, -2015),
            IP_NOT_WHITELISTED: (401, -2015),
            BAD_TIMESTAMP: (400, -1021),
            BAD_SIGNATURE: (400, -1022),
            PERMISSION_DENIED: (401, -2015),
        },
        tight_window=True,
    ),
    Spec(
        "binanceusdm",
        lambda k, c: _binance(k, c, futures=True),
        "/fapi/v1/time",
        lambda j: j["serverTime"],
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, -2015),
            IP_NOT_WHITELISTED: (401, -2015),
            BAD_TIMESTAMP: (400, -1021),
            BAD_SIGNATURE: (400, -1022),
            PERMISSION_DENIED: (401, -2015),
        },
        tight_window=True,
    ),
    Spec(
        "okx",
        _okx,
        "/api/v5/public/time",
        lambda j: int(j["data"][0]["ts"]),
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, "50111"),
            IP_NOT_WHITELISTED: (401, "50110"),
            BAD_PASSPHRASE: (401, "50105"),
            BAD_TIMESTAMP: (401, "50102"),
            BAD_SIGNATURE: (401, "50113"),
            PERMISSION_DENIED: (401, "50120"),
        },
        passphrase=True,
    ),
    Spec(
        "bybit",
        _bybit,
        "/v5/market/time",
        lambda j: int(j["result"]["timeNano"]) // 10**6,
        _json_code("retCode"),
        {
            UNKNOWN_KEY: (200, 10003),
            IP_NOT_WHITELISTED: (200, 10010),
            BAD_TIMESTAMP: (200, 10002),
            BAD_SIGNATURE: (200, 10004),
            PERMISSION_DENIED: (200, 10005),
        },
        tight_window=True,
    ),
    Spec(
        "kraken",
        _kraken,
        "/0/public/Time",
        lambda j: j["result"]["unixtime"] * 1000,
        lambda r: r.json()["error"][0],
        {
            UNKNOWN_KEY: (200, "EAPI:Invalid key"),
            IP_NOT_WHITELISTED: (200, "EGeneral:Permission denied"),
            BAD_SIGNATURE: (200, "EAPI:Invalid signature"),
            PERMISSION_DENIED: (200, "EGeneral:Permission denied"),
        },
        kinds=("read", "trade", "withdraw"),
        secret=base64.b64encode(secrets.token_bytes(64)).decode(),
    ),
    Spec(
        "coinbase",
        _coinbase,
        "/api/v3/brokerage/time",
        lambda j: int(j["epochMillis"]),
        _json_code("error"),
        {
            UNKNOWN_KEY: (401, "invalid_token"),
            IP_NOT_WHITELISTED: (401, "invalid_token"),
            BAD_TIMESTAMP: (401, "expired_token"),
            BAD_SIGNATURE: (401, "invalid_token"),
            PERMISSION_DENIED: (403, "PERMISSION_DENIED"),
        },
        tight_window=True,
        secret=new_ec_pem(),
    ),
    Spec(
        "coinbaseexchange",
        _coinbaseexchange,
        "/time",
        lambda j: int(j["epoch"] * 1000),
        _json_code("message"),
        {
            UNKNOWN_KEY: (400, "Invalid API Key"),
            IP_NOT_WHITELISTED: (401, "Unauthorized."),
            BAD_PASSPHRASE: (401, "Invalid Passphrase"),
            BAD_TIMESTAMP: (401, "invalid timestamp"),
            BAD_SIGNATURE: (401, "invalid signature"),
            PERMISSION_DENIED: (403, "Forbidden"),
        },
        passphrase=True,
        kinds=("read", "trade", "withdraw"),
        secret=base64.b64encode(secrets.token_bytes(64)).decode(),
    ),
    Spec(
        "cryptocom",
        _cryptocom,
        "/exchange/v1/public/get-tickers",
        lambda j: j["result"]["data"][0]["t"],
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, 40101),
            IP_NOT_WHITELISTED: (401, 40103),
            BAD_TIMESTAMP: (401, 40102),
            BAD_SIGNATURE: (401, 40101),
            PERMISSION_DENIED: (401, 40101),
        },
        kinds=("read", "trade", "withdraw"),
    ),
    Spec(
        "kucoin",
        _kucoin,
        "/api/v1/timestamp",
        lambda j: j["data"],
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, "400003"),
            IP_NOT_WHITELISTED: (401, "400006"),
            BAD_PASSPHRASE: (401, "400004"),
            BAD_TIMESTAMP: (401, "400002"),
            BAD_SIGNATURE: (401, "400005"),
            PERMISSION_DENIED: (403, "400007"),
        },
        passphrase=True,
        tight_window=True,
    ),
    Spec(
        "kucoinfutures",
        lambda k, c: _kucoin(k, c, futures=True),
        "/api/v1/timestamp",
        lambda j: j["data"],
        _json_code("code"),
        {
            UNKNOWN_KEY: (401, "400003"),
            IP_NOT_WHITELISTED: (401, "400006"),
            BAD_PASSPHRASE: (401, "400004"),
            BAD_TIMESTAMP: (401, "400002"),
            BAD_SIGNATURE: (401, "400005"),
            PERMISSION_DENIED: (403, "400007"),
        },
        passphrase=True,
        kinds=("read", "trade", "withdraw"),
        tight_window=True,
    ),
    Spec(
        "bitget",
        _bitget,
        "/api/v2/public/time",
        lambda j: int(j["data"]["serverTime"]),
        _json_code("code"),
        {
            UNKNOWN_KEY: (400, "40006"),
            IP_NOT_WHITELISTED: (400, "40018"),
            BAD_PASSPHRASE: (400, "40012"),
            BAD_TIMESTAMP: (400, "40008"),
            BAD_SIGNATURE: (400, "40009"),
            PERMISSION_DENIED: (400, "40014"),
        },
        passphrase=True,
    ),
    Spec(
        "gate",
        _gate,
        "/api/v4/spot/time",
        lambda j: j["server_time"],
        _json_code("label"),
        {
            UNKNOWN_KEY: (401, "INVALID_KEY"),
            IP_NOT_WHITELISTED: (403, "IP_FORBIDDEN"),
            BAD_TIMESTAMP: (401, "REQUEST_EXPIRED"),
            BAD_SIGNATURE: (401, "INVALID_SIGNATURE"),
            PERMISSION_DENIED: (403, "READ_ONLY"),
        },
    ),
]
SPEC_IDS = [s.exchange for s in SPECS]
assert sorted(SPEC_IDS) == sorted(EXCHANGE_IDS)


def key_type_of(spec: Spec) -> str:
    return "ecdsa" if spec.exchange == "coinbase" else "hmac"


def setup_account(sim: SimulatorServer, spec: Spec, **fields: Any) -> Ctx:
    key = "organizations/org-1/apiKeys/key-1" if spec.exchange == "coinbase" else f"{spec.exchange}-key-1"
    passphrase = "Correct Horse 1!" if spec.passphrase else None
    fields.setdefault("key_type", key_type_of(spec))
    sim.config.add_account(spec.exchange, key, spec.secret, passphrase=passphrase, **fields)
    host = sim.url.removeprefix("http://")
    return Ctx(key, spec.secret, passphrase, fields["key_type"], int(time.time() * 1000), host, f"/{spec.exchange}")


def assert_refused(r: httpx.Response, spec: Spec, verdict: str, sim: SimulatorServer) -> None:
    status, code = spec.errors[verdict]
    assert (r.status_code, spec.code(r)) == (status, code), r.text
    assert sim.config.received[-1].verdict == verdict


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_exchange_accepts_and_refuses(sim: SimulatorServer, client: httpx.Client, spec: Spec) -> None:
    ctx = setup_account(sim, spec, can_withdraw=True)
    for kind in spec.kinds:
        ctx.now_ms = int(time.time() * 1000)
        r = send(client, sim, spec.exchange, spec.build(kind, ctx))
        assert r.status_code in (200, 201, 202), (kind, r.text)
        assert sim.config.received[-1].verdict == ACCEPTED, (kind, sim.config.received[-1].detail)
    assert all(x.client_ip == "127.0.0.1" for x in sim.config.received)

    # A flipped signature byte.
    ctx.now_ms = int(time.time() * 1000)
    assert_refused(
        send(client, sim, spec.exchange, spec.build("read", Ctx(**{**ctx.__dict__, "tamper": flip}))),
        spec,
        BAD_SIGNATURE,
        sim,
    )

    # An unknown key.
    other = Ctx(
        **{**ctx.__dict__, "key": "organizations/org-1/apiKeys/nobody" if spec.exchange == "coinbase" else "nobody"}
    )
    assert_refused(send(client, sim, spec.exchange, spec.build("read", other)), spec, UNKNOWN_KEY, sim)

    # A wrong passphrase.
    if spec.passphrase:
        wrong = Ctx(**{**ctx.__dict__, "passphrase": "wrong passphrase"})
        assert_refused(send(client, sim, spec.exchange, spec.build("read", wrong)), spec, BAD_PASSPHRASE, sim)

    # A stale timestamp (two minutes: outside every window, 60 s at most). Kraken has a nonce instead.
    if BAD_TIMESTAMP in spec.errors:
        stale = Ctx(**{**ctx.__dict__, "now_ms": int(time.time() * 1000) - 120_000})
        assert_refused(send(client, sim, spec.exchange, spec.build("read", stale)), spec, BAD_TIMESTAMP, sim)

    # Permissions: trading needs can_trade, withdrawing needs can_withdraw (the request is still recorded).
    account = sim.config.get_account(spec.exchange, ctx.key)
    assert account is not None
    account.can_trade, account.can_withdraw = False, False
    ctx.now_ms = int(time.time() * 1000)
    assert_refused(send(client, sim, spec.exchange, spec.build("trade", ctx)), spec, PERMISSION_DENIED, sim)
    ctx.now_ms = int(time.time() * 1000)
    r = send(client, sim, spec.exchange, spec.build("withdraw", ctx))
    assert sim.config.received[-1].verdict == PERMISSION_DENIED
    if spec.exchange == "gate":
        assert (r.status_code, r.json()["label"]) == (403, "FORBIDDEN")
    else:
        assert (r.status_code, spec.code(r)) == spec.errors[PERMISSION_DENIED]
    assert sim.config.received[-1].path.endswith(spec.build("withdraw", ctx).path)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_ip_whitelist(sim: SimulatorServer, client: httpx.Client, spec: Spec) -> None:
    ctx = setup_account(sim, spec, ip_whitelist={"127.0.0.2"})
    r = send(client, sim, spec.exchange, spec.build("read", ctx))
    assert_refused(r, spec, IP_NOT_WHITELISTED, sim)
    assert sim.config.received[-1].client_ip == "127.0.0.1"
    sim.config.get_account(spec.exchange, ctx.key).ip_whitelist = {"127.0.0.1"}  # type: ignore[union-attr]
    ctx.now_ms = int(time.time() * 1000)
    r = send(client, sim, spec.exchange, spec.build("read", ctx))
    assert r.status_code == 200 and sim.config.received[-1].verdict == ACCEPTED, r.text


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_clock_15s_behind(sim: SimulatorServer, client: httpx.Client, spec: Spec) -> None:
    ctx = setup_account(sim, spec)
    sim.config.clock_offset_ms = -15_000
    server_ms = spec.time_ms(client.get(sim.url_for(spec.exchange) + spec.time_path).json())
    assert abs(server_ms - (time.time() * 1000 - 15_000)) < 2_000
    ctx.now_ms = server_ms
    r = send(client, sim, spec.exchange, spec.build("read", ctx))
    assert r.status_code == 200 and sim.config.received[-1].verdict == ACCEPTED, r.text
    if spec.tight_window:  # the local clock, 15 s ahead of the exchange, is refused
        ctx.now_ms = int(time.time() * 1000)
        r = send(client, sim, spec.exchange, spec.build("read", ctx))
        assert sim.config.received[-1].verdict == BAD_TIMESTAMP, r.text
        assert r.status_code == spec.errors[BAD_TIMESTAMP][0]


def test_source_address_127_0_0_2_is_seen(sim: SimulatorServer) -> None:
    spec = SPECS[SPEC_IDS.index("okx")]
    ctx = setup_account(sim, spec, ip_whitelist={"127.0.0.2"})
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=5) as other:
        r = send(other, sim, "okx", spec.build("read", ctx))
    assert r.status_code == 200 and r.json()["code"] == "0", r.text
    assert sim.config.received[-1].client_ip == "127.0.0.2"
    # A forwarding header never stands in for the peer address.
    with httpx.Client(timeout=5) as c:
        p = spec.build("read", ctx)
        p.headers["X-Forwarded-For"] = "127.0.0.2"
        p.headers["X-Real-IP"] = "127.0.0.2"
        r = send(c, sim, "okx", p)
    assert r.json()["code"] == "50110"
    assert sim.config.received[-1].client_ip == "127.0.0.1"


# =================================================================================================
# 4. Exchange-specific rules
# =================================================================================================


def _binance_req(secret: str, params: str, *, sig_payload: str | None = None) -> str:
    sig = hmac_hex(secret.encode(), (sig_payload if sig_payload is not None else params).encode())
    return params + "&signature=" + sig


def test_binance_parameter_rules(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account("binance", "k", "s3cret")
    h = {"X-MBX-APIKEY": "k"}
    form = {**h, "Content-Type": "application/x-www-form-urlencoded"}
    now = int(time.time() * 1000)

    def get(query: str) -> httpx.Response:
        return send(client, sim, "binance", Prepared("GET", "/api/v3/account", query, h))

    assert get(_binance_req("s3cret", f"timestamp={now}")).status_code == 200
    # Two timestamps (e.g. one smuggled in by the caller): refused as a duplicate.
    r = get(_binance_req("s3cret", f"timestamp={now - 100000}&timestamp={now}"))
    assert (r.status_code, r.json()["code"]) == (400, -1101)
    assert sim.config.received[-1].verdict == DUPLICATE_PARAMETER
    # Two signatures.
    r = get(_binance_req("s3cret", f"timestamp={now}") + "&signature=00")
    assert (r.status_code, r.json()["code"]) == (400, -1101)
    # A timestamp in the query and another in the body.
    r = send(
        client,
        sim,
        "binance",
        Prepared(
            "POST",
            "/api/v3/order",
            f"timestamp={now - 100000}",
            form,
            _binance_req("s3cret", f"timestamp={now}", sig_payload=f"timestamp={now - 100000}timestamp={now}"),
        ),
    )
    assert (r.status_code, r.json()["code"]) == (400, -1101)
    # The signature must come last: a parameter after it is refused even if the signature covers it.
    q = f"symbol=BTCUSDT&timestamp={now}"
    sig = hmac_hex(b"s3cret", (q + "&side=BUY").encode())
    r = get(f"{q}&signature={sig}&side=BUY")
    assert (r.status_code, r.json()["code"]) == (400, -1022)
    # Signature in the query while the body carries parameters: covers query + body, no separator.
    body = f"symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1&timestamp={now}"
    sig = hmac_hex(b"s3cret", ("newOrderRespType=ACK" + body).encode())
    r = send(
        client, sim, "binance", Prepared("POST", "/api/v3/order", f"newOrderRespType=ACK&signature={sig}", form, body)
    )
    assert r.status_code == 200, r.text
    # Missing timestamp / signature.
    assert get(_binance_req("s3cret", "symbol=BTCUSDT")).json()["code"] == -1102
    assert get(f"timestamp={now}").json()["code"] == -1102
    # Timing: > 1000 ms ahead refused; 999 ms ahead accepted; recvWindow widens the past side; cap 60000.
    assert get(_binance_req("s3cret", f"timestamp={int(time.time() * 1000) + 1500}")).json()["code"] == -1021
    assert get(_binance_req("s3cret", f"timestamp={int(time.time() * 1000) + 900}")).status_code == 200
    old = int(time.time() * 1000) - 20_000
    assert get(_binance_req("s3cret", f"timestamp={old}")).json()["code"] == -1021
    assert get(_binance_req("s3cret", f"recvWindow=30000&timestamp={old}")).status_code == 200
    assert get(_binance_req("s3cret", f"recvWindow=60001&timestamp={old}")).json()["code"] == -1131
    # Microsecond timestamps are allowed.
    assert get(_binance_req("s3cret", f"timestamp={int(time.time() * 1_000_000)}")).status_code == 200
    # No API key header.
    r = send(client, sim, "binance", Prepared("GET", "/api/v3/account", _binance_req("s3cret", f"timestamp={now}")))
    assert (r.status_code, r.json()["code"]) == (401, -2014)


@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_binance_asymmetric_keys(sim: SimulatorServer, client: httpx.Client, key_type: str) -> None:
    pem = new_ed25519_pem() if key_type == "ed25519" else new_rsa_pem()
    spec = SPECS[SPEC_IDS.index("binance")]
    sim.config.add_account("binance", "asym", pem, key_type=key_type, can_withdraw=True)
    ctx = Ctx("asym", pem, None, key_type, 0, "", "/binance")
    for kind in ("read", "trade", "keyinfo", "withdraw"):
        ctx.now_ms = int(time.time() * 1000)
        r = send(client, sim, "binance", spec.build(kind, ctx))
        assert r.status_code == 200, r.text
    ctx.tamper = flip
    assert_refused(send(client, sim, "binance", spec.build("read", ctx)), spec, BAD_SIGNATURE, sim)
    # Another key's signature does not verify.
    ctx.tamper, ctx.secret = (lambda s: s), new_ed25519_pem()
    assert_refused(send(client, sim, "binance", spec.build("read", ctx)), spec, BAD_SIGNATURE, sim)


@pytest.mark.parametrize("exchange", ["bybit", "bitget"])
def test_rsa_keys_bybit_bitget(sim: SimulatorServer, client: httpx.Client, exchange: str) -> None:
    spec = SPECS[SPEC_IDS.index(exchange)]
    pem = new_rsa_pem()
    sim.config.add_account(exchange, "rsa-key", pem, key_type="rsa", passphrase="pw")
    ctx = Ctx("rsa-key", pem, "pw", "rsa", int(time.time() * 1000), "", f"/{exchange}")
    assert send(client, sim, exchange, spec.build("read", ctx)).status_code == 200
    assert sim.config.received[-1].verdict == ACCEPTED
    ctx.tamper = flip
    assert_refused(send(client, sim, exchange, spec.build("read", ctx)), spec, BAD_SIGNATURE, sim)


def test_bybit_recv_window(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account("bybit", "k", "s")
    ts = int(time.time() * 1000) - 8000
    query = "accountType=UNIFIED"

    def call(recv: str | None) -> httpx.Response:
        prehash = f"{ts}k{recv or ''}{query}"
        headers = {"X-BAPI-API-KEY": "k", "X-BAPI-TIMESTAMP": str(ts), "X-BAPI-SIGN": hmac_hex(b"s", prehash.encode())}
        if recv is not None:
            headers["X-BAPI-RECV-WINDOW"] = recv
        return send(client, sim, "bybit", Prepared("GET", "/v5/account/wallet-balance", query, headers))

    assert call("5000").json()["retCode"] == 10002  # 8 s old, window 5 s
    assert call("10000").json()["retCode"] == 0
    assert call(None).json()["retCode"] == 10002  # default window 5000


def test_okx_timestamp_format(sim: SimulatorServer, client: httpx.Client) -> None:
    spec = SPECS[SPEC_IDS.index("okx")]
    ctx = setup_account(sim, spec)
    p = spec.build("read", ctx)
    p.headers["OK-ACCESS-TIMESTAMP"] = str(ctx.now_ms)  # ms epoch instead of ISO-8601
    r = send(client, sim, "okx", p)
    assert (r.status_code, r.json()["code"]) == (401, "50112")
    p = spec.build("read", ctx)
    del p.headers["OK-ACCESS-PASSPHRASE"]
    assert send(client, sim, "okx", p).json()["code"] == "50104"
    # A repeated auth header is refused (the proxy and the exchange might each read a different copy).
    p = spec.build("read", Ctx(**{**ctx.__dict__, "now_ms": int(time.time() * 1000)}))
    doubled = [*p.headers.items(), ("OK-ACCESS-TIMESTAMP", p.headers["OK-ACCESS-TIMESTAMP"])]
    r = client.get(sim.url_for("okx") + p.path + "?" + p.query, headers=doubled)
    assert r.status_code == 401 and sim.config.received[-1].verdict == DUPLICATE_PARAMETER
    # The query string is part of the signed path: moving it out of the prehash breaks the signature.
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
    p.headers |= {"OK-ACCESS-PASSPHRASE": ctx.passphrase, "OK-ACCESS-TIMESTAMP": ts}
    p.headers["OK-ACCESS-SIGN"] = hmac_b64(ctx.secret.encode(), (ts + "GET" + p.path).encode())
    assert send(client, sim, "okx", p).json()["code"] == "50113"


def test_kucoin_key_versions(sim: SimulatorServer, client: httpx.Client) -> None:
    spec = SPECS[SPEC_IDS.index("kucoin")]
    ctx = setup_account(sim, spec)
    # A v2 key sending the plain passphrase (version header 1) is refused.
    v1 = Ctx(**{**ctx.__dict__, "kucoin_version": "1"})
    assert_refused(send(client, sim, "kucoin", spec.build("read", v1)), spec, BAD_PASSPHRASE, sim)
    # Version 3 (universal SDK) uses the same HMAC passphrase.
    v3 = Ctx(**{**ctx.__dict__, "kucoin_version": "3"})
    assert send(client, sim, "kucoin", spec.build("read", v3)).json()["code"] == "200000"
    # A version-1 key takes the plain passphrase.
    sim.config.get_account("kucoin", ctx.key).kucoin_key_version = 1  # type: ignore[union-attr]
    v1.now_ms = int(time.time() * 1000)
    assert send(client, sim, "kucoin", spec.build("read", v1)).json()["code"] == "200000"
    # Key info reports the permissions.
    sim.config.get_account("kucoin", ctx.key).kucoin_key_version = 2  # type: ignore[union-attr]
    ctx.now_ms = int(time.time() * 1000)
    info = send(client, sim, "kucoin", spec.build("keyinfo", ctx)).json()["data"]
    assert "Transfer" not in info["permission"].split(",")


def test_kraken_nonce_per_key_and_permission_consumes_nonce(sim: SimulatorServer, client: httpx.Client) -> None:
    secret = base64.b64encode(b"k" * 64).decode()
    sim.config.add_account("kraken", "a", secret, can_trade=False)
    sim.config.add_account("kraken", "b", secret)

    def call(key: str, nonce: int, path: str = "/0/private/Balance") -> httpx.Response:
        body = f"nonce={nonce}"
        headers = {
            "API-Key": key,
            "API-Sign": kraken_sign(secret, path, str(nonce), body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return send(client, sim, "kraken", Prepared("POST", path, "", headers, body))

    assert call("a", 100).json()["error"] == []
    assert call("b", 50).json()["error"] == []  # nonces are per key
    assert call("a", 100).json()["error"] == ["EAPI:Invalid nonce"]
    assert call("a", 101, "/0/private/AddOrder").json()["error"] == ["EGeneral:Permission denied"]
    assert call("a", 101).json()["error"] == ["EAPI:Invalid nonce"]  # a well-signed refused call used it
    r = call("a", 102)
    assert r.json()["error"] == [] and r.json()["result"]["ZUSD"]
    # A bad signature does not consume the nonce.
    headers = {
        "API-Key": "a",
        "API-Sign": flip(kraken_sign(secret, "/0/private/Balance", "103", "nonce=103")),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert send(client, sim, "kraken", Prepared("POST", "/0/private/Balance", "", headers, "nonce=103")).json()[
        "error"
    ] == ["EAPI:Invalid signature"]
    assert call("a", 103).json()["error"] == []
    assert [
        int(x.body.decode().split("=")[1]) for x in sim.config.received if x.api_key == "a" and x.verdict == ACCEPTED
    ] == [100, 102, 103]


@pytest.mark.parametrize("form", ["ecdsa", "ed25519-64", "ed25519-32"])
def test_coinbase_jwt(sim: SimulatorServer, client: httpx.Client, form: str) -> None:
    key_type = "ecdsa" if form == "ecdsa" else "ed25519"
    secret = new_ec_pem() if form == "ecdsa" else new_ed25519_b64(with_public=form == "ed25519-64")
    name = "organizations/o/apiKeys/k"
    sim.config.add_account("coinbase", name, secret, key_type=key_type)
    host = sim.url.removeprefix("http://")
    path = "/api/v3/brokerage/accounts"

    def call(token: str, query: str = "") -> httpx.Response:
        return send(client, sim, "coinbase", Prepared("GET", path, query, {"Authorization": "Bearer " + token}))

    now = int(time.time())
    # Host + path as on the wire (with the /coinbase mount) or exchange-relative: both accepted.
    assert call(coinbase_jwt(name, secret, key_type, f"GET {host}/coinbase{path}", now), "limit=1").status_code == 200
    assert call(coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now)).status_code == 200
    refused = [
        coinbase_jwt(name, secret, key_type, f"GET {host}/coinbase{path}?limit=1", now),  # query in uri
        coinbase_jwt(name, secret, key_type, f"GET https://{host}/coinbase{path}", now),  # scheme in uri
        coinbase_jwt(name, secret, key_type, f"POST {host}/coinbase{path}", now),  # wrong method
        coinbase_jwt(name, secret, key_type, f"GET api.coinbase.com{path}", now),  # another host
        coinbase_jwt(name, secret, key_type, None, now),  # no uri (a WebSocket JWT)
        coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now, claims_extra={"iss": "coinbase-cloud"}),
        coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now, claims_extra={"sub": "someone-else"}),
        coinbase_jwt(
            name, new_ec_pem() if key_type == "ecdsa" else new_ed25519_b64(), key_type, f"GET {host}{path}", now
        ),
    ]
    if key_type == "ecdsa":
        refused.append(coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now, der=True))  # DER, not r||s
    for token in refused:
        r = call(token, "limit=1")
        assert r.status_code == 401 and sim.config.received[-1].verdict == BAD_SIGNATURE, (
            r.text,
            sim.config.received[-1].detail,
        )
    # Time: expired, not yet valid, lifetime over 120 s.
    for token in (
        coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now - 200),
        coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now + 30),
        coinbase_jwt(name, secret, key_type, f"GET {host}{path}", now, lifetime=600),
    ):
        r = call(token)
        assert r.status_code == 401 and sim.config.received[-1].verdict == BAD_TIMESTAMP, r.text


def test_coinbase_key_type_mismatch(sim: SimulatorServer, client: httpx.Client) -> None:
    name = "organizations/o/apiKeys/k"
    ed_secret = new_ed25519_b64()
    sim.config.add_account("coinbase", name, new_ec_pem(), key_type="ecdsa")
    host = sim.url.removeprefix("http://")
    token = coinbase_jwt(name, ed_secret, "ed25519", f"GET {host}/api/v3/brokerage/accounts", int(time.time()))
    r = send(
        client, sim, "coinbase", Prepared("GET", "/api/v3/brokerage/accounts", "", {"Authorization": "Bearer " + token})
    )
    assert r.status_code == 401 and sim.config.received[-1].verdict == BAD_SIGNATURE


def test_cryptocom_body_rules(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account("cryptocom", "ck", "cs", can_withdraw=False)
    now = int(time.time() * 1000)

    def call(path_method: str, body: dict[str, Any]) -> httpx.Response:
        return send(
            client,
            sim,
            "cryptocom",
            Prepared("POST", "/exchange/v1/" + path_method, "", {"Content-Type": "application/json"}, json.dumps(body)),
        )

    def signed(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": 1,
            "method": method,
            "api_key": "ck",
            "params": params,
            "nonce": now,
            "sig": cryptocom_sig("cs", method, 1, "ck", params, now),
        }

    # The method in the body must match the path (a withdrawal hidden behind a read path is refused).
    r = call(
        "private/user-balance", signed("private/create-withdrawal", {"currency": "BTC", "amount": "1", "address": "x"})
    )
    assert (r.status_code, r.json()["code"]) == (400, 40003)
    assert sim.config.received[-1].verdict == BAD_REQUEST
    # Nested lists of objects sign as in the reference.
    params = {
        "order_list": [
            {"instrument_name": "BTCUSD-PERP", "side": "BUY", "price": "1", "quantity": "1", "type": "LIMIT"}
        ],
        "contingency_type": "LIST",
    }
    assert call("private/create-order", signed("private/create-order", params)).json()["code"] == 0
    # Numbers as JSON floats or booleans: the reference implementations disagree; refused.
    for bad in ({"price": 1.5}, {"post_only": True}):
        r = call("private/create-order", signed("private/create-order", bad))
        assert (r.status_code, r.json()["code"]) == (400, 40004), r.text
    # A key twice in the JSON body (first-wins and last-wins parsers would disagree): refused.
    body_text = json.dumps(signed("private/user-balance", {}))[:-1] + ', "method": "private/create-withdrawal"}'
    r = send(client, sim, "cryptocom", Prepared("POST", "/exchange/v1/private/user-balance", "", {}, body_text))
    assert (r.status_code, r.json()["code"], sim.config.received[-1].verdict) == (400, 40003, DUPLICATE_PARAMETER)
    # params is required.
    body = signed("private/user-balance", {})
    del body["params"]
    assert call("private/user-balance", body).json()["code"] == 40004
    # Withdrawal without permission: refused, but it reached the exchange and is recorded.
    r = call(
        "private/create-withdrawal",
        signed("private/create-withdrawal", {"currency": "BTC", "amount": "1", "address": "x"}),
    )
    assert r.json()["code"] == 40101
    last = sim.config.received[-1]
    assert (last.path, last.verdict, last.json["method"]) == (
        "/exchange/v1/private/create-withdrawal",
        PERMISSION_DENIED,
        "private/create-withdrawal",
    )


def test_gate_float_timestamp_and_raw_query(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.add_account("gate", "gk", "gs")
    ts = f"{time.time():.6f}"
    query = "currency=USDT&page=1"
    headers = {"KEY": "gk", "Timestamp": ts, "SIGN": gate_sign("gs", "GET", "/api/v4/spot/accounts", query, "", ts)}
    assert send(client, sim, "gate", Prepared("GET", "/api/v4/spot/accounts", query, headers)).status_code == 200
    # Same parameters, another order on the wire: the signature covers the raw query.
    assert (
        send(client, sim, "gate", Prepared("GET", "/api/v4/spot/accounts", "page=1&currency=USDT", headers)).json()[
            "label"
        ]
        == "INVALID_SIGNATURE"
    )


# =================================================================================================
# 5. Forced responses, delays, the request log, the server itself
# =================================================================================================


def test_forced_responses(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.config.force(
        "okx", 503, {"code": "50001", "msg": "Service temporarily unavailable"}, {"Retry-After": "1"}, times=2
    )
    sim.config.force("binance", 418, "banned", path="/api/v3/time", times=None)
    for _ in range(2):
        r = client.get(sim.url_for("okx") + "/api/v5/public/time")
        assert (r.status_code, r.json()["code"], r.headers["retry-after"]) == (503, "50001", "1")
    assert client.get(sim.url_for("okx") + "/api/v5/public/time").status_code == 200
    # A forced response skips verification altogether: even an unsigned private call gets it.
    sim.config.force("okx", 429, {"code": "50011", "msg": "Too Many Requests"})
    assert client.get(sim.url_for("okx") + "/api/v5/account/balance").json()["code"] == "50011"
    for _ in range(3):
        r = client.get(sim.url_for("binance") + "/api/v3/time")
        assert (r.status_code, r.text) == (418, "banned")
    assert client.get(sim.url_for("binanceusdm") + "/fapi/v1/time").status_code == 200  # per exchange
    assert client.get(sim.url_for("binance") + "/api/v3/ping").status_code == 200  # per path
    sim.config.clear_forced("binance")
    assert client.get(sim.url_for("binance") + "/api/v3/time").status_code == 200
    assert [x.verdict for x in sim.config.received][:5] == [FORCED, FORCED, ACCEPTED, FORCED, FORCED]


def test_delay_and_hanging_exchange(sim: SimulatorServer, client: httpx.Client) -> None:
    # status=None: delayed, then verified and answered normally.
    sim.config.force("gate", delay_seconds=0.3)
    started = time.monotonic()
    assert client.get(sim.url_for("gate") + "/api/v4/spot/time").status_code == 200
    assert time.monotonic() - started >= 0.3
    # A hanging exchange: the client times out; the request was still received.
    sim.config.force("kraken", 200, {"error": [], "result": {}}, delay_seconds=3)
    with pytest.raises(httpx.ReadTimeout):
        client.get(sim.url_for("kraken") + "/0/public/Time", timeout=0.2)
    assert sim.config.received[-1].exchange == "kraken"
    assert sim.config.received[-1].verdict == PENDING


def test_received_log(sim: SimulatorServer, client: httpx.Client) -> None:
    assert len(sim.config.received) == 0 and not sim.config.received  # nothing reached any exchange
    spec = SPECS[SPEC_IDS.index("bitget")]
    ctx = setup_account(sim, spec)
    p = spec.build("trade", ctx)
    p.headers["X-Custom"] = "a"
    send(client, sim, "bitget", p)
    send(client, sim, "bitget", Prepared("GET", "/api/v2/spot/account/assets", "b=2&a=%20x+y"))
    client.get(sim.url + "/nowhere")
    first, second, third = sim.config.received
    assert (first.exchange, first.method, first.path, first.query) == (
        "bitget",
        "POST",
        "/api/v2/spot/trade/place-order",
        "",
    )
    assert first.body == p.body.encode() and first.json["symbol"] == "BTCUSDT"
    assert first.headers["access-key"] == ctx.key and first.headers["x-custom"] == "a"
    assert ("access-sign", p.headers["ACCESS-SIGN"]) in first.raw_headers
    assert (first.client_ip, first.verdict, first.status, first.api_key) == ("127.0.0.1", ACCEPTED, 200, ctx.key)
    assert first.response_json["code"] == "00000"
    assert (second.query, second.target, second.verdict) == (
        "b=2&a=%20x+y",
        "/api/v2/spot/account/assets?b=2&a=%20x+y",
        "missing_auth",
    )
    assert (third.exchange, third.verdict, third.status) == ("", "not_found", 404)
    assert [r.exchange for r in sim.config.received.for_exchange("bitget")] == ["bitget", "bitget"]
    # Thread safety: concurrent requests are all recorded.
    threads = [threading.Thread(target=lambda: httpx.get(sim.url_for("gate") + "/api/v4/spot/time")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sim.config.received.for_exchange("gate")) == 8


def test_unknown_path_and_method(sim: SimulatorServer, client: httpx.Client) -> None:
    assert client.get(sim.url_for("okx") + "/api/v5/nope").status_code == 404
    assert client.delete(sim.url_for("okx") + "/api/v5/public/time").status_code == 404
    assert [x.verdict for x in sim.config.received] == ["not_found", "not_found"]


def test_server_lifecycle_and_separate_config() -> None:
    config = SimulatorConfig()
    config.add_account("gate", "k", "s")
    srv = SimulatorServer(config, host="127.0.0.1", port=0).start()
    try:
        assert srv.running and srv.url.startswith("http://127.0.0.1:") and srv.port > 0
        assert httpx.get(srv.url + "/").json()["exchanges"] == list(EXCHANGE_IDS)
        config.force("gate", 200, {}, delay_seconds=30)
        hang = threading.Thread(
            target=lambda: httpx.get(srv.url_for("gate") + "/api/v4/spot/time", timeout=10), daemon=True
        )
        hang.start()
        time.sleep(0.2)
    finally:
        started = time.monotonic()
        srv.stop()
    assert not srv.running and time.monotonic() - started < 5  # a hanging request does not hold up stop()
    with pytest.raises(RuntimeError):
        _ = srv.url
