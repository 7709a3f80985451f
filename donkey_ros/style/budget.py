"""A memory budget for style requests (no rclpy): each request reserves the memory its network
needs at its size before it runs; a request that can never fit is refused, one that does not fit
now waits (up to ``timeout``, at most ``max_waiting`` at a time) for running ones to finish.

    budget = MemoryBudget(1024 * MB, timeout=30.0, max_waiting=2)
    with budget.reserve(need, what='2048x2048'):    # StyleError if refused
        run_the_network()
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from donkey_ros.style.errors import StyleError

MB = 1 << 20


class MemoryBudget:
    """Bytes that running requests may hold together.

    Args:
        limit: the budget in bytes; 0 = no limit (every request runs at once).
        timeout: seconds a request may wait for others to finish before it is refused.
        max_waiting: requests allowed to wait at once; more are refused at once (each waiting
            request holds a thread of the caller).
    """

    def __init__(self, limit: int, timeout: float = 30.0, max_waiting: int = 2) -> None:
        self.limit = int(limit)
        self.timeout = float(timeout)
        self.max_waiting = int(max_waiting)
        self.reserved = 0
        self.running = 0
        self.waiting = 0
        self.refused = 0
        self.queued = 0
        """Requests that had to wait (then ran or were refused)."""
        self._ready = threading.Condition()

    def fits(self, need: int) -> bool:
        """True if a request needing ``need`` bytes can ever run under this budget."""
        return not self.limit or need <= self.limit

    @contextmanager
    def reserve(self, need: int, what: str = 'this request',
                hint: str = '') -> Iterator[None]:
        """Holds ``need`` bytes of the budget while the block runs.

        Raises:
            StyleError: ``need`` is over the whole budget (``hint`` is added: what would fit),
                too many requests are already waiting, or the wait exceeded ``timeout``.
        """
        need = int(need)
        with self._ready:
            if not self.fits(need):
                self.refused += 1
                raise StyleError(f'{what} needs about {need / MB:.0f} MB, more than the memory '
                                 f'budget of {self.limit / MB:.0f} MB (memory_budget_mb)'
                                 + (f'; {hint}' if hint else ''))
            if not self._free(need):
                if self.waiting >= self.max_waiting:
                    self.refused += 1
                    raise StyleError(self._busy(what, need, 'too many requests already wait'))
                self.waiting += 1
                self.queued += 1
                deadline = time.monotonic() + self.timeout
                try:
                    while not self._free(need):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            self.refused += 1
                            raise StyleError(self._busy(
                                what, need, f'waited {self.timeout:g} s (queue_timeout)'))
                        self._ready.wait(left)
                finally:
                    self.waiting -= 1
            self.reserved += need
            self.running += 1
        try:
            yield
        finally:
            with self._ready:
                self.reserved -= need
                self.running -= 1
                self._ready.notify_all()

    def _free(self, need: int) -> bool:
        return not self.limit or self.reserved + need <= self.limit or self.running == 0

    def _busy(self, what: str, need: int, why: str) -> str:
        return (f'busy: {what} needs about {need / MB:.0f} MB and {self.running} running '
                f'request(s) hold {self.reserved / MB:.0f} of the {self.limit / MB:.0f} MB memory '
                f'budget; {why}: try again')
