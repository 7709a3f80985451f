"""How a run on the simulator went: laps, lap times, off-track events, cross-track error.

One bookkeeping for every driver of the simulator: ``donkey-ros drive`` (live, through the
nodes), the loop's fast in-process drive and its drive through the nodes. Feed it the
simulator's status (``sim.simulator.SimStatus``) once per sample.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Events:
    """What one status sample brought."""

    lap: bool = False           # a lap was completed (its time is ``RunStats.lap_times[-1]``)
    off_track: bool = False     # the car left the road (the simulator then puts it back)


@dataclass
class RunStats:
    """Accumulates status samples. With ``keep_path`` it also keeps the car's path
    ``(x, y, |cte|)`` and where it left the road (the last sampled position before)."""

    keep_path: bool = False
    lap_times: list = field(default_factory=list)
    off_track: int = 0
    samples: int = 0
    cte_sum: float = 0.0
    cte_max: float = 0.0
    path: list = field(default_factory=list, repr=False)
    off_track_at: list = field(default_factory=list, repr=False)

    def update(self, status, position: tuple[float, float] | None = None) -> Events:
        """Adds one sample; ``position`` is the car's centre (for the path)."""
        cte = abs(status.cross_track_error)
        self.samples += 1
        self.cte_sum += cte
        self.cte_max = max(self.cte_max, cte)
        went_off = status.off_track_count > self.off_track
        if went_off:
            self.off_track = status.off_track_count
            where = self.path[-1][:2] if self.path else position
            if where is not None:
                self.off_track_at.append(where)
        if self.keep_path and position is not None:
            self.path.append((*position, cte))
        lap = status.laps > len(self.lap_times)
        if lap:
            self.lap_times.append(status.last_lap_time)
        return Events(lap=lap, off_track=went_off)

    @property
    def laps(self) -> int:
        return len(self.lap_times)

    @property
    def mean_abs_cte(self) -> float:
        return self.cte_sum / self.samples if self.samples else 0.0
