"""`/admin/clients` (manage bots' tokens and scopes) and `/me` (a bot asks what it may use)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.admin.auth import AdminDep
from app.cache.invalidation import announce_changes
from app.clients import repository, service, views
from app.clients.auth import ClientDep
from app.clients.schemas import (
    ClientCreate,
    ClientPage,
    ClientRead,
    ClientUpdate,
    ClientWithToken,
    CredentialRef,
    Whoami,
)
from app.db import SessionDep
from app.errors import problem_responses

router = APIRouter(prefix="/admin/clients", tags=["clients"], responses=problem_responses(401),
                   dependencies=[announce_changes])
me_router = APIRouter(tags=["me"], responses=problem_responses(401))


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_client",
             responses=problem_responses(409, 422))
async def create_client(body: ClientCreate, session: SessionDep, _: AdminDep) -> ClientWithToken:
    """Create a client and its token. The token is in this response only."""
    client, token = await service.create(session, body)
    return ClientWithToken(**views.summary(client).model_dump(), token=token)


@router.get("", operation_id="list_clients")
async def list_clients(session: SessionDep, _: AdminDep) -> ClientPage:
    """Every client, revoked ones included."""
    return ClientPage(items=[views.summary(c) for c in await repository.list_all(session)])


@router.get("/{ref}", operation_id="get_client", responses=problem_responses(404))
async def get_client(ref: str, session: SessionDep, _: AdminDep) -> ClientRead:
    """One client by id or name."""
    return views.summary(await service.get(session, ref))


@router.patch("/{ref}", operation_id="update_client", responses=problem_responses(404, 422))
async def update_client(ref: str, body: ClientUpdate, session: SessionDep, _: AdminDep) -> ClientRead:
    """Change which credentials the client may use, or its permissions."""
    return views.summary(await service.update(session, await service.get(session, ref, for_update=True), body))


@router.post("/{ref}/rotate-token", operation_id="rotate_client_token", responses=problem_responses(404, 409))
async def rotate_client_token(ref: str, session: SessionDep, _: AdminDep) -> ClientWithToken:
    """Issue a new token; the old one stops working at once."""
    client = await service.get(session, ref, for_update=True)
    token = await service.rotate_token(session, client)
    return ClientWithToken(**views.summary(client).model_dump(), token=token)


@router.delete("/{ref}", status_code=status.HTTP_204_NO_CONTENT, operation_id="revoke_client",
               responses=problem_responses(404))
async def revoke_client(ref: str, session: SessionDep, _: AdminDep) -> Response:
    """Revoke the client's token from the next request on."""
    await service.revoke(session, await service.get(session, ref, for_update=True))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.get("/me", operation_id="whoami")
async def whoami(client: ClientDep) -> Whoami:
    """The calling client's name, permissions and the credentials it may use."""
    return Whoami(name=client.name, permissions=client.permissions,
                  credentials=[CredentialRef(id=c.id, exchange=c.exchange, label=c.label)
                               for c in client.credentials])
