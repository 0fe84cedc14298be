"""Bodies of `/sign`."""

from __future__ import annotations

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
