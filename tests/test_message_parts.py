from __future__ import annotations

import pytest

from bridge.message_parts import split_message


def test_short_text_is_one_part() -> None:
    assert split_message("hello") == ["hello"]


@pytest.mark.parametrize("length", [1600, 1601, 3500, 8000])
def test_parts_rejoin_to_the_text_and_respect_the_limit(length: int) -> None:
    text = ("lorem ipsum dolor sit amet " * 400)[:length]
    parts = split_message(text)
    assert "".join(parts) == text
    assert all(0 < len(p) <= 1600 for p in parts)


def test_words_stay_whole_when_possible() -> None:
    parts = split_message(("word " * 500).strip(), limit=100)
    assert all(p.endswith(" ") for p in parts[:-1])


def test_text_without_spaces_is_cut_hard() -> None:
    assert split_message("x" * 250, limit=100) == ["x" * 100, "x" * 100, "x" * 50]
