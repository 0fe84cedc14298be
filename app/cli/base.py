"""Building the parsers: every command gets a plain-words description, an example and the exit codes."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any

from app.cli.errors import EXIT_CODES


class FORMATTER(argparse.RawDescriptionHelpFormatter):
    """Our own line breaks in descriptions and examples; option help in a column wide enough for names."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def add_command(group: Any, name: str, *, summary: str, description: str, examples: str,
                aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A leaf command under `group` (what add_subparsers returned)."""
    parser: argparse.ArgumentParser = group.add_parser(
        name, aliases=list(aliases), help=summary, description=_wrap(textwrap.dedent(description).strip()),
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  ") + "\n\n" + EXIT_CODES,
        formatter_class=FORMATTER, allow_abbrev=False)
    parser.set_defaults(prog=parser.prog)
    return parser


def _wrap(text: str, width: int = 100) -> str:
    """Fill the paragraphs written on one long line; keep the ones laid out by hand (tables, lists)."""
    return "\n\n".join(
        textwrap.fill(paragraph, width) if "\n" not in paragraph and len(paragraph) > width else paragraph
        for paragraph in text.split("\n\n"))


def add_group(group: Any, name: str, *, summary: str, description: str, examples: str) -> Any:
    """A command with subcommands (`signvault credentials ...`); alone, it prints its help."""
    parser = add_command(group, name, summary=summary, description=description, examples=examples)
    parser.set_defaults(run=lambda _args: _usage(parser))
    return parser.add_subparsers(title="commands", metavar="COMMAND", dest=f"{name}_command")


def _usage(parser: argparse.ArgumentParser) -> int:
    import sys

    parser.print_help(sys.stderr)
    return 2


def comma_list(value: str) -> list[str]:
    """`read,trade` -> ["read", "trade"]; blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON (the API's shape) instead of text")
