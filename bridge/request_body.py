"""Reading request bodies without letting a malformed one become a 500."""

from __future__ import annotations

import json
from typing import Any

from quart import request


def _unicode(value: Any) -> bool:
    """No lone surrogate anywhere (JSON's ``"\\ud800"``): such text cannot be stored or
    sent on, so it is refused at the door."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_unicode(k) and _unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_unicode(item) for item in value)
    return True


async def json_or_none() -> Any:
    """The body parsed as JSON (whatever the Content-Type), or None when it is not JSON:
    invalid syntax, bytes that are not UTF-8, text with lone surrogates, or nesting too
    deep to parse."""
    raw = await request.get_data()
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError covers UnicodeDecodeError
        return None
    try:
        return parsed if _unicode(parsed) else None
    except RecursionError:
        return None
