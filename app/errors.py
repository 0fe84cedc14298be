"""Typed domain errors and the one renderer that turns every failure into problem+json (RFC 9457)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Collection, Iterable, Sequence
from http import HTTPStatus
from typing import Any, cast, get_args

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger("signvault.errors")

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:signvault:problem:"


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response. `type` is stable; `detail` is for humans."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None


class ProblemError(Exception):
    """Base for errors a client may see; subclasses fix status, type and title."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers

    def to_problem(self) -> Problem:
        return Problem(
            type=TYPE_PREFIX + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )


class NotAuthenticated(ProblemError):
    status, slug, title = 401, "not-authenticated", "Missing or invalid token"

    def __init__(self, detail: str | None = None, *, scheme: str = "Bearer") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": scheme})


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidInput(ProblemError):
    """A request that parsed but that signvault cannot accept; names the offending fields."""

    status, slug, title = 422, "validation-error", "Invalid request"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", errors=[FieldProblem(field=field, message=message)])


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    slug, title = "database-unavailable", "The database is out of reach"


# Where a failure to reach the database surfaces: the driver's socket errors (refused, timed out)
# come out raw through these, and SQLAlchemy's own errors say the rest.
_DATABASE_LAYERS = ("sqlalchemy.", "asyncpg.", "aiosqlite.")
_DATABASE_OUT_OF_REACH = (sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError)


# SQLite's own codes for a database it could not get at: busy, locked, I/O error, cannot open. Its
# OperationalError also says "no such table", which a retry would not cure.
_SQLITE_OUT_OF_REACH = frozenset({5, 6, 10, 14})


def database_out_of_reach(exc: BaseException) -> bool:
    """Refused, timed out, connection lost, pool exhausted or locked: the database could not be
    reached or answer, which a retry may cure; not a fault in a statement, which it would not."""
    if isinstance(exc, _DATABASE_OUT_OF_REACH):
        code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
        return code is None or code & 0xFF in _SQLITE_OUT_OF_REACH
    if isinstance(exc, sa_exc.DBAPIError):
        return exc.connection_invalidated
    if not isinstance(exc, OSError):
        return False
    traceback = exc.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_globals.get("__name__", "").startswith(_DATABASE_LAYERS):
            return True
        traceback = traceback.tb_next
    return False


def problem_for(exc: Exception) -> ProblemError:
    """What a failure that is not a ProblemError tells the client, logged here: a database out of
    reach is a 503 to retry; anything else a 500 that says nothing (its traceback goes to the log)."""
    if database_out_of_reach(exc):
        log.error("database out of reach: %s", type(exc).__name__)  # its text may quote a statement
        return DatabaseUnavailable(f"the database did not answer ({type(exc).__name__}); try again shortly",
                                   headers={"Retry-After": "5"})
    log_unexpected(exc)
    return ProblemError()


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, so generated clients know its error bodies."""
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def _field_name(loc: Iterable[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _field_problem(error: dict[str, Any], known: Collection[str]) -> FieldProblem:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "extra_forbidden" and loc:
        # An unknown name is the caller's own text, and a secret pasted where a name goes would come
        # back in an answer that clients log: it is never repeated, only one of ours suggested.
        close = difflib.get_close_matches(str(loc[-1]).lower(), known, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return FieldProblem(field=_field_name(loc[:-1]),
                            message=f"an unexpected field (not named here, in case it holds a secret){hint}")
    return FieldProblem(field=_field_name(loc), message=_clean_message(error.get("msg", "")))


def _body_fields(request: Request) -> tuple[str, ...]:
    """The fields the route's body model takes, to suggest for a misspelt one."""
    body = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(body, "field_info", None), "annotation", None)
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return tuple(candidate.model_fields)
    return ()


def _clean_message(message: str) -> str:
    # Pydantic prefixes errors raised by our validators; the field name already says what failed.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def answered(exc: ProblemError) -> Problem:
    """The problem a client is told; server-side failures are logged once here."""
    if exc.status >= 500:
        log.error("%s: %s", exc.slug, exc.detail or exc.title)
    return exc.to_problem()


def log_unexpected(exc: BaseException) -> None:
    # The engine runs with hide_parameters=True, so a driver error in this traceback quotes no values.
    log.error("unhandled %s", type(exc).__name__, exc_info=(type(exc), exc, exc.__traceback__))


async def send_problem(send: Send, status: int, body: bytes) -> None:
    """A problem+json answer written straight to ASGI, by the guards that run before any routing."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def problem_bytes(problem: Problem) -> bytes:
    """What JSONResponse would render, for code that answers over raw ASGI."""
    return problem.model_dump_json(exclude_none=True).encode()


async def _on_problem(_: Request, error: Exception) -> JSONResponse:
    exc = cast(ProblemError, error)  # registered for ProblemError only
    return problem_response(answered(exc), exc.headers)


def invalid_input(errors: Iterable[Any], known: Collection[str] = ()) -> InvalidInput:
    """Pydantic's or FastAPI's validation errors as a 422 that names fields, never echoing the input
    (FastAPI's default body does, secrets included), nor an unknown field's name. `known`: the
    body's own fields, one of which is suggested for an unknown one."""
    fields = [_field_problem(e, known) for e in errors]
    return InvalidInput("; ".join(f"{e.field}: {e.message}" for e in fields[:5]), errors=fields)


async def _on_validation(request: Request, error: Exception) -> JSONResponse:
    exc = cast(RequestValidationError, error)
    return problem_response(invalid_input(exc.errors(), _body_fields(request)).to_problem())


async def _on_http_exception(_: Request, error: Exception) -> JSONResponse:
    exc = cast(StarletteHTTPException, error)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    slug = phrase.lower().replace(" ", "-").replace("'", "")
    problem = Problem(type=TYPE_PREFIX + slug, title=phrase, status=exc.status_code,
                      detail=exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None)
    return problem_response(problem, dict(exc.headers) if exc.headers else None)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    problem = problem_for(exc)
    # Starlette answers these outside every middleware, so the request id is added here.
    request_id = request.scope.get("state", {}).get("request_id")
    headers = {**(problem.headers or {}), **({"X-Request-ID": request_id} if request_id else {})}
    return problem_response(problem.to_problem(), headers or None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(Exception, _on_unexpected)
