"""Structured JSON logs, with secrets scrubbed from every line of every logger.

The scrubbing is a last line of defence: no code path logs a secret on purpose, but libraries log
URLs (httpx: a Binance signature rides in the query), headers, and exception texts.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

_AUTH_NAMES = (
    r"signature|sig|api[_-]?key|api[_-]?secret|secret|passphrase|password|token|authorization|"
    r"x-signvault-token|x-mbx-apikey|api-sign|ok-access-(?:key|sign|passphrase)|kc-api-(?:key|sign|passphrase)|"
    r"access-(?:key|sign|passphrase)|cb-access-(?:key|sign|passphrase)|x-bapi-(?:api-key|sign)|sign|key"
)
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S), "[REDACTED PEM]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [REDACTED]"),
    (re.compile(r"\bsva?_[A-Za-z0-9_-]{16,}"), "[REDACTED TOKEN]"),
    # name=value, "name": "value", name: value, (b'name', b'value'): query strings, JSON, header dumps
    (re.compile(rf"(?i)([\"']?\b(?:{_AUTH_NAMES})\b[\"']?\s*(?:=|:|,)\s*(?:b?[\"'])?)([^\"'&\s,;)}}\]]+)"),
     r"\1[REDACTED]"),
]

# Fields of a LogRecord that are not user extras.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


# What every pattern above needs, loosely: a PEM armour, "bearer", a token prefix, or one of the
# auth names' stems ending a word that is followed by = : or , (every auth name holds one of the stems).
# Text without any cannot match them and skips the costly patterns; the per-request access lines,
# `/sign`'s path among them, have none.
_MAY_HOLD_A_SECRET = re.compile(
    r"(?i)-----BEGIN|bearer|sva?_|(?:sig|key|secret|pass|token|auth)[a-z0-9_-]*[\"']?\s*[=:,]")


def redact(text: str) -> str:
    return scrub(text) if _MAY_HOLD_A_SECRET.search(text) else text


def scrub(text: str) -> str:
    """Every redaction, unconditionally: `redact` without its shortcut."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value if isinstance(value, str) else json.dumps(value, default=str))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        entry: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname, "logger": record.name,
                                 "msg": record.getMessage(), **extras}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if _may_hold_a_secret(entry["msg"], entry.get("exc"), extras):
            # Each value is scrubbed, not the JSON around them (its own field names would match).
            entry["msg"] = redact(entry["msg"])
            entry.update({k: _scrubbed(v) for k, v in extras.items()})
            if record.exc_info:
                entry["exc"] = redact(entry["exc"])
        return json.dumps(entry, default=str)


def _may_hold_a_secret(msg: str, exc: str | None, extras: dict[str, Any]) -> bool:
    """One cheap search over all the text a line carries, instead of the redactions on each value.
    Values that are not plain text (dicts, objects) always take the full path."""
    texts = [msg, exc or ""]
    for value in extras.values():
        if isinstance(value, str):
            texts.append(value)
        elif not (value is None or isinstance(value, (bool, int, float))):
            return True
    return bool(_MAY_HOLD_A_SECRET.search("\n".join(texts)))


def _timestamp(created: float) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-11-21T20:13:50.844+00:00."""
    ms = int(created * 1000)
    return f"{_second(ms // 1000)}.{ms % 1000:03d}+00:00"


@lru_cache(maxsize=4)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now, not the one it found when created (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


class RedactingFilter(logging.Filter):
    """For handlers we did not make (uvicorn's own, when it configures logging itself).

    uvicorn's access formatter unpacks `args`, so where the template itself holds nothing to hide,
    each argument is scrubbed and `args` stays a tuple (flattened to None, it failed with a
    traceback per request). Otherwise the message is formatted, scrubbed and stored whole.
    A traceback is rendered and scrubbed here too: a formatter prints `exc_text` when it is set.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg
        if isinstance(template, str) and isinstance(record.args, tuple) and redact(template) == template:
            record.args = tuple(_scrubbed_arg(arg) for arg in record.args)
        else:
            record.msg, record.args = redact(record.getMessage()), None
        if record.exc_text:  # rendered already, by another handler's formatter
            record.exc_text = redact(record.exc_text)
        elif record.exc_info:
            record.exc_text = redact(_TRACEBACKS.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()


def _scrubbed_arg(arg: Any) -> Any:
    if arg is None or isinstance(arg, (bool, int, float)):
        return arg
    return redact(arg if isinstance(arg, str) else str(arg))


def configure_logging(level: str, fmt: str = "json") -> None:
    """Our handler on the root logger; library loggers propagate to it (and so are scrubbed)."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_signvault", False)), None)
    if handler is None:
        handler = StderrHandler()
        handler._signvault = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.getLogger("signvault").setLevel(level.upper())
    # httpx logs whole URLs at INFO, and signed URLs carry signatures; SQLAlchemy would echo SQL;
    # aiosqlite logs every statement with its bound parameters at DEBUG.
    for noisy in ("httpx", "httpcore", "sqlalchemy", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for other in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in other.filters):
                other.addFilter(RedactingFilter())
