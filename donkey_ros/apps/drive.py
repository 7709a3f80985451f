"""`donkey-ros drive`: the car stack on the simulator, in one process, with live progress.

By default the simulator, the expert driver (as the "user"), the mux and the web controller run
together and the expert drives ``--laps`` laps; the summary lists lap times and off-track events.
``--mode pilot`` (or ``pilot_steer``) adds the CNN pilot (``--model``, default: the shipped model);
``--no-expert`` leaves the user's seat to you (web page, joystick or keyboard teleop).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

from rclpy.parameter import Parameter

from donkey_ros.common.argtypes import seconds, whole_number
from donkey_ros.common.runner import NodeFactory, run_nodes
from donkey_ros.control.mux import MODES
from donkey_ros.resources import config_file
from donkey_ros.sim.run_stats import RunStats
from donkey_ros.sim.settings import FRAME_RATE


@dataclass
class Progress:
    """Watches the simulator's status; decides when the run is over; prints what happened."""

    laps_wanted: int
    duration: float
    print_every: float = 5.0
    started: float = field(default_factory=time.monotonic)
    stats: RunStats = field(default_factory=RunStats)
    last_print: float = field(default_factory=time.monotonic)

    def update(self, status) -> bool:
        """Reads one status sample; returns True when the run is done."""
        now = time.monotonic()
        events = self.stats.update(status)
        if events.off_track:
            print(f'  ! off track (#{self.stats.off_track}) at {now - self.started:.1f} s',
                  flush=True)
        if events.lap:
            print(f'  lap {status.laps}: {status.last_lap_time:.2f} s '
                  f'(off-track events so far: {self.stats.off_track})', flush=True)
        elif now - self.last_print >= self.print_every:
            print(f'  {now - self.started:5.1f} s  lap {status.laps + 1} at '
                  f'{status.progress:5.1f} m, {status.speed:.2f} m/s, cte {status.cross_track_error:+.2f} m',
                  flush=True)
            self.last_print = now
        if self.laps_wanted and status.laps >= self.laps_wanted:
            return True
        return bool(self.duration) and now - self.started >= self.duration

    def summary(self) -> str:
        elapsed = time.monotonic() - self.started
        lap_times = self.stats.lap_times
        lines = ['', 'summary',
                 f'  laps completed    : {len(lap_times)}',
                 f'  lap times (s)     : {", ".join(f"{t:.2f}" for t in lap_times) or "-"}',
                 f'  best lap (s)      : {min(lap_times):.2f}' if lap_times
                 else '  best lap (s)      : -',
                 f'  off-track events  : {self.stats.off_track}',
                 f'  mean |cte| (m)    : {self.stats.mean_abs_cte:.3f}',
                 f'  wall time (s)     : {elapsed:.1f}']
        return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='donkey-ros drive', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--laps', type=whole_number(0, note='0 = no limit'), default=3,
                        help='stop after this many laps (0 = no limit)')
    parser.add_argument('--duration', type=seconds, default=0.0,
                        help='stop after this many seconds (0 = no limit)')
    parser.add_argument('--track', default=None, help='shipped track name or track YAML path')
    parser.add_argument('--mode', choices=MODES, default='user',
                        help='drive mode of the mux (user = the expert drives)')
    parser.add_argument('--speed', type=float, default=None, help="expert's target speed (m/s)")
    parser.add_argument('--no-expert', action='store_true',
                        help='no expert: you drive (web page, joystick, keyboard_teleop)')
    parser.add_argument('--model', default=None,
                        help='pilot model (.tflite) for --mode pilot/pilot_steer '
                             '(default: the shipped model)')
    parser.add_argument('--time-scale', type=float, default=1.0,
                        help='simulated seconds per wall second (the camera rate scales with it)')
    parser.add_argument('--params-file', default=None,
                        help='ROS 2 parameter file (default: the installed config/sim.yaml)')
    parser.add_argument('--namespace', default='', help='namespace of the car (e.g. car1)')
    parser.add_argument('--no-web', action='store_true', help='do not start the web controller')
    parser.add_argument('--web-port', type=int, default=None,
                        help='port of the web controller (default 8887; 0 = any free port)')
    parser.add_argument('--web-host', default=None,
                        help='address the web controller listens on (default 127.0.0.1; '
                             '0.0.0.0 = the network, with a token)')
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.sim.expert_node import ExpertNode
    from donkey_ros.sim.sim_node import SimNode
    from donkey_ros.web.web_node import WebNode

    params_file = args.params_file or str(config_file('sim.yaml'))
    common = [Parameter('track', value=args.track)] if args.track else []
    sim = common + ([Parameter('time_scale', value=args.time_scale),
                     Parameter('rate', value=FRAME_RATE * args.time_scale)]
                    if args.time_scale != 1.0 else [])
    expert = common + ([Parameter('speed', value=args.speed)] if args.speed else [])
    nodes = {}

    def make(cls, overrides):
        return NodeFactory(cls, overrides, nodes, args.namespace)

    progress = Progress(laps_wanted=args.laps, duration=args.duration)

    def tick() -> bool:
        if 'web' in nodes and not progress.stats.samples:
            print(f"  web controller: {nodes['web'].url}", flush=True)
        return progress.update(nodes['sim'].sim.status)

    what = f'{args.laps} laps' if args.laps else f'{args.duration:g} s' if args.duration \
        else 'until Ctrl-C'
    cast = ['simulator', 'mux'] + ([] if args.no_expert else ['expert']) + \
        (['pilot'] if args.mode != 'user' else []) + ([] if args.no_web else ['web'])
    print(f"donkey-ros drive: {' + '.join(cast)} (mode {args.mode}), {what}", flush=True)
    factories = [make(SimNode, sim), make(MuxNode, [Parameter('mode', value=args.mode)])]
    if not args.no_expert:
        factories.append(make(ExpertNode, expert))
    if args.mode != 'user':
        from donkey_ros.learning.pilot_node import PilotNode
        factories.append(make(PilotNode, [Parameter('model_path', value=args.model)]
                              if args.model else []))
    if not args.no_web:
        web = [Parameter(name, value=value) for name, value in
               (('port', args.web_port), ('host', args.web_host)) if value is not None]
        factories.append(make(WebNode, web))

    code = run_nodes(factories, args=['donkey-ros', '--ros-args', '--params-file', params_file],
                     tick=tick)
    if code == 0:
        print(progress.summary())
    return code
