"""Reading an exchange key's secrets: from a prompt that does not echo, or from stdin with --stdin.

Never from the command line or the environment: arguments are visible to every local user in `ps`
and stay in shell history; environment variables are inherited by every child process.
"""

from __future__ import annotations

import getpass
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import SecretStr

from app.cli.errors import BadInput

PEM_BEGIN = "-----BEGIN"
PEM_END = "-----END"

STDIN_FORMAT = ("the API key on the first line, the secret on the next (a PEM private key may span "
                "several lines), then the passphrase if the exchange has one")


@dataclass(frozen=True)
class KeySecrets:
    api_key: SecretStr
    api_secret: SecretStr
    passphrase: SecretStr | None = field(default=None)


def stdin_is_terminal() -> bool:
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (AttributeError, ValueError):
        return False


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C ends a blocking read at once. The commands run inside asyncio.run, whose SIGINT handler
    only cancels the task at its next await, so a prompt would otherwise wait for Enter first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def read_key_secrets(*, use_stdin: bool, exchange_name: str, needs_passphrase: bool, pem: bool) -> KeySecrets:
    """The key, secret and passphrase for `exchange_name`: piped with --stdin, else prompted for."""
    if not use_stdin and not stdin_is_terminal():
        raise BadInput("stdin is not a terminal, so there is nobody to prompt: use --stdin and pipe "
                       + STDIN_FORMAT)
    with _interruptible():
        return _from_stdin() if use_stdin else _from_prompt(exchange_name, needs_passphrase, pem)


def _from_stdin() -> KeySecrets:
    if sys.stdin is None:
        raise BadInput("there is no stdin to read from")
    lines = [line.removesuffix("\r") for line in sys.stdin.read().split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BadInput("nothing on stdin: pipe " + STDIN_FORMAT)
    api_key = lines[0]
    if len(lines) < 2:
        raise BadInput("no secret on stdin: pipe " + STDIN_FORMAT)
    secret_lines = [lines[1]]
    position = 2
    if lines[1].strip().startswith(PEM_BEGIN) and PEM_END not in lines[1]:
        while position < len(lines) and PEM_END not in secret_lines[-1]:
            secret_lines.append(lines[position])
            position += 1
        if PEM_END not in secret_lines[-1]:
            raise BadInput("the private key on stdin has no -----END line")
    rest = [line for line in lines[position:] if line.strip()]
    if len(rest) > 1:
        raise BadInput(f"{len(rest) - 1} line(s) too many on stdin: pipe " + STDIN_FORMAT)
    passphrase = SecretStr(rest[0]) if rest else None
    return KeySecrets(SecretStr(api_key), SecretStr("\n".join(secret_lines)), passphrase)


def _prompt(text: str) -> str:
    try:
        return getpass.getpass(text)
    except EOFError:
        raise BadInput("no answer to the prompt (end of input); nothing was changed") from None


def _from_prompt(exchange_name: str, needs_passphrase: bool, pem: bool) -> KeySecrets:
    print(f"Enter the {exchange_name} key. Nothing is shown while you type or paste.", file=sys.stderr)
    api_key = _prompt(f"{exchange_name} API key: ")
    label = "private key" if pem else "API secret"
    secret = _prompt(f"{exchange_name} {label}: ")
    if secret.strip().startswith(PEM_BEGIN) and PEM_END not in secret:
        # A pasted PEM arrives line by line: keep reading until its END line.
        lines = [secret]
        while PEM_END not in lines[-1]:
            lines.append(_prompt(""))
        secret = "\n".join(lines)
    passphrase = SecretStr(_prompt(f"{exchange_name} API passphrase: ")) if needs_passphrase else None
    return KeySecrets(SecretStr(api_key), SecretStr(secret), passphrase)
