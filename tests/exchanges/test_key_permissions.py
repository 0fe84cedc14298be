"""What a key may do at the exchange, as its connection check reads it. Binance and Bybit signatures do
not cover the endpoint, so /sign trusts these rights: a right missed here is one a read-only client
could use with a signature it asked for a read (tests/e2e/test_sign_safety.py)."""

from __future__ import annotations

from typing import Any

import pytest

from app.exchanges.base import KeyPermissions
from app.exchanges.registry import ADAPTERS

BINANCE_NOTHING = {"ipRestrict": True, "createTime": 1698645219000, "enableReading": True,
                   "enableWithdrawals": False, "enableInternalTransfer": False, "permitsUniversalTransfer": False,
                   "enableMargin": False, "enableFutures": False, "enableSpotAndMarginTrading": False,
                   "enableVanillaOptions": False, "enablePortfolioMarginTrading": False, "enableFixApiTrade": False,
                   "enableFixReadOnly": True}


@pytest.mark.parametrize("flag", ["enableSpotAndMarginTrading", "enableFutures", "enableMargin", "enableVanillaOptions",
                                  "enablePortfolioMarginTrading", "enableFixApiTrade"])
def test_every_binance_trading_flag_counts_as_trade(flag: str) -> None:
    rights = ADAPTERS["binance"].key_permissions({**BINANCE_NOTHING, flag: True})
    assert rights == KeyPermissions(read=True, trade=True, withdraw=False, ip_restricted=True)


def test_a_binance_flag_not_known_here_counts_as_every_right() -> None:
    rights = ADAPTERS["binance"].key_permissions({**BINANCE_NOTHING, "permitsSomethingNew": True})
    assert rights == KeyPermissions(read=True, trade=True, withdraw=True, ip_restricted=True)


@pytest.mark.parametrize("body", [{}, {"enableReading": True}, {"enableWithdrawals": "false"}])
def test_a_binance_answer_of_another_shape_is_unchecked(body: dict[str, Any]) -> None:
    assert ADAPTERS["binance"].key_permissions(body) is None


@pytest.mark.parametrize("flag", ["enableWithdrawals", "enableInternalTransfer", "permitsUniversalTransfer"])
def test_binance_flags_that_move_funds_count_as_withdraw(flag: str) -> None:
    rights = ADAPTERS["binance"].key_permissions({**BINANCE_NOTHING, flag: True})
    assert rights is not None and rights.withdraw and not rights.trade


def test_a_binance_key_that_only_reads_has_no_other_right() -> None:
    assert ADAPTERS["binance"].key_permissions(BINANCE_NOTHING) == KeyPermissions(
        read=True, trade=False, withdraw=False, ip_restricted=True)


def bybit(result: dict[str, Any]) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "", "result": {"readOnly": 1, "ips": ["10.0.0.1"], **result}}


@pytest.mark.parametrize("wallet", [["Withdraw"], ["AccountTransfer"], ["SubMemberTransfer"], ["SomethingNew"]])
def test_every_bybit_wallet_right_counts_as_withdraw(wallet: list[str]) -> None:
    rights = ADAPTERS["bybit"].key_permissions(bybit({"permissions": {"Wallet": wallet, "Spot": []}}))
    assert rights == KeyPermissions(read=True, trade=False, withdraw=True, ip_restricted=True)


@pytest.mark.parametrize(("group", "withdraw"), [("Spot", False), ("ContractTrade", False), ("FiatBitPay", True),
                                                 ("FiatP2P", True), ("SomethingNew", True)])
def test_a_bybit_group_not_known_to_trade_counts_as_withdraw(group: str, withdraw: bool) -> None:
    rights = ADAPTERS["bybit"].key_permissions(bybit({"readOnly": 0, "permissions": {group: ["X"], "Wallet": []}}))
    assert rights == KeyPermissions(read=True, trade=True, withdraw=withdraw, ip_restricted=True)


def test_a_bybit_key_is_read_only_only_when_bybit_says_so() -> None:
    adapter = ADAPTERS["bybit"]
    assert adapter.key_permissions(bybit({"permissions": {"Wallet": []}})) == KeyPermissions(
        read=True, trade=False, withdraw=False, ip_restricted=True)
    missing = {"retCode": 0, "result": {"ips": ["*"], "permissions": {"Wallet": []}}}
    assert adapter.key_permissions(missing) == KeyPermissions(read=True, trade=True, withdraw=False,
                                                              ip_restricted=False)


def test_a_bybit_answer_without_permissions_is_unchecked() -> None:
    assert ADAPTERS["bybit"].key_permissions({"retCode": 0, "result": {"readOnly": 1}}) is None
