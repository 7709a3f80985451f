"""Running nodes: start-up errors as one line, clean exit on SIGINT/SIGTERM, shutdown hooks.

Every node's ``main`` is ``run_nodes([MyNode])``. Signals are handled here, not by rclpy, so that
the context is still valid when shutdown hooks run: a node can publish a last neutral command or
write a stopped pulse before it goes.

Executors: ``make_executor`` gives rclpy's EventsExecutor (its wait loop runs in C++; ROS 2
Kilted, ``rclpy.experimental``) or the SingleThreadedExecutor (Jazzy has nothing else), chosen by
``kind`` ('events', 'single' or 'auto'), by default from ``DONKEY_ROS_EXECUTOR``. Nodes that must
keep working when another node's callback hangs (the actuator's watchdog) get an executor of their
own in a thread of their own (``Spinner.add(node, isolated=True)``).
"""
from __future__ import annotations

import gc
import os
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

from donkey_ros.common.distro import rclpy_version
from donkey_ros.common.errors import ConfigError, DonkeyRosError

EXECUTORS = ('auto', 'events', 'single')
EXECUTOR_ENV = 'DONKEY_ROS_EXECUTOR'
DEFAULT_EXECUTOR = 'single'
"""Not 'auto' (yet): rclpy's EventsExecutor is experimental. The failure once blamed on it (1 run
in 4 of test_car's busy-hang case "never delivered again") was the test's check, which waited for
a pulse that only a few queued commands still made (docs/hardware.md, Executors)."""
SPIN_PERIOD = 0.1
"""Longest wait of one ``spin_once``. Never wait without a timeout: rclpy 9.1's EventsExecutor
busy-loops in ``spin()`` and ``spin_once()`` without one and then delivers no messages at all."""


def events_executor_class():
    """rclpy's EventsExecutor (``rclpy.experimental``; Kilted 9.1 and Jazzy 7.1.5 wheels have it),
    or None where rclpy lacks it."""
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:
        return None
    return EventsExecutor


def executor_kind(kind: str | None = None) -> str:
    """'events' or 'single': ``kind`` (default: $DONKEY_ROS_EXECUTOR, else DEFAULT_EXECUTOR).

    'auto' is the EventsExecutor where rclpy has it, else the SingleThreadedExecutor.

    Raises:
        ConfigError: unknown kind, or 'events' asked for where rclpy has no EventsExecutor.
    """
    kind = (kind or os.environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR).strip().lower()
    if kind not in EXECUTORS:
        raise ConfigError(f"unknown executor '{kind}' (valid: {', '.join(EXECUTORS)}; "
                          f'from --executor or ${EXECUTOR_ENV})')
    available = events_executor_class() is not None
    if kind == 'events' and not available:
        version = rclpy_version() or 'version unknown'
        raise ConfigError(f'this rclpy ({version}) has no EventsExecutor (rclpy.experimental); '
                          'use --executor single')
    if kind == 'auto':
        return 'events' if available else 'single'
    return kind


def events_unsupported(node) -> str:
    """Why rclpy 9.1's EventsExecutor cannot run ``node`` ('' if it can).

    Measured here: a subscription whose callback takes the message info (``cb(msg, info)``)
    makes its ``spin_once`` raise ``SystemError: null argument to internal routine``, and it
    refuses guard conditions. A node that will create such subscriptions later (the recorder,
    as topics appear) says so with a class attribute ``MESSAGE_INFO_CALLBACKS = True``.
    """
    if getattr(node, 'MESSAGE_INFO_CALLBACKS', False):
        return f'{node.get_name()}: subscriptions that take message info'
    for subscription in node.subscriptions:
        if subscription._callback_type != subscription.CallbackType.MessageOnly:
            return (f'{node.get_name()}: a subscription ({subscription.topic_name}) takes '
                    'message info')
    if next(iter(node.guards), None) is not None:
        return f'{node.get_name()}: guard conditions'
    return ''


def make_executor(kind: str | None = None, context=None, nodes: Sequence = ()):
    """A single-threaded executor of the kind ``executor_kind(kind)`` names, for ``nodes``.

    Where the EventsExecutor cannot run one of ``nodes`` (``events_unsupported``), this gives the
    SingleThreadedExecutor for 'events' too (the pilot's frame thread does, on rclpy 9.1: its
    callback reads the publisher's sequence numbers). Spin it only with
    ``spin_once(timeout_sec=...)`` and a finite timeout (see ``SPIN_PERIOD``). The
    EventsExecutor's source sets SIGINT/SIGTERM handlers of its own (not seen to take over with
    rclpy 9.1.2); ``run_nodes`` installs its own again once the executors exist, to be sure.
    """
    if executor_kind(kind) == 'events' and not any(map(events_unsupported, nodes)):
        return events_executor_class()(context=context)
    return SingleThreadedExecutor(context=context)


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


class Spinner:
    """The executors of one process: a main one the caller spins, plus one per isolated node.

    An isolated node has an executor of its own, spun in a daemon thread of its own, so a
    callback that hangs on the main executor (or in another isolated node) cannot stall it.
    Python threads still share the interpreter lock: this protects against callbacks that block
    or loop in Python, not against native code that holds the lock and never lets go.

    Args:
        context: the rclpy context of the nodes.
        kind: executor kind (see ``executor_kind``).
        threads: > 1: the main executor is a MultiThreadedExecutor with that many threads.
        on_thread_error: called (from the isolated thread) with the node and the exception when an
            isolated executor fails; its thread has stopped spinning by then.
    """

    def __init__(self, context=None, kind: str | None = None, threads: int = 1,
                 on_thread_error: Callable[[object, BaseException], None] | None = None) -> None:
        self.context = context or rclpy.get_default_context()
        self.kind = kind
        executor_kind(kind)  # a bad kind fails here, before any node exists
        self.threads = threads
        self._main = None
        self._main_nodes: list = []
        self.on_thread_error = on_thread_error
        self.nodes: list = []
        self.isolated: list = []
        self._threads: list[threading.Thread] = []
        self._executors: list = []
        self._running = True

    def add(self, node, isolated: bool = False) -> None:
        self.nodes.append(node)
        if not isolated:
            self._main_nodes.append(node)
            if self._main is not None:
                self._main.add_node(node)
            return
        self.isolated.append(node)
        executor = make_executor(self.kind, self.context, [node])
        executor.add_node(node)
        self._executors.append(executor)
        thread = threading.Thread(target=self._spin_isolated, args=(node, executor),
                                  name=f'{node.get_name()}-executor', daemon=True)
        self._threads.append(thread)
        thread.start()

    def _spin_isolated(self, node, executor) -> None:
        try:
            while self._running and self.context.ok():
                executor.spin_once(timeout_sec=SPIN_PERIOD)
        except ExternalShutdownException:
            pass
        except Exception as error:  # the node's executor is gone: let the process stop safely
            if self._running and self.context.ok():
                node.get_logger().error(f'executor thread failed: {error!r}')
                if self.on_thread_error is not None:
                    self.on_thread_error(node, error)

    @property
    def main(self):
        """The main executor, made for the nodes added so far when first needed."""
        if self._main is None:
            self._main = make_executor(self.kind, self.context, self._main_nodes) \
                if self.threads <= 1 else MultiThreadedExecutor(self.threads, context=self.context)
            for node in self._main_nodes:
                self._main.add_node(node)
        return self._main

    def spin_once(self, timeout_sec: float = SPIN_PERIOD) -> None:
        self.main.spin_once(timeout_sec=timeout_sec)

    def stop_threads(self, timeout: float = 2.0) -> None:
        """Stops the isolated executors' threads (their nodes' callbacks no longer run)."""
        self._running = False
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def flush(self, rounds: int = 3) -> None:
        """Lets the last messages (neutral commands) leave."""
        for _ in range(rounds):
            self.main.spin_once(timeout_sec=0.01)

    def shutdown(self) -> None:
        self.stop_threads()
        for executor in ([self._main] if self._main else []) + self._executors:
            executor.shutdown(timeout_sec=1.0)


def run_nodes(factories: Sequence[Callable[..., object]], args: list[str] | None = None,
              threads: int = 1, tick: Callable[[], None] | None = None,
              tick_period: float = 0.1, executor: str | None = None,
              isolated: Sequence[Callable[..., object]] = ()) -> int:
    """Creates the nodes, spins them until a signal, shuts them down; returns an exit code.

    Args:
        factories: node classes (or callables) taking ``**kwargs`` for ``rclpy.node.Node``.
        args: command-line arguments (``--ros-args`` ...); ``sys.argv`` by default.
        threads: executor threads (1 = single-threaded executor).
        tick: called from the main thread about every ``tick_period`` s; return True to stop.
        executor: 'events', 'single' or 'auto' (default: $DONKEY_ROS_EXECUTOR, else 'single').
        isolated: more factories whose nodes get an executor and a thread of their own (safety
            watchdogs); they are created first and their shutdown hooks run first.
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
    spinner = None
    factory = None
    try:
        try:
            spinner = Spinner(kind=executor, threads=threads,
                              on_thread_error=lambda node, error: shutdown.request())
            for factory in list(isolated) + list(factories):
                node = factory()
                nodes.append(node)
                spinner.add(node, isolated=len(nodes) <= len(isolated))
            factory = None
            spinner.main  # made now, so the signal handlers below are the last ones set
        except (DonkeyRosError, _rclpy.RCLError, ParameterException) as error:
            name = getattr(factory, 'NODE_NAME', getattr(factory, '__name__', 'donkey_ros'))
            text = str(error) if isinstance(error, DonkeyRosError) else ros_args_problem(
                args, error)
            rclpy.logging.get_logger(name).error(text)
            return 2
        shutdown.install()  # again, after the executors: see make_executor
        # What start-up made (modules, models, nodes) lives as long as the process: kept out of
        # the collector's sight, a full collection while driving walks only what driving made
        # (70 ms -> 0.03 ms in the one-process car: bench/glass_to_wheel.py --breakdown).
        gc.freeze()
        try:
            while not shutdown.requested and rclpy.ok():
                spinner.spin_once(timeout_sec=tick_period)
                if tick is not None and tick():
                    break
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        call_shutdown_hooks(nodes)
        spinner.stop_threads()
        spinner.flush()
        return 0
    finally:
        if spinner is not None:
            # Before rclpy shuts down: an executor collected after it prints a traceback at exit.
            spinner.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()


def node_main(factory: Callable[..., object], threads: int = 1) -> None:
    """``main()`` of a single-node executable."""
    sys.exit(run_nodes([factory], threads=threads))
