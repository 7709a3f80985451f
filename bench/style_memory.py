"""Memory of the style_transfer node: held after a large request, peak under parallel requests.

    python bench/style_memory.py [--budget 1024] [--size 2048x2048] [--parallel 4]

The node runs in its own process (as deployed, threads 1); this process is the client and reads
the node's /proc/PID/status (VmRSS: resident now; VmHWM: the peak, reset through
/proc/PID/clear_refs before each phase). Phases:

1. idle: the node after start-up (networks loaded, warmed up at 160x120).
2. one request at --size: answer, then resident memory once the node has answered.
3. --parallel requests at --size sent at once: how many ran, waited or were refused, and the
   node's peak while they ran, then resident memory after.
4. the same with the largest size the budget admits (printed by the refusal), when --size was
   refused.

Before the budget (issue 13, same machine type): a 2048x2048 request left the node holding
2.9 GB; four parallel ones peaked at 12.0 GB.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from procstat import memory_mb  # noqa: E402


def reset_peak(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/clear_refs', 'w') as stream:
            stream.write('5')
        return True
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--budget', type=int, default=None,
                        help='memory_budget_mb of the node (default: the node\'s default)')
    parser.add_argument('--size', default='2048x2048', help='request size WIDTHxHEIGHT')
    parser.add_argument('--parallel', type=int, default=4, help='requests sent at once')
    parser.add_argument('--queue-timeout', type=float, default=600.0,
                        help='queue_timeout of the node (long: waiting requests run in turn)')
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

    from donkey_ros.common.image import parse_size
    from style_client import style_service

    width, height = parse_size(args.size)

    namespace = f'/membench{os.getpid()}'
    params = ["warmup_sizes:=['160x120']", 'threads:=1', f'queue_timeout:={args.queue_timeout}']
    if args.budget is not None:
        params.append(f'memory_budget_mb:={args.budget}')
    with style_service(namespace, params, 'style_memory_bench', stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL) as service:
        return measure(args, service, width, height)


def measure(args: argparse.Namespace, service, width: int, height: int) -> int:
    from donkey_ros_interfaces.srv import Stylize

    from donkey_ros.common.image import array_to_image

    process, client, executor = service.process, service.client, service.executor

    def send(count: int, w: int, h: int) -> list:
        rng = np.random.default_rng(0)
        futures = []
        for _ in range(count):
            request = Stylize.Request(style='style7', strength=1.0, width=w, height=h)
            array_to_image(rng.integers(0, 255, (h, w, 3), np.uint8), msg=request.image)
            futures.append(client.call_async(request))
        peak = 0.0
        while not all(f.done() for f in futures):
            executor.spin_once(timeout_sec=0.05)
            peak = max(peak, memory_mb(process.pid)['VmRSS'])
        return [f.result() for f in futures], peak

    def phase(label: str, count: int, w: int, h: int) -> str:
        reset_peak(process.pid)
        started = time.perf_counter()
        results, polled = send(count, w, h)
        seconds = time.perf_counter() - started
        time.sleep(0.5)
        after = memory_mb(process.pid)
        ok = sum(r.success for r in results)
        refused = [r.message for r in results if not r.success]
        print(f'{label}: {count} x {w}x{h}: {ok} served, {len(refused)} refused in '
              f'{seconds:.1f} s; peak {after["VmHWM"]:.0f} MB (polled {polled:.0f}), '
              f'resident after {after["VmRSS"]:.0f} MB')
        for message in sorted(set(refused)):
            print(f'    refused: {message}')
        return refused[0] if refused else ''

    if not client.wait_for_service(timeout_sec=120):
        print('the style_transfer node did not start')
        return 1
    time.sleep(1.0)
    idle = memory_mb(process.pid)
    print(f'node idle: resident {idle["VmRSS"]:.0f} MB (peak so far {idle["VmHWM"]:.0f} MB); '
          f'budget {args.budget if args.budget is not None else "default"} MB, '
          f'{os.cpu_count()} CPU(s)')
    refused = phase('one request', 1, width, height)
    phase(f'{args.parallel} in parallel', args.parallel, width, height)
    fits = re.search(r'at most (\d+)x(\d+) fits', refused)
    if fits:
        w, h = int(fits.group(1)), int(fits.group(2))
        phase('one request at the largest size that fits', 1, w, h)
        phase(f'{args.parallel} in parallel at that size', args.parallel, w, h)
    return 0


if __name__ == '__main__':
    sys.exit(main())
