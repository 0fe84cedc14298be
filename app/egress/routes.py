"""`/admin/egress`: the IP(s) to whitelist at each exchange, how traffic leaves, and a live check."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.admin.auth import AdminDep
from app.egress.monitor import EgressMonitor, describe_mode
from app.errors import problem_responses

router = APIRouter(prefix="/admin/egress", tags=["egress"], responses=problem_responses(401))


class EgressCheckRead(BaseModel):
    observed_ip: str | None = Field(description="The IP an outside service saw this request come from.")
    matches: bool | None = Field(description="false: the IP drifted from the whitelisted one.")
    error: str | None
    checked_at: datetime


class EgressRead(BaseModel):
    whitelist: list[str] = Field(description="Paste these into each exchange key's IP whitelist.")
    mode: str = Field(examples=["proxy", "source_ip", "direct"])
    via: str | None = Field(description="The forward proxy (no credentials) or the bound source address.")
    check: EgressCheckRead


@router.get("", operation_id="get_egress")
async def get_egress(request: Request, _: AdminDep) -> EgressRead:
    """Checks the egress now, through the same path exchange traffic takes."""
    monitor: EgressMonitor = request.app.state.egress
    check = await monitor.check()
    mode, via = describe_mode(request.app.state.settings)
    whitelist = monitor.expected or ([check.observed_ip] if check.observed_ip else [])
    return EgressRead(whitelist=whitelist, mode=mode, via=via,
                      check=EgressCheckRead(observed_ip=check.observed_ip, matches=check.matches, error=check.error,
                                            checked_at=check.checked_at))
