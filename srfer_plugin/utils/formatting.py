"""Formatting shared by every report (CSV and Markdown tables) and by messages that list problems."""

from __future__ import annotations

import math
from typing import Any


def format_value(value: Any, digits: int | None = 4) -> str:
    """A table cell: '' for a missing value (None, '' or NaN), a float with ``digits`` decimals, else ``str``.

    Args:
        value: The value.
        digits: Decimals of a float; None picks 4 below 1 in magnitude (SSIM) and 2 above (accuracy, PSNR).

    Returns:
        The text of the cell.
    """
    if value is None or (isinstance(value, str) and value == '') or (isinstance(value, float) and math.isnan(value)):
        return ''
    if isinstance(value, float):
        if digits is None:
            digits = 4 if abs(value) < 1 else 2
        return f'{value:.{digits}f}'
    return str(value)


def first_of(items: list[str], limit: int) -> list[str]:
    """The first ``limit`` items of a list shown in a message, plus ``... and N more`` for the rest.

    Args:
        items: The lines or names.
        limit: How many to show.

    Returns:
        The lines to join.
    """
    return items[:limit] + ([f'... and {len(items) - limit} more'] if len(items) > limit else [])
