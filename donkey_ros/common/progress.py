"""The progress bar of the offline tools (reading bags, training, evaluating): one look."""
from __future__ import annotations

import sys


def progress_bar(description: str, unit: str, total: int | None = None):
    """A tqdm bar on stdout; silent when stdout is not a terminal (logs, tests)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=f' {unit}', file=sys.stdout,
                dynamic_ncols=True, mininterval=0.5, disable=None)
