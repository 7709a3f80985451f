"""Executors (common/runner.py): the EventsExecutor where rclpy has one and it can run the node,
isolated executor threads, and a bad executor name as one line."""
import os
import subprocess
import sys
import threading

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import String

from donkey_ros.common.errors import ConfigError
from donkey_ros.common.runner import (EXECUTOR_ENV, Spinner, events_executor_class,
                                      executor_kind, make_executor)
from rosgraph import wait_for

EVENTS = events_executor_class()
needs_events = pytest.mark.skipif(EVENTS is None, reason='this rclpy has no EventsExecutor')


def is_events(executor) -> bool:
    return type(executor).__name__ == 'EventsExecutor'  # rclpy's EVENTS is a factory function


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.try_shutdown(context=context)


def test_executor_kind_resolves_auto_and_refuses_unknown_names(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert executor_kind() == 'single'   # the default: the EventsExecutor is opt-in
    assert executor_kind('auto') == ('events' if EVENTS else 'single')
    assert executor_kind('single') == 'single'
    monkeypatch.setenv(EXECUTOR_ENV, 'single')
    assert executor_kind() == 'single'
    with pytest.raises(ConfigError, match="unknown executor 'fast'.*auto, events, single"):
        executor_kind('fast')


@needs_events
def test_events_executor_delivers_between_nodes_and_isolated_threads(context):
    """Spun with spin_once and a timeout (rclpy 9.1's spin() delivers nothing), messages go from
    a node on the main executor to one on an isolated executor thread and back."""
    spinner = Spinner(context, kind='events')
    a = rclpy.create_node('a', namespace=f'/r{os.getpid()}', context=context)
    b = rclpy.create_node('b', namespace=f'/r{os.getpid()}', context=context)
    got_a, got_b = [], []
    pub_a = a.create_publisher(String, 'to_b', 10)
    pub_b = b.create_publisher(String, 'to_a', 10)
    b.create_subscription(String, 'to_b', lambda m: (got_b.append(m.data),
                                                     pub_b.publish(m)), 10)
    a.create_subscription(String, 'to_a', lambda m: got_a.append(m.data), 10)
    spinner.add(a)
    spinner.add(b, isolated=True)
    assert is_events(spinner.main)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [spinner.spin_once(0.05)
                                              for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: pub_a.get_subscription_count() > 0, 10.0)
        for index in range(20):
            pub_a.publish(String(data=str(index)))
            assert wait_for(lambda: len(got_a) == index + 1, 10.0), (len(got_b), len(got_a))
        assert got_a == [str(i) for i in range(20)]
    finally:
        stop.set()
        thread.join(timeout=2.0)
        spinner.shutdown()
        a.destroy_node()
        b.destroy_node()


@needs_events
def test_node_the_events_executor_cannot_run_gets_the_single_threaded_one(context, tmp_path):
    """rclpy 9.1's EventsExecutor fails on callbacks that take the message info (the pilot's)."""
    node = rclpy.create_node('info', context=context)
    node.create_subscription(String, 'x', lambda msg, info: None, 10)
    assert isinstance(make_executor('events', context, [node]), SingleThreadedExecutor)
    plain = rclpy.create_node('plain', context=context)
    plain.create_subscription(String, 'x', lambda msg: None, 10)
    assert is_events(make_executor('events', context, [plain]))
    # The recorder subscribes (with message info) only as topics appear: it says so up front.
    from rclpy.parameter import Parameter

    from donkey_ros.recording.recorder_node import RecorderNode
    recorder = RecorderNode(context=context, parameter_overrides=[
        Parameter('folder', value=str(tmp_path))])
    assert isinstance(make_executor('events', context, [recorder]), SingleThreadedExecutor)
    for each in (node, plain, recorder):
        each.destroy_node()


def test_bad_executor_name_is_one_line_and_exit_2():
    env = dict(os.environ, **{EXECUTOR_ENV: 'turbo'})
    result = subprocess.run([sys.executable, '-c',
                             'from donkey_ros.control.mux_node import main; main()'],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "unknown executor 'turbo'" in result.stderr
    assert 'Traceback' not in result.stderr
