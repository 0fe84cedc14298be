"""Query strings and form bodies as the exact bytes sent: edited pair by pair, never re-serialised."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote_plus

FORM = "application/x-www-form-urlencoded"
# Characters a query may carry as they are; everything else (non-ASCII, spaces) is percent-encoded.
_QUERY_SAFE = "=&%+-._~!$'()*,;:@/?"


def pairs(encoded: str) -> list[tuple[str, str]]:
    """Split `a=1&b=2` into raw (still encoded) name/value pairs, keeping order and duplicates."""
    out = []
    for part in encoded.split("&"):
        if part:
            name, _, value = part.partition("=")
            out.append((name, value))
    return out


def join(raw_pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(f"{name}={value}" for name, value in raw_pairs)


def name_of(raw_name: str) -> str:
    return unquote_plus(raw_name)


def drop(encoded: str, names: Iterable[str]) -> str:
    banned = frozenset(names)
    if not banned or not encoded:
        return encoded
    return join((n, v) for n, v in pairs(encoded) if name_of(n) not in banned)


def duplicated(*encoded: str) -> str | None:
    """The first parameter name that appears twice across the given strings, if any."""
    seen: set[str] = set()
    for text in encoded:
        for raw_name, _ in pairs(text):
            name = name_of(raw_name)
            if name in seen:
                return name
            seen.add(name)
    return None


def normalise_query(raw: str) -> str:
    """Percent-encode what must not travel raw (Binance signs the encoded form since 2025)."""
    return quote(raw, safe=_QUERY_SAFE)


def is_form(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == FORM


def is_json(headers: Mapping[str, str]) -> bool:
    return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def append(encoded: str, name: str, value: str) -> str:
    piece = f"{quote(name, safe='')}={quote(value, safe='')}"
    return f"{encoded}&{piece}" if encoded else piece
