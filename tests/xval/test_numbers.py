"""Number parsing: the cases where the reference xVal regex goes wrong."""

import pytest

from scifm.xval.numbers import find_numbers, format_number, join_segments, split_numbers


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("3-2=1", [3, 2, 1]),  # subtraction minus is an operator
        ("3 - 2", [3, 2]),
        ("x = -2.5", [-2.5]),  # after "=" it is a sign
        ("3*-2", [3, -2]),
        ("[1,-2]", [1, -2]),
        ("(-4)+5", [-4, 5]),
        ("6.02e23 and 1E-9", [6.02e23, 1e-9]),  # scientific notation
        (".5 + 0.25", [0.5, 0.25]),  # no leading digit
        ("+7 apples", [7]),
        ("t1 planet0 x_2 = 4", [4]),  # identifiers stay text
        ("1,000", [1, 0]),  # documented: a comma always separates
        ("It is 5.", [5]),  # trailing dot is punctuation
        ("nan inf", []),  # words, not numbers
        ("--5", [-5]),
        ("", []),
    ],
)
def test_find_numbers(text: str, numbers: list[float]) -> None:
    assert find_numbers(text) == numbers


def test_segments_concatenate_to_the_text() -> None:
    text = '{"m": [1.5e-05, -3], "t1": 3-2=.5}'
    assert "".join(s.text for s in split_numbers(text)) == text


def test_values_are_float64_not_float16() -> None:
    # float16 turns 70000 into inf and 1e-9 into 0 (a reference bug)
    assert find_numbers("70000 1e-9 123456789.123") == [70000.0, 1e-9, 123456789.123]


def test_overflow_names_the_number() -> None:
    with pytest.raises(ValueError, match="1e400"):
        split_numbers("x = 1e400")


def test_join_keeps_numbers_apart() -> None:
    # "1" followed by the text ".5" must not read back as 1.5
    text = join_segments([("1", "num"), (".", None), ("5", "num")])
    assert find_numbers(text) == [1, 5]
    text = join_segments([("100", "num"), ("e5", None)])
    assert find_numbers(text) == [100]


def test_format_number_round_trips() -> None:
    for v in [0.0, 1.0, -3.0, 0.1, 1e-9, 6.02e23, 12345678.9, -0.000123]:
        assert float(format_number(v)) == v
