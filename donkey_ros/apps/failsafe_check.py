"""Measures the actuator failsafe with real processes on the emulated board; writes a picture.

    python -m donkey_ros.apps.failsafe_check OUT_DIR [--runs 5] [--timeout 0.5] [--rate 50]

Each run starts the actuator (``backend:=emulated``) and a separate process publishing ``cmd``
(forward 0.5, full left) at 50 Hz, waits until the board outputs that, kills the source with
SIGKILL and measures how long the board keeps the forward pulse. The last run then sends SIGTERM
to the actuator while a source drives it. Prints the delays and writes ``failsafe.png``
(the pulses of the last run over time).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

from donkey_ros.actuation.emulated_pca9685 import latest, read_log
from donkey_ros.actuation.timeline import plot

SOURCE = """
import sys, time, rclpy
from geometry_msgs.msg import TwistStamped
from donkey_ros.common import qos
rclpy.init()
node = rclpy.create_node('source', namespace=sys.argv[1])
pub = node.create_publisher(TwistStamped, 'cmd', qos.COMMAND)
msg = TwistStamped()
msg.twist.linear.x, msg.twist.angular.z = 0.5, 1.0
while True:
    pub.publish(msg)
    time.sleep(0.02)
"""
THROTTLE, STEERING, FORWARD, STOPPED = 0, 1, 435, 370


def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def _driving(log: str) -> bool:
    last = latest(read_log(log))
    return THROTTLE in last and last[THROTTLE].ticks == FORWARD


def run_once(log: str, namespace: str, timeout: float, rate: float, sigterm: bool = False):
    """Returns (seconds from the kill to the stopped pulse, marks for the picture)."""
    actuator = subprocess.Popen(
        [sys.executable, '-m', 'donkey_ros.actuation.actuator_node', '--ros-args',
         '-r', f'__ns:={namespace}', '-p', 'backend:=emulated', '-p', f'emulated_log:={log}',
         '-p', f'timeout:={timeout}', '-p', f'rate:={rate}'],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    source = subprocess.Popen([sys.executable, '-c', SOURCE, namespace])
    try:
        if not _wait(lambda: _driving(log), 60):
            raise RuntimeError('the emulated car never drove')
        time.sleep(0.3)
        victim = actuator if sigterm else source
        killed = time.monotonic()
        victim.send_signal(signal.SIGTERM if sigterm else signal.SIGKILL)
        victim.wait(timeout=10)

        def stopped():
            throttle = [o for o in read_log(log) if o.channel == THROTTLE]
            last_drive = max(i for i, o in enumerate(throttle) if o.ticks == FORWARD)
            return [o for o in throttle[last_drive:] if o.ticks == STOPPED]

        if not _wait(stopped, 5):
            raise RuntimeError('the throttle never went back to stopped')
        label = 'SIGTERM actuator' if sigterm else 'kill -9 source'
        return stopped()[0].t - killed, {label: killed}
    finally:
        for process in (source, actuator):
            if process.poll() is None:
                process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m donkey_ros.apps.failsafe_check',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='folder for failsafe.png and the board logs')
    parser.add_argument('--runs', type=int, default=5)
    parser.add_argument('--timeout', type=float, default=0.5)
    parser.add_argument('--rate', type=float, default=50.0)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    delays = []
    for run in range(args.runs):
        log = os.path.join(args.out, f'board_kill{run}.jsonl')
        if os.path.exists(log):
            os.unlink(log)
        delay, marks = run_once(log, f'/failsafe{os.getpid()}_{run}', args.timeout, args.rate)
        delays.append(delay)
        print(f'run {run + 1}/{args.runs}: kill -9 of the cmd source -> stopped pulse after '
              f'{delay * 1000:.0f} ms', flush=True)
    bound = args.timeout + 1.0 / args.rate
    print(f'kill -9 -> stopped: min {min(delays) * 1000:.0f} ms, median '
          f'{statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms '
          f'(timeout + one control period = {bound * 1000:.0f} ms)')
    log = os.path.join(args.out, 'board_sigterm.jsonl')
    if os.path.exists(log):
        os.unlink(log)
    delay, sigterm_marks = run_once(log, f'/failsafe{os.getpid()}_term', args.timeout,
                                    args.rate, sigterm=True)
    print(f'SIGTERM of the actuator while driven -> stopped pulse after {delay * 1000:.0f} ms')
    picture = os.path.join(args.out, 'failsafe.png')
    kill_log = os.path.join(args.out, f'board_kill{args.runs - 1}.jsonl')
    plot(read_log(kill_log), picture, {'throttle': THROTTLE, 'steering': STEERING}, marks,
         f'kill -9 of the cmd source: stopped after {delays[-1] * 1000:.0f} ms '
         f'(timeout {args.timeout} s, control {args.rate:g} Hz)')
    print(f'picture: {picture}')
    return 0 if max(delays) <= bound + 0.05 else 1


if __name__ == '__main__':
    sys.exit(main())
