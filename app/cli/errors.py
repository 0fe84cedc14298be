"""How a command fails: one line on stderr and an exit code that says whose fault it was."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

OK = 0
FAILED = 1  # the command could not do its work: database, vault, configuration, an exchange
BAD_INPUT = 2  # what was typed or piped was refused; nothing changed
INTERRUPTED = 130

EXIT_CODES = """\
exit codes:
  0    done
  1    failed: the database or the vault is unavailable, the master key is wrong, the
       configuration is bad, or a connection check did not answer "connected"
  2    the input was refused (a usage error, an unknown reference, a value signvault does not
       accept, a new key the exchange rejected); nothing was changed
  130  interrupted (Ctrl-C)"""


class CliError(Exception):
    """A failure the user can act on; its message is printed as is, on one line."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class BadInput(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, BAD_INPUT)


def _clean(message: str) -> str:
    # Pydantic prefixes the messages of our own validators; the field name already says what failed.
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _field(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "input"


def validation_message(exc: ValidationError | Iterable[Any]) -> str:
    """Field names and messages only, as the API answers: str(exc) would quote the input, secrets too."""
    errors = list(exc.errors() if isinstance(exc, ValidationError) else exc)
    return "; ".join(f"{_field(e.get('loc', ()))}: {_clean(e.get('msg', ''))}" for e in errors[:5])


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
