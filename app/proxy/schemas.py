"""Bodies of `/sign`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(max_length=100, description="Credential id, label or exchange:label.")
    method: str = Field(pattern=r"^(GET|POST|PUT|DELETE|PATCH)$")
    path: str = Field(max_length=2048, examples=["/api/v3/order"], description="Exchange-relative path.")
    query: str = Field(default="", max_length=8192, description="Encoded query string, without '?'.")
    body: str = Field(default="", max_length=1 << 20, description="Exact body text (JSON or form).")
    content_type: str | None = Field(default=None, max_length=100, examples=["application/json"])


class SignedRequest(BaseModel):
    method: str
    url: str
    headers: dict[str, str]
    body: str


class WsLoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential: str = Field(max_length=100, description="Credential id, label or exchange:label.")
    channel: str | None = Field(default=None, max_length=100, description="Gate only: the private channel.")
    event: str | None = Field(default=None, max_length=32, description="Gate only: subscribe (default) or api.")
    id: str | None = Field(default=None, max_length=64, description="Binance only: the request id to use.")


class WsLogin(BaseModel):
    exchange: str
    message: dict[str, Any] = Field(description="Send this as the WebSocket's login (or channel) message.")
