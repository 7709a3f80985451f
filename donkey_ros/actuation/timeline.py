"""Picture of what an emulated PCA9685 output over time (from its ``emulated_log``).

    python -m donkey_ros.actuation.timeline board.jsonl board.png [--mark 12.3:kill]

Draws the steering and throttle pulse widths as steps, with the calibrated stopped pulse and
optional marked instants (monotonic seconds, as in the log), and prints a one-line summary.
"""
from __future__ import annotations

import argparse
import sys

from donkey_ros.actuation.emulated_pca9685 import Output, read_log
from donkey_ros.common.errors import DonkeyRosError


def plot(outputs: list[Output], path: str, channels: dict[str, int],
         marks: dict[str, float] | None = None, title: str = 'PCA9685 outputs') -> None:
    """Writes a PNG of the pulse width of each named channel over time."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    driven = [o for o in outputs if o.ticks > 0]
    if not driven:
        raise DonkeyRosError('the log holds no output pulses')
    start = driven[0].t
    figure, axes = plt.subplots(len(channels), 1, figsize=(9, 2.6 * len(channels)),
                                sharex=True, squeeze=False)
    for axis, (name, channel) in zip(axes[:, 0], channels.items()):
        points = [o for o in outputs if o.channel == channel and o.t >= start]
        if points:
            times = [o.t - start for o in points] + [max(o.t for o in outputs) - start + 0.2]
            values = [o.pulse_us for o in points] + [points[-1].pulse_us]
            axis.step(times, values, where='post', linewidth=2, label=f'{name} (ch {channel})')
        for label, t in (marks or {}).items():
            axis.axvline(t - start, color='tab:red', linestyle='--')
            axis.annotate(label, (t - start, axis.get_ylim()[1]), color='tab:red',
                          textcoords='offset points', xytext=(3, -12))
        axis.set_ylabel('pulse (us)')
        axis.grid(alpha=0.3)
        axis.legend(loc='lower left')
    axes[-1, 0].set_xlabel('time (s)')
    axes[0, 0].set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m donkey_ros.actuation.timeline',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('log', help='emulated_log file (JSON lines)')
    parser.add_argument('png', help='picture to write')
    parser.add_argument('--steering-channel', type=int, default=1)
    parser.add_argument('--throttle-channel', type=int, default=0)
    parser.add_argument('--mark', action='append', default=[],
                        help='SECONDS:LABEL, a monotonic instant to mark (repeatable)')
    parser.add_argument('--title', default='PCA9685 outputs (emulated board)')
    args = parser.parse_args(argv)
    outputs = read_log(args.log)
    marks = {}
    for mark in args.mark:
        seconds, _, label = mark.partition(':')
        marks[label or seconds] = float(seconds)
    try:
        plot(outputs, args.png, {'throttle': args.throttle_channel,
                                 'steering': args.steering_channel}, marks, args.title)
    except DonkeyRosError as error:
        print(f'timeline: {error}', file=sys.stderr)
        return 1
    print(f'{len(outputs)} output changes -> {args.png}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
