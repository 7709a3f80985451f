"""`donkey-ros car` (and the `car` executable): the car's nodes in one process.

The camera, pilot, drive-mode mux and actuator (``--record``: the recorder too) run in one
process, as ``donkey-ros drive`` runs the simulator's. Messages between them still go through
ROS 2 topics, so every other node, tool and launch file sees the same graph as with one process
per node; what goes away is the work of running four Python interpreters, and the cost of the
hops between them (measured: bench/glass_to_wheel.py, docs/hardware.md).

The actuator has an executor of its own in a thread of its own: a callback that hangs anywhere
else in the process (pilot, mux, camera) cannot stall its watchdog, which then sends the stopped
pulse ``timeout`` s after the last command, as it does when the mux process dies. The recorder,
which writes files, also gets its own, so disk writes never delay a command.

``--intra-process``: the fast path (``common/intra.py``). Frames, ``pilot/cmd`` and ``cmd`` go
from node to node inside the process without DDS, and over DDS only when something outside the
process subscribes; messages from other processes on those topics still arrive. A frame goes to
the pilot's inference thread; its command is handed on by calls in that thread (the mux and the
actuator lock their state; the mux forwards only while its own executor is alive), so the
pilot's publish returns once the steering register is written.

Parameters come from a ROS 2 parameter file (default: the installed config/car.yaml), each node
reading its own section; ``--ros-args`` after the options go to every node
(``-p actuator:timeout:=0.3`` sets one node's parameter).

    donkey-ros car --mode user [--model pilot.tflite] [--params-file my_car.yaml] [--record]
                   [--intra-process]
    ros2 launch donkey_ros car.launch.py single_process:=true [intra_process:=true]
"""
from __future__ import annotations

import argparse
import os
import sys

from rclpy.parameter import Parameter

from donkey_ros.common import intra
from donkey_ros.common.argtypes import true_or_false
from donkey_ros.common.runner import EXECUTOR_ENV, EXECUTORS, run_nodes
from donkey_ros.control.mux import MODES
from donkey_ros.resources import config_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='donkey-ros car', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mode', choices=MODES, default=None,
                        help="drive mode at start (default: the parameter file's, else user)")
    parser.add_argument('--model', default=None,
                        help='pilot model (.tflite); default: the parameter file\'s, else the '
                             'shipped model')
    parser.add_argument('--params-file', default=None,
                        help='ROS 2 parameter file (default: the installed config/car.yaml)')
    parser.add_argument('--namespace', default='', help='namespace of the car (e.g. car1)')
    parser.add_argument('--record', action='store_true',
                        help='run the recorder in this process too')
    parser.add_argument('--intra-process', type=true_or_false, nargs='?', const=True,
                        default=False,
                        metavar='true|false',
                        help='the in-process fast path between the nodes (docs/hardware.md)')
    parser.add_argument('--executor', choices=EXECUTORS, default=None,
                        help="rclpy executor: events (rclpy's EventsExecutor), single, or auto "
                             '(events where rclpy has it); default $DONKEY_ROS_EXECUTOR or single')
    return parser


def parts(args: argparse.Namespace) -> list[tuple[type, list[Parameter], bool]]:
    """(node class, parameter overrides, isolated) of every node of the car, in start order.

    Isolated nodes get an executor and a thread of their own (``runner.Spinner``).
    """
    from donkey_ros.actuation.actuator_node import ActuatorNode
    from donkey_ros.camera.camera_node import CameraNode
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.learning.pilot_node import PilotNode

    found = [
        (ActuatorNode, [], True),
        (MuxNode, [Parameter('mode', value=args.mode)] if args.mode else [], False),
        (PilotNode, [Parameter('model_path', value=args.model)] if args.model else [], False),
        (CameraNode, [], False),
    ]
    if args.record:
        from donkey_ros.recording.recorder_node import RecorderNode
        found.append((RecorderNode, [], True))
    return found


def split_ros_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """(our options, the ``--ros-args ...`` part) of a command line."""
    if '--ros-args' in argv:
        index = argv.index('--ros-args')
        return argv[:index], argv[index:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, ros = split_ros_args(argv)
    args = build_parser().parse_args(ours)
    params_file = args.params_file or str(config_file('car.yaml'))
    ros_args = ['--ros-args', '--params-file', params_file]
    if args.namespace:
        ros_args += ['-r', f'__ns:=/{args.namespace.strip("/")}']
    ros_args += ros[1:]  # the caller's --ros-args last: they win
    if args.executor:  # the pilot's frame thread makes its own executor: the same kind
        os.environ[EXECUTOR_ENV] = args.executor
    main_factories, isolated = [], []
    for cls, overrides, own_thread in parts(args):
        def factory(cls=cls, overrides=overrides, **kwargs):
            if args.intra_process:  # before the first node: its publishers use it
                intra.enable(kwargs.get('context'))
            return cls(parameter_overrides=overrides, **kwargs)
        factory.NODE_NAME = cls.NODE_NAME
        (isolated if own_thread else main_factories).append(factory)
    names = ' + '.join(f.NODE_NAME for f in isolated + main_factories)
    path = ', in-process fast path' if args.intra_process else ''
    print(f'donkey-ros car: {names} in one process{path} ({params_file})', flush=True)
    return run_nodes(main_factories, args=['donkey-ros-car'] + ros_args, executor=args.executor,
                     isolated=isolated)


def console_main() -> None:
    """The ``car`` executable (launch files): ``car [options] [--ros-args ...]``."""
    sys.exit(main())


if __name__ == '__main__':
    console_main()
