"""Argument types shared by the command-line tools."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(low: float, kind: type = int) -> Callable[[str], float]:
    """An argparse ``type``: a number of ``kind`` that is at least ``low`` (argparse names the flag on error)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not {"an integer" if kind is int else "a number"}') from None
        if value < low:
            raise argparse.ArgumentTypeError(f'{text} is below {low}')
        return value

    parse.__name__ = f'{kind.__name__} >= {low}'
    return parse
