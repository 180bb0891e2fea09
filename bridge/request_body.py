"""Reading request bodies without letting a malformed one become a 500."""

from __future__ import annotations

import json
from typing import Any

from quart import request


async def json_or_none() -> Any:
    """The body parsed as JSON (whatever the Content-Type), or None when it is not JSON:
    invalid syntax, bytes that are not UTF-8, or nesting too deep to parse."""
    raw = await request.get_data()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # ValueError covers UnicodeDecodeError
        return None
