"""The `signvault` command: the parser tree, and turning every failure into one line and an exit code."""

from __future__ import annotations

import argparse
import sys
import textwrap
import traceback
from collections.abc import Sequence

from pydantic import ValidationError

from app.cli import admin_tokens, clients, credentials, server
from app.cli.base import FORMATTER
from app.cli.errors import BAD_INPUT, EXIT_CODES, FAILED, INTERRUPTED, CliError, one_line, validation_message
from app.errors import ProblemError

DESCRIPTION = """\
signvault holds crypto-exchange API keys for trading bots and signs the bots' requests, so the bots
never see a key. `serve` runs the service; the other commands manage it from the command line.

Every command reads the same SIGNVAULT_* environment variables as the service (see the README), the
main ones being SIGNVAULT_DATABASE_URL (default: SQLite in SIGNVAULT_DATA_DIR, itself default the
current directory) and the master key (SIGNVAULT_MASTER_KEY, _KEYS or _KEY_FILE; without one, a
development key file next to the SQLite database). Commands bring a missing or old database schema
up to date first, unless SIGNVAULT_AUTO_MIGRATE=false (then run `signvault migrate`)."""

EXAMPLES = """\
  signvault serve                                     # run the service
  signvault admin-token create --name alice           # a token for the /admin API
  signvault credentials add --exchange binance --label main
  signvault clients add --name grid-bot --credentials binance:main --permissions read,trade
  signvault credentials --help                        # help on one command"""

# Options someone may try in order to pass a secret: refused with an explanation instead of a value echo.
SECRET_OPTIONS = ("--api-key", "--key", "--secret", "--api-secret", "--passphrase", "--password", "--token")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="signvault", description=DESCRIPTION, formatter_class=FORMATTER,
        epilog="examples:\n" + EXAMPLES + "\n\n" + EXIT_CODES, allow_abbrev=False)
    parser.add_argument("--traceback", action="store_true",
                        help="on an unexpected error, print the Python traceback (it may quote values you entered)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    server.register(commands)
    admin_tokens.register(commands)
    credentials.register(commands)
    clients.register(commands)
    parser.set_defaults(run=lambda _args: _print_usage(parser))
    return parser


def _print_usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return BAD_INPUT


def _fail(message: str, code: int) -> int:
    print(f"signvault: error: {message}", file=sys.stderr)
    return code


def _unrecognised(extras: Sequence[str]) -> int:
    """Name unknown options, but never echo other values: one of them may be a secret typed by mistake."""
    options = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-")]
    hidden = len(extras) - len(options)
    shown = ", ".join(options) if options else ""
    if hidden:
        values = "a value" if hidden == 1 else f"{hidden} values"
        shown += (" and " if shown else "") + f"{values} (not shown, in case of a secret)"
    message = f"unrecognised arguments: {shown}"
    if any(option.lower() in SECRET_OPTIONS for option in options):
        message += ("; secrets are never taken from the command line (every local user can see arguments, "
                    "and shells keep them in history): signvault prompts for them, or reads them with --stdin")
    return _fail(message + ". See `signvault COMMAND --help`.", BAD_INPUT)


def _problem(exc: ProblemError) -> int:
    code = BAD_INPUT if 400 <= exc.status < 500 else FAILED
    return _fail(one_line(exc.detail or exc.title, 1000), code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else BAD_INPUT
    if extras:
        return _unrecognised(extras)
    try:
        code: int = args.run(args)
        return code
    except CliError as exc:
        return _fail(exc.message, exc.code)
    except ProblemError as exc:
        return _problem(exc)
    except ValidationError as exc:
        return _fail(validation_message(exc), BAD_INPUT)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return _fail("interrupted", INTERRUPTED)
    except Exception as exc:
        if args.traceback:
            traceback.print_exc()
        # Only the type: a message could quote something that was typed or stored.
        return _fail(textwrap.shorten(
            f"unexpected {type(exc).__name__}; run again with `signvault --traceback ...` for the details",
            300), FAILED)
