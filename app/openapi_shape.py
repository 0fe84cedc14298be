"""The OpenAPI document as generated clients should read it, fixed in one place.

- Error bodies are `Problem`, under `application/problem+json` (what is sent), never FastAPI's
  validation schema under `application/json`.
- Every operation can be refused with 400 (control characters, unparsable JSON) or 413 (body cap)
  before it is routed: said on every operation.
- `/proxy` answers are the exchange's own, passed through; signvault's own refusals are Problems.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from app.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError", "ValidationErrorContext")
EVERYWHERE = (400, 413)
PASSTHROUGH: dict[str, Any] = {"schema": {}}  # any JSON body: the exchange's own


def _problem(status: int) -> dict[str, Any]:
    return {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def shape(document: dict[str, Any]) -> dict[str, Any]:
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    content = response.setdefault("content", {})
                    content.pop("application/json", None)
                    content[PROBLEM_JSON] = {"schema": PROBLEM_REF}
            for status in EVERYWHERE:
                responses.setdefault(str(status), _problem(status))
            if path.startswith("/proxy/"):
                _passthrough(operation)
    schemas = document.get("components", {}).get("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    return document


def _passthrough(operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    responses["200"] = {"description": "The exchange's answer, passed through.",
                        "content": {"application/json": PASSTHROUGH}}
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["content"]["application/json"] = PASSTHROUGH  # or the exchange's own refusal
