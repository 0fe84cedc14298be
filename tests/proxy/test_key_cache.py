"""The signing-key cache on the app's own database and vault: one read per version however many wait."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.credentials.models import Credential
from tests.conftest import create_credential, run_db


def _count_version_reads(api: TestClient) -> list[str]:
    """Statements that read credential versions, as the engine runs them."""
    engine = api.app.state.sessionmaker.kw["bind"]  # type: ignore[attr-defined]
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM credential_versions" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", listen)
    return seen


def test_concurrent_requests_for_a_new_version_share_one_read(api: TestClient) -> None:
    created = create_credential(api, label="busy")
    keys = api.app.state.signing.keys  # type: ignore[attr-defined]
    reads = _count_version_reads(api)

    async def many(session: AsyncSession) -> list[Any]:
        credential = await session.get(Credential, created["id"])
        return await asyncio.gather(*(keys.get(credential) for _ in range(32)))

    loaded = run_db(api, many)
    assert len(reads) == 1
    assert all(key is loaded[0] for key in loaded)
    run_db(api, many)
    assert len(reads) == 1  # and then it is cached


def test_a_key_forgotten_while_loading_is_not_kept(api: TestClient) -> None:
    created = create_credential(api, label="deleted-meanwhile")
    keys = api.app.state.signing.keys  # type: ignore[attr-defined]
    reads = _count_version_reads(api)

    async def forget_during_load(session: AsyncSession) -> None:
        credential = await session.get(Credential, created["id"])
        loading = asyncio.ensure_future(keys.get(credential))
        await asyncio.sleep(0)  # the load has started
        keys.forget(created["id"])
        await loading  # its caller still gets the key it asked for before the delete
        await keys.get(credential)  # but it was not kept: read again

    run_db(api, forget_during_load)
    assert len(reads) == 2
