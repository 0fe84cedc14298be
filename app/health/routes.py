"""`/healthz` (the process answers) and `/readyz` (it can serve: database up, master key usable)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import metrics
from app.errors import PROBLEM_JSON, TYPE_PREFIX, problem_responses
from app.vault.repository import count_by_master_key
from app.vault.service import Vault

log = logging.getLogger("signvault.health")
router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/healthz", operation_id="get_health")
async def health() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/metrics", operation_id="get_metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def prometheus_metrics() -> PlainTextResponse:
    """Prometheus metrics: exchange responses and latency, throttles, cooldowns, weight, retries."""
    body, content_type = metrics.render()
    return PlainTextResponse(body, media_type=content_type)


@router.get("/readyz", operation_id="get_readiness", response_model=Readiness, responses=problem_responses(503))
async def readiness(request: Request) -> Readiness | JSONResponse:
    """Ready when the database answers and every stored row's master key is in the key ring."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    vault: Vault = request.app.state.vault
    checks = {"database": "ok", "vault": "ok"}
    key_ids: set[str] = set()
    try:
        async with sessionmaker() as session:
            key_ids = set(await count_by_master_key(session))
    except Exception as exc:
        log.warning("readiness: database unreachable (%s)", type(exc).__name__)
        checks["database"] = "unreachable"
    if vault.ring is None:
        checks["vault"] = f"no usable master key: {vault.error}"
    elif missing := key_ids - set(vault.ring.ids):
        # A wrong master key shows here as rows sealed under ids the ring does not know.
        checks["vault"] = f"rows are sealed under master keys not configured: {', '.join(sorted(missing))}"
    egress = getattr(request.app.state, "egress", None)
    if egress is not None and egress.drifted:
        last = egress.last
        checks["egress"] = f"exchanges now see {last.observed_ip}, not the whitelisted {', '.join(egress.expected)}"
    if all(v == "ok" for v in checks.values()):
        return Readiness(status="ready", checks=checks)
    body = {"type": TYPE_PREFIX + "not-ready", "title": "Not ready", "status": 503,
            "detail": "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok"), "checks": checks}
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
