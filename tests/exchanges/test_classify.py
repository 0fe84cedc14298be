"""Each request is classified read, trade or withdraw from the exchange's endpoints."""

from __future__ import annotations

import pytest

from app.exchanges.base import UpstreamRequest
from app.exchanges.registry import get_adapter


# Sub-accounts and API keys, in every version and spelling the exchanges use: a sub-account takes
# transfers out of the key's account and holds keys of its own, and a new or loosened key is a secret
# (or a right) signvault does not mediate. Thirteen of these documented endpoints were classified
# trade before, so a trade-only client had them signed and sent.
@pytest.mark.parametrize(("exchange", "path"), [
    ("binance", "/sapi/v2/sub-account/subAccountApi"),  # creates a sub-account key, answers its secretKey
    ("binance", "/sapi/v2/sub-account/subAccountApi/ipRestriction"),  # status=1 lifts the restriction
    ("binance", "/sapi/v1/broker/subAccountApi"),
    ("binance", "/sapi/v1/broker/subAccountApi/permission"),
    ("binance", "/sapi/v1/managed-subaccount/deposit"),  # funds to another account, by e-mail
    ("binance", "/SAPI/V1/SUB-ACCOUNT/futures/move-position"),
    ("binance", "/sapi/v1/account/enableFastWithdrawSwitch"),
    ("bybit", "/v5/user/update-api"),  # the calling key's own IPs and rights
    ("bybit", "/v5/user/delete-api"),
    ("bybit", "/v5/user/create-sub-member"),
    ("okx", "/api/v5/users/subaccount/modify-apikey"),
    ("okx", "/api/v5/broker/nd/create-subaccount"),
    ("kucoin", "/api/v2/sub/user/created"),
    ("kucoin", "/api/v1/sub/api-key/update"),
    ("gate", "/api/v4/sub_accounts"),
    ("bitget", "/api/v2/user/create-virtual-subaccount-apikey"),
    ("kraken", "/0/private/CreateSubaccount"),
    ("kraken", "/0/private/AccountTransfer"),
    ("coinbaseexchange", "/profiles/transfer"),
])
def test_sub_accounts_and_key_management_need_withdraw(exchange: str, path: str) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    for method in ("POST", "PUT", "DELETE"):
        assert adapter.classify(UpstreamRequest(method, path)) == "withdraw", (method, path)


@pytest.mark.parametrize(("exchange", "method", "path", "access"), [
    ("binance", "GET", "/api/v3/account", "read"),
    ("binance", "POST", "/api/v3/order", "trade"),
    ("binance", "DELETE", "/api/v3/order", "trade"),
    ("binance", "GET", "/api/v3/ticker/price", "public"),
    ("binance", "POST", "/sapi/v1/capital/withdraw/apply", "withdraw"),
    ("binance", "POST", "/sapi/v1/asset/transfer", "withdraw"),
    ("binance", "POST", "/sapi/v1/sub-account/universalTransfer", "withdraw"),
    # Gift cards take funds and hand back a redeemable code: Binance requires withdraw rights.
    ("binance", "POST", "/sapi/v1/giftcard/createCode", "withdraw"),
    ("binance", "POST", "/sapi/v1/giftcard/buyCode", "withdraw"),
    ("binance", "GET", "/sapi/v1/capital/withdraw/history", "read"),
    # A listen key streams the account's own events: a read-only bot needs one.
    ("binance", "POST", "/api/v3/userDataStream", "read"),
    ("binance", "PUT", "/api/v3/userDataStream", "read"),
    ("binanceusdm", "POST", "/fapi/v1/listenKey", "read"),
    ("binance", "POST", "/papi/v1/listenKey", "read"),
    ("binance", "POST", "/sapi/v1/userDataStream/isolated", "read"),
    ("binance", "POST", "/api/v3/userDataStreamer", "trade"),
    ("kraken", "POST", "/0/private/Balance", "read"),
    ("kraken", "POST", "/0/private/AddOrder", "trade"),
    ("kraken", "POST", "/0/private/Withdraw", "withdraw"),
    ("kraken", "POST", "/0/private/withdraw", "withdraw"),
    ("kraken", "POST", "/0/private/WalletTransfer", "withdraw"),
    ("kraken", "POST", "/0/private/WithdrawStatus", "read"),
    # A WebSocket token places orders on Kraken's WebSocket API.
    ("kraken", "POST", "/0/private/GetWebSocketsToken", "trade"),
    ("okx", "POST", "/api/v5/asset/withdrawal", "withdraw"),
    ("okx", "POST", "/api/v5/asset/transfer", "withdraw"),
    ("okx", "POST", "/api/v5/users/subaccount/apikey", "withdraw"),
    ("bybit", "POST", "/v5/asset/withdraw/create", "withdraw"),
    ("bybit", "POST", "/v5/user/create-sub-api", "withdraw"),
    ("kucoin", "POST", "/api/v1/withdrawals", "withdraw"),
    ("kucoin", "POST", "/api/v1/sub/api-key", "withdraw"),
    ("kucoin", "GET", "/api/v1/user/api-key", "read"),
    ("gate", "POST", "/api/v4/withdrawals", "withdraw"),
    ("gate", "POST", "/api/v4/wallet/sub_account_to_sub_account", "withdraw"),
    ("gate", "POST", "/api/v4/sub_accounts/123/keys", "withdraw"),
    ("bitget", "POST", "/api/v2/spot/wallet/withdrawal", "withdraw"),
    ("coinbase", "POST", "/v2/accounts/abc/transactions", "withdraw"),
    ("coinbase", "POST", "/V2/Accounts/abc/Transactions", "withdraw"),
    ("coinbase", "POST", "/api/v3/brokerage/orders", "trade"),
    ("coinbaseexchange", "POST", "/withdrawals/crypto", "withdraw"),
    ("cryptocom", "POST", "/exchange/v1/private/create-withdrawal", "withdraw"),
    ("cryptocom", "POST", "/exchange/v1/private/create-subaccount-transfer", "withdraw"),
    ("cryptocom", "POST", "/exchange/v1/private/get-withdrawal-history", "read"),
    ("cryptocom", "POST", "/exchange/v1/private/get-subaccount-balances", "read"),
    ("cryptocom", "POST", "/exchange/v1/private/get-order-detail", "read"),
    ("cryptocom", "POST", "/exchange/v1/private/create-order", "trade"),
])
def test_classification(exchange: str, method: str, path: str, access: str) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    assert adapter.classify(UpstreamRequest(method, path)) == access


@pytest.mark.parametrize(("exchange", "method", "path", "cancel"), [
    ("binance", "DELETE", "/api/v3/order", True),
    ("binance", "DELETE", "/api/v3/openOrders", True),
    ("binance", "POST", "/api/v3/order/cancelReplace", False),  # cancels, then places an order
    ("bybit", "POST", "/v5/order/cancel", True),
    ("bybit", "POST", "/v5/order/cancel-all", True),
    ("bitget", "POST", "/api/v2/spot/trade/cancel-replace-order", False),
    ("kraken", "POST", "/0/private/CancelOrder", True),
    ("okx", "POST", "/api/v5/trade/order", False),
])
def test_only_a_cancel_that_places_nothing_is_a_cancel(exchange: str, method: str, path: str, cancel: bool) -> None:
    adapter = get_adapter(exchange)
    assert adapter is not None
    assert adapter.is_cancel(UpstreamRequest(method, path)) is cancel
