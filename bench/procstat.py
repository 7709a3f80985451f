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


def machine_ticks() -> tuple[int, int]:
    """(all CPU ticks, ticks stolen by the hypervisor) of the whole machine since boot."""
    with open('/proc/stat') as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields[:8]), fields[7]  # user nice system idle iowait irq softirq steal


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of the machine's CPU time the hypervisor took between two ``machine_ticks``."""
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total > 0 else 0.0
