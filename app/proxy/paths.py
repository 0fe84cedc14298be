"""Turns what a client asked for into an exchange-relative path that can only reach the exchange.

Exchange REST paths use a small alphabet, so the raw path is checked against it instead of against
a list of known tricks: no `%` but `%2F` read as `/` (so no encoded `.`, `\\` or NUL), no `@`, `:` or
`\\`, no empty, `.` or `..` segment. What passes needs no re-encoding, and is appended to the adapter's fixed
origin, never parsed as a URL of its own.
"""

from __future__ import annotations

import re

from app.errors import ProblemError
from app.http_syntax import outside

MAX_PATH = 2048
MAX_QUERY = 8192
# The path's alphabet: a segment's characters, and the slash between segments.
_NOT_PATH = outside(bytes(b for b in range(128) if chr(b) in "_.~-/" or chr(b).isalnum()))
# Outside printable ASCII, plus the four characters httpx would rewrite (" < >) or refuse (#) when
# sending: encoding them here, before signing, keeps the signed bytes equal to the bytes sent.
_UNSAFE_QUERY_BYTE = re.compile(rb'[^\x21-\x7e]|["<>#]')


class UnsafePath(ProblemError):
    status, slug, title = 400, "unsafe-path", "The path cannot be sent to the exchange"


def exchange_path(raw: str) -> str:
    """`raw` is the part after `/proxy/{exchange}`, still percent-encoded as the client sent it."""
    if len(raw) > MAX_PATH:
        raise UnsafePath("the path is too long")
    # Generated API clients percent-encode the {path} parameter whole: read %2F as the slash it
    # stands for, then check every segment as usual (so "%2F%2Fhost" is still an empty segment).
    raw = raw.replace("%2F", "/").replace("%2f", "/")
    path = "/" + raw.removeprefix("/")
    # The alphabet in one pass over the whole path (a regular expression per segment was ~6k
    # instructions of a request), then no empty, "." or ".." segment between its slashes.
    enclosed = path + "/"
    if (not path.isascii() or 1 in path.encode("ascii").translate(_NOT_PATH)
            or "//" in enclosed or "/./" in enclosed or "/../" in enclosed):
        raise UnsafePath("paths may use letters, digits and - _ . ~ between single slashes")
    return path


def exchange_query(raw: bytes) -> str:
    """The query as the client sent it; bytes outside printable ASCII are percent-encoded."""
    if len(raw) > MAX_QUERY:
        raise UnsafePath("the query string is too long")
    return _UNSAFE_QUERY_BYTE.sub(lambda m: f"%{m.group()[0]:02X}".encode(), raw).decode("ascii")
