"""CPU time and memory of a process from /proc (Linux), for the benches."""
from __future__ import annotations

import os

CLOCK_TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f'/proc/{pid}/stat') as stat:
        fields = stat.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` (resident now) and ``VmHWM`` (peak resident) of a process, MB (0 if absent)."""
    values = {'VmRSS': 0.0, 'VmHWM': 0.0}
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            key, _, rest = line.partition(':')
            if key in values:
                values[key] = int(rest.split()[0]) / 1024
    return values
