"""A signature-verifying fake of 12 crypto exchanges, written only from
../shared/exchange-signing.md and ../shared/test-vectors.json: the independent oracle for the signers.

    from tests.simulator import SimulatorServer

    with SimulatorServer(host="127.0.0.1") as sim:
        sim.config.add_account("okx", "key-1", "secret", passphrase="pw", ip_whitelist={"127.0.0.1"})
        httpx.get(sim.url_for("okx") + "/api/v5/account/balance", headers=...)
        assert sim.config.received[-1].verdict == "accepted"
"""

from __future__ import annotations

from .app import create_app
from .core import SimRequest, SimResponse
from .keys import new_ec_pem, new_ed25519_b64, new_ed25519_pem, new_rsa_pem, public_key
from .server import SimulatorServer
from .state import (
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
    MISSING_AUTH,
    NOT_FOUND,
    PENDING,
    PERMISSION_DENIED,
    UNKNOWN_KEY,
    UNSUPPORTED_KEY_TYPE,
    Account,
    ForcedResponse,
    ReceivedRequest,
    RequestLog,
    SimulatorConfig,
)
from .venues.cryptocom import param_string as cryptocom_param_string

__all__ = [
    "ACCEPTED",
    "BAD_NONCE",
    "BAD_PASSPHRASE",
    "BAD_REQUEST",
    "BAD_SIGNATURE",
    "BAD_TIMESTAMP",
    "DUPLICATE_PARAMETER",
    "EXCHANGE_IDS",
    "FORCED",
    "IP_NOT_WHITELISTED",
    "MISSING_AUTH",
    "NOT_FOUND",
    "PENDING",
    "PERMISSION_DENIED",
    "UNKNOWN_KEY",
    "UNSUPPORTED_KEY_TYPE",
    "Account",
    "ForcedResponse",
    "ReceivedRequest",
    "RequestLog",
    "SimRequest",
    "SimResponse",
    "SimulatorConfig",
    "SimulatorServer",
    "create_app",
    "cryptocom_param_string",
    "new_ec_pem",
    "new_ed25519_b64",
    "new_ed25519_pem",
    "new_rsa_pem",
    "public_key",
]
