"""TaskRouter's expression language, as far as the sandbox needs it: a task's attributes
matched against ``EvaluateTaskAttributes`` (and a queue's ``1==1``).

Supported: comparisons ``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``IN``, ``NOT IN``,
``HAS`` and ``CONTAINS``; ``AND`` / ``OR`` (either case, also ``&&`` / ``||``) with
parentheses; string (single or double quotes), number, ``true`` / ``false`` and list
literals; dotted attribute names. A name the attributes lack is null, as in TaskRouter.
Anything else is refused as TaskRouter refuses it: a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge.sandbox.shared.errors import invalid

MAX_EXPRESSION = 4096

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|>=|<=|>|<|&&|\|\||\(|\)|\[|\]|,)
      | (?P<word>[A-Za-z_][\w.\-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "in", "not", "has", "contains", "true", "false", "null"}


@dataclass(frozen=True)
class _Token:
    kind: str  # string, number, op, word, keyword
    value: str


def _tokens(expression: str) -> list[_Token]:
    found: list[_Token] = []
    at = 0
    text = expression.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise invalid(f"Invalid expression near {text[at : at + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "word" and value.lower() in _KEYWORDS:
            found.append(_Token("keyword", value.lower()))
        else:
            found.append(_Token(kind, value))
        at = match.end()
    return found


class _Parser:
    def __init__(self, tokens: list[_Token], attributes: dict[str, Any]) -> None:
        self._tokens = tokens
        self._at = 0
        self._attributes = attributes

    def _peek(self) -> _Token | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise invalid("Invalid expression: it ends too soon")
        self._at += 1
        return token

    def _is(self, kind: str, *values: str) -> bool:
        token = self._peek()
        return token is not None and token.kind == kind and token.value in values

    def parse(self) -> bool:
        result = self._or()
        rest = self._peek()
        if rest is not None:
            raise invalid(f"Invalid expression near {rest.value!r}")
        return result

    def _or(self) -> bool:
        result = self._and()
        while self._is("keyword", "or") or self._is("op", "||"):
            self._take()
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._comparison()
        while self._is("keyword", "and") or self._is("op", "&&"):
            self._take()
            right = self._comparison()
            result = result and right
        return result

    def _comparison(self) -> bool:
        if self._is("op", "("):
            self._take()
            inner = self._or()
            if not self._is("op", ")"):
                raise invalid("Invalid expression: a parenthesis is not closed")
            self._take()
            return inner
        left = self._value()
        token = self._take()
        if token.kind == "keyword" and token.value == "not":
            if not self._is("keyword", "in"):
                raise invalid("Invalid expression: NOT must be followed by IN")
            self._take()
            return not _within(left, self._value())
        right = self._value()
        return _compare(left, token, right)

    def _value(self) -> Any:
        token = self._take()
        if token.kind == "string":
            return bytes(token.value[1:-1], "utf-8").decode("unicode_escape")
        if token.kind == "number":
            return float(token.value) if "." in token.value else int(token.value)
        if token.kind == "keyword" and token.value in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.value]
        if token.kind == "word":
            return self._lookup(token.value)
        if token.kind == "op" and token.value == "[":
            items: list[Any] = []
            while not self._is("op", "]"):
                items.append(self._value())
                if self._is("op", ","):
                    self._take()
                elif not self._is("op", "]"):
                    raise invalid("Invalid expression: a list is not closed")
            self._take()
            return items
        raise invalid(f"Invalid expression near {token.value!r}")

    def _lookup(self, name: str) -> Any:
        value: Any = self._attributes
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value


def _within(item: Any, collection: Any) -> bool:
    return isinstance(collection, list) and item in collection


def _compare(left: Any, token: _Token, right: Any) -> bool:
    operator = token.value
    if token.kind == "keyword" and operator == "in":
        return _within(left, right)
    if token.kind == "keyword" and operator in ("has", "contains"):
        if isinstance(left, list):
            return right in left
        return isinstance(left, str) and isinstance(right, str) and right in left
    if token.kind != "op":
        raise invalid(f"Invalid expression near {operator!r}")
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if operator in (">", ">=", "<", "<="):
        numbers = (int, float)
        if not isinstance(left, numbers) or not isinstance(right, numbers):
            return False
        return {
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[operator]
    raise invalid(f"Invalid expression near {operator!r}")


def matches(expression: str, attributes: dict[str, Any]) -> bool:
    """Whether ``attributes`` satisfy ``expression``; a malformed one raises a 400."""
    if len(expression) > MAX_EXPRESSION:
        raise invalid(f"An expression can be at most {MAX_EXPRESSION} characters long")
    tokens = _tokens(expression)
    if not tokens:
        raise invalid("Invalid expression: it is empty")
    return _Parser(tokens, attributes).parse()
