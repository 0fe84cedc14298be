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


def test_a_refused_value_is_not_quoted_back() -> None:
    """A too-short admin token is a secret all the same: pydantic's error would print it."""
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, admin_token="sva_too-short")  # type: ignore[call-arg]
    assert "admin_token" in str(refused.value) and "sva_too-short" not in str(refused.value)


def test_urls_with_passwords_stay_out_of_the_settings_repr() -> None:
    settings = Settings(_env_file=None, database_url="postgresql+asyncpg://signvault:db-password-1@db/signvault",  # type: ignore[call-arg]
                        redis_url="redis://:redis-password-2@redis:6379/0")
    assert "db-password-1" not in repr(settings) and "redis-password-2" not in repr(settings)
