"""Lists as Twilio pages them: PageSize / Page / PageToken in, a ``meta`` block out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from quart import request

from bridge.sandbox.shared.errors import invalid

T = TypeVar("T")


def page_request(maximum: int, default: int = 50) -> tuple[int, int]:
    """(PageSize, page number) from the query; a PageSize over the API's ``maximum`` is
    refused, as Twilio refuses it."""
    try:
        size = int(request.args.get("PageSize", str(min(default, maximum))))
        number = int(request.args.get("Page", "0"))
    except ValueError:
        raise invalid("PageSize and Page must be whole numbers") from None
    if not 1 <= size <= maximum:
        raise invalid(f"PageSize must be between 1 and {maximum}")
    token = request.args.get("PageToken")
    if token:
        if not token.startswith("PT") or not token[2:].isdigit():
            raise invalid("Invalid PageToken")
        number = int(token[2:]) // size
    if number < 0:
        raise invalid("Page must not be negative")
    return size, number


def page(
    *,
    key: str,
    items: Sequence[T],
    render: Callable[[T], dict[str, Any]],
    list_url: str,
    page_size: int,
    page_number: int,
    filters: dict[str, str],
) -> dict[str, Any]:
    """One page of a list, with Twilio's ``meta`` block of absolute URLs.

    ``PageToken`` carries the offset, so a next-page URL stays valid as new items arrive.
    """

    def url_for(number: int) -> str:
        query = dict(filters)
        query.update({"PageSize": str(page_size), "Page": str(number)})
        if number > 0:
            query["PageToken"] = f"PT{number * page_size}"
        return f"{list_url}?{urlencode(query)}"

    start = page_number * page_size
    chunk = items[start : start + page_size]
    has_next = start + page_size < len(items)
    return {
        key: [render(item) for item in chunk],
        "meta": {
            "page": page_number,
            "page_size": page_size,
            "first_page_url": url_for(0),
            "previous_page_url": url_for(page_number - 1) if page_number > 0 else None,
            "url": url_for(page_number),
            "next_page_url": url_for(page_number + 1) if has_next else None,
            "key": key,
        },
    }
