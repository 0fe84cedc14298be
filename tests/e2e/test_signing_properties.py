"""Any request signvault agrees to sign, the exchange accepts: each exchange's private read and
order with parameters drawn at random (any text, encoded as HTTP libraries encode it) go through
/proxy to the signature-verifying simulator. signvault either refuses a request itself, with a 4xx
problem, or the simulator finds its signature good."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import CASES, call, enrol
from tests.simulator import ACCEPTED, SimulatorServer

# Any text but control characters, which signvault refuses in every query (request_guard), and
# names not repeated, which it refuses as ambiguous (app/exchanges/params.py); both tested there.
TEXT = st.characters(blacklist_categories=("Cc", "Cs"))
NAMES = st.text(TEXT, min_size=1, max_size=8)
EXTRA = st.lists(st.tuples(NAMES, st.text(TEXT, max_size=16)), max_size=4, unique_by=lambda pair: pair[0])
QUOTE = st.sampled_from([quote, quote_plus])
FORM = "application/x-www-form-urlencoded"


def with_extra(request: tuple[str, str, bytes], content_type: str, extra: list[tuple[str, str]],
               quoting: object) -> tuple[str, str, bytes]:
    """`request` with the extra parameters where its own are: the query, a form or a JSON body."""
    method, target, body = request
    if method == "GET":
        encoded = urlencode(extra, quote_via=quoting)  # type: ignore[arg-type]
        joiner = "&" if "?" in target else "?"
        return method, target + (joiner + encoded if encoded else ""), body
    if content_type == FORM:
        encoded = urlencode(extra, quote_via=quoting).encode()  # type: ignore[arg-type]
        return method, target, body + (b"&" + encoded if body and encoded else encoded)
    document = json.loads(body)
    fields = document.get("params", document)  # Crypto.com's envelope
    fields.update(extra)
    return method, target, json.dumps(document, ensure_ascii=quoting is quote).encode()


@pytest.mark.parametrize("exchange", sorted(CASES))
def test_what_signvault_signs_the_exchange_accepts(gateway: TestClient, sim: SimulatorServer, exchange: str) -> None:
    case = CASES[exchange]
    headers = enrol(gateway, sim, case, rate_limit="1000000/second")

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(extra=EXTRA, quoting=QUOTE, order=st.booleans())
    def check(extra: list[tuple[str, str]], quoting: object, order: bool) -> None:
        request = with_extra(case.order if order else case.read, case.content_type, extra, quoting)
        before = len(sim.config.received)
        response = call(gateway, case, headers, request)
        reached = sim.config.received[before:]
        if not reached:  # refused by signvault itself: a problem, never a 5xx
            assert 400 <= response.status_code < 500, response.text
            assert response.headers["content-type"] == "application/problem+json"
            return
        last = reached[-1]
        assert last.verdict == ACCEPTED, (request, last.verdict, last.detail, last.query, last.body)

    check()
