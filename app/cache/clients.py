"""Authenticated clients by token hash, with the credentials they hold: no database read per call."""

from __future__ import annotations

import time

from app.clients.models import Client

TTL_S = 5.0
MAX_ENTRIES = 50_000


class ClientCache:
    def __init__(self, ttl_s: float = TTL_S) -> None:
        self._ttl_s = ttl_s
        self._entries: dict[str, tuple[float, Client]] = {}

    def get(self, token_hash: str) -> Client | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, client: Client) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[token_hash] = (time.monotonic() + self._ttl_s, client)

    def clear(self) -> None:
        self._entries.clear()
