"""The committed OpenAPI document, rendered the same way every time."""

from __future__ import annotations

import json

from app.main import create_app
from app.settings import Settings


def render_openapi() -> str:
    # Fixed settings: the document must not depend on the environment it is generated in.
    app = create_app(Settings(_env_file=None, database_url="sqlite+aiosqlite://", docs_enabled=True))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"
