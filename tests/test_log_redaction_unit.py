"""The log scrubber, on the lines libraries really write."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.observability.logs import JsonFormatter, redact, scrub


@pytest.mark.parametrize(("line", "secret"), [
    ('HTTP Request: GET https://api.binance.com/api/v3/account?timestamp=1&signature=9f8e7d6c5b "HTTP/1.1 200 OK"',
     "9f8e7d6c5b"),
    ("headers={'x-mbx-apikey': 'KEYabc123', 'accept': '*/*'}", "KEYabc123"),
    ("[(b'OK-ACCESS-SIGN', b'c2lnbmF0dXJl'), (b'OK-ACCESS-PASSPHRASE', b'pw-123')]", "c2lnbmF0dXJl"),
    ('{"api_key": "abc", "api_secret": "s3cr3t-value", "sig": "deadbeef"}', "s3cr3t-value"),
    ("Authorization: Bearer sva_abcdefghijklmnopqrstuvwxyz012345", "sva_abcdefghijklmnopqrstuvwxyz012345"),
    ("client token sv_abcdefghijklmnopqrstuvwxyz0123 rejected", "sv_abcdefghijklmnopqrstuvwxyz0123"),
    ("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1h\n-----END PRIVATE KEY-----", "MC4CAQAwBQYDK2VwBCIEIJ1h"),
    ("X-BAPI-SIGN: 0a1b2c3d, X-BAPI-API-KEY: BYBITKEY", "0a1b2c3d"),
    ("KC-API-PASSPHRASE=Zm9vYmFy&x=1", "Zm9vYmFy"),
])
def test_secrets_are_scrubbed(line: str, secret: str) -> None:
    assert secret not in redact(line)
    assert "[REDACTED" in redact(line)


def test_ordinary_lines_are_left_alone() -> None:
    line = "request GET /proxy/okx/api/v5/account/balance 200 in 3.1 ms"
    assert redact(line) == line


def test_the_access_line_of_sign_skips_the_scrub_and_stays_whole() -> None:
    line = "request\nPOST\n/sign\nokx-bot\nokx:main-key"
    assert redact(line) == line


# Text assembled from what secrets look like in logs: auth names in any case, the separators and
# quotes around them, token and PEM shapes, and noise.
_fragments = st.sampled_from([
    "signature", "sig", "api_key", "apikey", "api-secret", "secret", "passphrase", "password", "token",
    "authorization", "x-signvault-token", "x-mbx-apikey", "api-sign", "ok-access-key", "OK-ACCESS-SIGN",
    "kc-api-passphrase", "access-sign", "cb-access-key", "x-bapi-api-key", "X-BAPI-SIGN", "sign", "key", "SIGN",
    "Api-Key", "x-MBX-apikey", "/sign", "bearer ", "Bearer\t", "sv_", "sva_",
    "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "=", ":", ",", " ", "\n", "'", '"', "b'", "&", "?",
    "abcdefghijklmnopqrstuvwxyz", "0123456789", "(", ")", "{", "}", "[", "]",
])


@given(st.lists(_fragments, max_size=12).map("".join))
def test_the_shortcut_never_skips_a_line_the_patterns_would_change(text: str) -> None:
    assert redact(text) == scrub(text)


def test_json_lines_carry_extras_and_are_scrubbed() -> None:
    record = logging.makeLogRecord({"name": "signvault.access", "levelno": 20, "levelname": "INFO",
                                    "msg": "request", "request_id": "abc", "status": 200,
                                    "note": "signature=topsecretsig"})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "abc" and entry["status"] == 200 and entry["logger"] == "signvault.access"
    assert "topsecretsig" not in json.dumps(entry)


def test_uvicorns_own_handlers_are_scrubbed_and_still_format() -> None:
    from uvicorn.logging import AccessFormatter

    from app.observability.logs import RedactingFilter

    record = logging.makeLogRecord({
        "name": "uvicorn.access", "levelno": 20, "levelname": "INFO", "msg": '%s - "%s %s HTTP/%s" %d',
        "args": ("127.0.0.1:5000", "GET", "/api/v3/account?signature=9f8e7d6c5b", "1.1", 200)})
    assert RedactingFilter().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert "9f8e7d6c5b" not in line and "[REDACTED]" in line and "200" in line


@pytest.mark.parametrize(("msg", "args", "secret"), [
    ("vault disabled, refusing to store or sign: %s", ("master key abc123 unknown",), None),
    ("request signature=%s failed", ("deadbeef01",), "deadbeef01"),
    ("plain %s", ("token=sv_abcdefghijklmnopqrstuvwxyz0123",), "sv_abcdefghijklmnopqrstuvwxyz0123"),
])
def test_the_filter_never_breaks_a_template_and_never_lets_a_secret_through(
        msg: str, args: tuple[str, ...], secret: str | None) -> None:
    from app.observability.logs import RedactingFilter

    record = logging.makeLogRecord({"name": "uvicorn.error", "levelno": 40, "levelname": "ERROR",
                                    "msg": msg, "args": args})
    assert RedactingFilter().filter(record)
    text = record.getMessage()  # formats without error
    if secret is not None:
        assert secret not in text


def test_a_traceback_on_uvicorns_handler_is_scrubbed() -> None:
    """"Exception in ASGI application" goes to uvicorn.error's own handler with its traceback, and
    an exception's text can hold what a library was handed (a signed URL, say)."""
    from uvicorn.logging import DefaultFormatter

    from app.observability.logs import RedactingFilter

    try:
        raise RuntimeError("GET /api/v3/order?symbol=BTCUSDT&signature=5ec12e7deadbeef failed")
    except RuntimeError:
        record = logging.makeLogRecord({"name": "uvicorn.error", "levelno": 40, "levelname": "ERROR",
                                        "msg": "Exception in ASGI application\n", "exc_info": sys.exc_info()})
    assert RedactingFilter().filter(record)
    text = DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False).format(record)
    assert "RuntimeError" in text and "Traceback" in text
    assert "5ec12e7deadbeef" not in text and "signature=[REDACTED]" in text


def test_a_traceback_another_handler_rendered_first_is_scrubbed_too() -> None:
    from app.observability.logs import RedactingFilter

    record = logging.makeLogRecord({"name": "uvicorn.error", "levelno": 40, "levelname": "ERROR",
                                    "msg": "Exception in ASGI application\n",
                                    "exc_text": "Traceback ...\nRuntimeError: GET /x?signature=5ec12e7deadbeef"})
    assert RedactingFilter().filter(record)
    assert record.exc_text is not None and "5ec12e7deadbeef" not in record.exc_text
