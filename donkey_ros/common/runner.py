"""Running nodes: start-up errors as one line, clean exit on SIGINT/SIGTERM, shutdown hooks.

Every node's ``main`` is ``run_nodes([MyNode])``. Signals are handled here, not by rclpy, so that
the context is still valid when shutdown hooks run: a node can publish a last neutral command or
write a stopped pulse before it goes.
"""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable, Sequence

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, \
    SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.signals import SignalHandlerOptions

from donkey_ros.common.errors import DonkeyRosError


class Shutdown:
    """Set by SIGINT/SIGTERM (or by code) to end ``spin_until``."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.event.set())

    def request(self) -> None:
        self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def ros_args_problem(args: Sequence[str], error: Exception) -> str:
    """One line saying which ``--params-file`` or ``-p`` rule rcl refused, and why."""
    from donkey_ros.common.param_file import ParamFileError, read_param_file

    args = list(args)
    for flag, value in zip(args, args[1:] + ['']):
        if flag == '--params-file':
            if not value:
                return '--params-file needs a file name'
            try:
                read_param_file(value)
            except ParamFileError as problem:
                return str(problem)
        elif flag in ('-p', '--param'):
            name, sep, text = value.partition(':=')
            if not sep or not name.rsplit(':', 1)[-1]:
                return f"'{flag} {value}' is not a parameter rule (write {flag} NAME:=VALUE)"
            if not text:
                return (f"parameter '{name}' has no value in '{flag} {value}' (write "
                        f"{flag} {name}:=VALUE; an empty string is {flag} {name}:=\"''\")")
    # Not one this function knows: rcl's own words, without its source locations.
    text = str(error).split(', at /')[0]
    return text.replace('failed to initialize rcl: ', '')


def call_shutdown_hooks(nodes) -> None:
    """Calls ``on_shutdown()`` of every node that has one (failsafe first, then the rest)."""
    for node in nodes:
        hook = getattr(node, 'on_shutdown', None)
        if hook is not None:
            try:
                hook()
            except Exception as error:  # a failing hook must not stop the others
                node.get_logger().error(f'shutdown hook failed: {error}')


class NodeFactory:
    """Makes one node for ``run_nodes``: ``cls`` with these parameter overrides in ``namespace``,
    kept in ``created[cls.NODE_NAME]`` so the caller's ``tick`` can reach it while it runs."""

    def __init__(self, cls, overrides: Sequence = (), created: dict | None = None,
                 namespace: str = '') -> None:
        self.cls, self.overrides, self.created, self.namespace = cls, overrides, created, namespace
        self.NODE_NAME = cls.NODE_NAME

    def __call__(self):
        kwargs = {'namespace': self.namespace} if self.namespace else {}
        node = self.cls(parameter_overrides=list(self.overrides), **kwargs)
        if self.created is not None:
            self.created[self.NODE_NAME] = node
        return node


def run_nodes(factories: Sequence[Callable[..., object]], args: list[str] | None = None,
              threads: int = 1, tick: Callable[[], None] | None = None,
              tick_period: float = 0.1) -> int:
    """Creates the nodes, spins them until a signal, shuts them down; returns an exit code.

    Args:
        factories: node classes (or callables) taking ``**kwargs`` for ``rclpy.node.Node``.
        args: command-line arguments (``--ros-args`` ...); ``sys.argv`` by default.
        threads: executor threads (1 = single-threaded executor).
        tick: called from the main thread about every ``tick_period`` s; return True to stop.
    """
    args = args if args is not None else sys.argv
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except _rclpy.RCLError as error:  # a bad --params-file or -p rule: rcl refuses the arguments
        print(f'error: {ros_args_problem(args, error)}', file=sys.stderr)
        return 2
    shutdown = Shutdown()
    shutdown.install()
    nodes = []
    try:
        try:
            for factory in factories:
                nodes.append(factory())
        except (DonkeyRosError, _rclpy.RCLError, ParameterException) as error:
            name = getattr(factory, 'NODE_NAME', getattr(factory, '__name__', 'donkey_ros'))
            text = str(error) if isinstance(error, DonkeyRosError) else ros_args_problem(
                args, error)
            rclpy.logging.get_logger(name).error(text)
            return 2
        executor = SingleThreadedExecutor() if threads <= 1 else MultiThreadedExecutor(threads)
        for node in nodes:
            executor.add_node(node)
        try:
            while not shutdown.requested and rclpy.ok():
                executor.spin_once(timeout_sec=tick_period)
                if tick is not None and tick():
                    break
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        call_shutdown_hooks(nodes)
        # Let the last messages (neutral commands) leave before the nodes go.
        for _ in range(3):
            executor.spin_once(timeout_sec=0.01)
        # Before rclpy shuts down: an executor collected after it prints a traceback at exit
        # ("Exception ignored in Executor.__del__ ... InvalidHandle").
        executor.shutdown(timeout_sec=1.0)
        return 0
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


def node_main(factory: Callable[..., object], threads: int = 1) -> None:
    """``main()`` of a single-node executable."""
    sys.exit(run_nodes([factory], threads=threads))
