"""Strict parsing of the fields of a data record: a missing or unreadable value is an error
naming where it is (``where``: the file, row and column), never a default such as "inactive".

No third-party imports, so both the FS-Mol reader and the featuriser (RDKit) can use it.
"""

from __future__ import annotations

import math

MISSING = ("", "nan")  # how a CSV or JSON file spells "unknown" (case-insensitive)


def smiles_problem(text: object) -> str | None:
    """Why ``text`` cannot be a SMILES record, or ``None`` if it can.

    A SMILES is a non-empty string of printable ASCII characters without whitespace. A line
    break, tab, space or control character would split one record into two (a SMILES after
    whitespace is read by RDKit as the molecule's *name*, so ``"CCO\\nCCN"`` would silently be
    ethanol) -- such records are quarantined (marked invalid and counted) before anything is
    featurised or cached.
    """
    if not isinstance(text, str):
        return f"expected a SMILES string, got {type(text).__name__}"
    if not text:
        return "expected a SMILES string, got an empty one"
    bad = next((c for c in text if not (c.isascii() and c.isprintable()) or c.isspace()), None)
    if bad is not None:
        return (
            f"a SMILES holds printable ASCII without whitespace, got {bad!r} at position "
            f"{text.index(bad)}"
        )
    return None


def parse_label(value: object, where: str) -> bool:
    """A binary label: ``0``/``1`` (as a number, ``"0"``, ``"1.0"``, ...) or a bool.

    Raises:
        ValueError: anything else -- empty, ``nan``, ``"yes"``, ``0.5``, a missing column --
            because a missing label is not a negative; the message starts with ``where``.
    """
    if isinstance(value, bool):
        return value
    number: float | None = None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number == 0.0:
        return False
    if number == 1.0:
        return True
    raise ValueError(
        f"{where}: got {value!r}, expected 0 or 1 (a missing or unreadable label is an error, "
        "not an inactive)"
    )


def parse_optional_float(value: object, where: str) -> float:
    """A finite number, or NaN where the value is missing (``None``, empty, ``nan``).

    Raises:
        ValueError: text that is not a number (``"yes"``), an infinity or a bool; the message
            starts with ``where``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in MISSING):
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: got {value!r}, expected a number or nothing (unknown)")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(
            f"{where}: got {value!r}, expected a number or nothing (unknown)"
        ) from None
    if math.isinf(number):
        raise ValueError(f"{where}: got {value!r}, expected a finite number or nothing (unknown)")
    return number
