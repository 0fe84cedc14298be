"""The committed OpenAPI document is the one the code produces, and it is usable by client generators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.openapi import render_openapi

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(COMMITTED.read_text())
    return document


def test_committed_document_is_current() -> None:
    assert COMMITTED.read_text() == render_openapi(), (
        "openapi/openapi.json is out of date: run `signvault openapi --out openapi/openapi.json`")


def test_security_schemes(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["AdminToken"]["type"] == "http"
    assert schemes["AdminToken"]["scheme"] == "bearer"
    assert schemes["ClientToken"]["type"] == "apiKey"
    assert schemes["ClientToken"]["in"] == "header"
    assert schemes["ClientToken"]["name"] == "X-Signvault-Token"


def test_every_operation_has_an_id(spec: dict[str, Any]) -> None:
    operations = [(method.upper(), path, op) for path, item in spec["paths"].items()
                  for method, op in item.items() if method in HTTP_METHODS]
    assert operations
    missing = [f"{method} {path}" for method, path, op in operations if not op.get("operationId")]
    assert not missing, f"operations without operationId: {missing}"
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
