"""Dependencies shared by several capabilities."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.vault.service import Vault


def _vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


VaultDep = Annotated[Vault, Depends(_vault)]
