"""Folding Vietnamese for customer search, and the LIKE pattern a query becomes."""

from __future__ import annotations

import unicodedata

from services.notify.domain.search import ASCII, VIETNAMESE, fold_vi, like_pattern


def test_every_vietnamese_letter_folds_to_its_base_letter_in_lower_case() -> None:
    for letter, base in zip(VIETNAMESE, ASCII, strict=True):
        expected = "d" if letter in "đĐ" else unicodedata.normalize("NFD", letter)[0].lower()
        assert (fold_vi(letter), base.lower()) == (expected, expected), letter


def test_a_name_folds_the_same_whether_composed_or_decomposed() -> None:
    name = "Nguyễn Thị Đặng Ưởng"
    decomposed = unicodedata.normalize("NFD", name)

    assert decomposed != name
    assert fold_vi(name) == fold_vi(decomposed) == "nguyen thi dang uong"


def test_a_query_of_three_letters_or_more_becomes_a_substring_pattern() -> None:
    assert like_pattern("  Nguyễn Thị ") == "%nguyen thi%"
    assert like_pattern("Đức") == "%duc%"
    assert like_pattern("ab") is None


def test_like_wildcards_in_a_query_match_themselves() -> None:
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"
