"""`signvault` command line: serve, migrate, rewrap, openapi, admin-token, credentials, clients.

The entry point is `main` (pyproject: `signvault = "app.cli:main"`); each group of commands lives in
its own module and registers its parsers in `app.cli.command.build_parser`.
"""

from __future__ import annotations

from app.cli.command import build_parser, main

__all__ = ["build_parser", "main"]
