"""argparse types for the command lines: a value checked (range, form), one clear message."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def whole_number(low: int = 0, high: int | None = None, what: str = 'whole number',
                 note: str = '') -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (no upper bound if ``high`` is None).

    ``what`` names the unit in the message ('whole number of pixels'); ``note`` is added to the
    out-of-range message ('0 = no limit').
    """
    suffix = f' ({note})' if note else ''

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a {what}") from None
        if value < low or (high is not None and value > high):
            where = (f'outside {low}-{high}' if high is not None
                     else 'negative' if low == 0 else f'below {low}')
            raise argparse.ArgumentTypeError(f'{value} is {where}{suffix}')
        return value
    return parse


def seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds >= 0 (0 = no limit)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f'{text} must be a finite number >= 0 (0 = no limit)')
    return value


def true_or_false(text: str) -> bool:
    """An argparse ``type``: true/false (also 1/0, yes/no, on/off), as a launch file passes a
    boolean launch argument."""
    value = text.strip().lower()
    if value not in ('true', 'false', '1', '0', 'yes', 'no', 'on', 'off'):
        raise argparse.ArgumentTypeError(f"'{text}' is not true or false")
    return value in ('true', '1', 'yes', 'on')
