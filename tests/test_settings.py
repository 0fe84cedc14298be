"""Configuration refusals that protect where signed requests go."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.settings import Settings


@pytest.mark.parametrize("url", ["ftp://exchange.example", "https://user:pw@exchange.example",
                                 "https://exchange.example/?x=1", "https://exchange.example/#f", "not a url"])
def test_exchange_url_overrides_must_be_plain_origins(url: str) -> None:
    with pytest.raises(ValidationError, match="binance"):
        Settings(_env_file=None, exchange_urls={"binance": url})  # type: ignore[call-arg]


def test_a_gateway_path_is_allowed() -> None:
    settings = Settings(_env_file=None, exchange_urls={"binance": "http://127.0.0.1:9000/binance"})  # type: ignore[call-arg]
    assert settings.exchange_urls["binance"].endswith("/binance")
