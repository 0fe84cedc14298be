"""Process-wide logging: our loggers at the configured level, chatty libraries kept quiet."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("signvault").setLevel(level.upper())
    # httpx logs whole URLs at INFO, and signed URLs carry signatures; SQLAlchemy would echo SQL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
