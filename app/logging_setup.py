"""Process-wide logging: our loggers at the configured level, chatty libraries kept quiet."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("signvault").setLevel(level.upper())
    # httpx logs whole URLs at INFO, and signed URLs carry signatures; SQLAlchemy would echo SQL;
    # aiosqlite logs every statement with its bound parameters at DEBUG.
    for noisy in ("httpx", "httpcore", "sqlalchemy", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
