"""The in-process fast path (donkey_ros/common/intra.py) on real rclpy graphs: one context with
the fast path (the process), another without it (everything outside: other processes, tools)."""
import itertools
import threading

import pytest
import rclpy
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image

from donkey_ros.common import intra, qos
from donkey_ros.common.runner import events_executor_class, make_executor
from rosgraph import wait_for

EXECUTORS = ['single'] + (['events'] if events_executor_class() else [])
_counter = itertools.count()


class Process:
    """A context with the fast path on, its nodes spun by one executor in a thread."""

    def __init__(self, executor: str) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        intra.enable(self.context)
        self.executor = make_executor(executor, self.context)
        self.nodes = []
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def node(self, name: str, namespace: str):
        node = rclpy.create_node(f'{name}_{next(_counter)}', namespace=namespace,
                                 context=self.context)
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        for node in self.nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture(params=EXECUTORS)
def process(request):
    inside = Process(request.param)
    yield inside
    inside.close()


def command(i: int) -> TwistStamped:
    msg = TwistStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 7
    msg.header.frame_id = 'base_link'
    msg.twist.angular.z = i / 1000
    return msg


def values(received) -> list[int]:
    return [round(m.twist.angular.z * 1000) for m in received]


def test_each_message_reaches_the_in_process_subscriber_once_with_or_without_dds(
        process, graph):
    """Without a subscriber outside nothing goes over DDS; with one, it gets every message and
    the in-process subscriber still gets each exactly once (the DDS copies are dropped)."""
    inside_node = process.node('talker', graph.namespace)
    publisher = intra.create_publisher(inside_node, TwistStamped, 'cmd', qos.COMMAND)
    received = []
    listener = process.node('listener', graph.namespace)
    subscription = intra.create_subscription(listener, TwistStamped, 'cmd', received.append,
                                             qos.COMMAND)
    assert isinstance(publisher, intra.IntraPublisher)
    for i in range(20):  # one at a time: a burst beyond the depth (10) keeps only the newest
        publisher.publish(command(i))
        assert wait_for(lambda: len(received) > i, 5.0), values(received)
    assert values(received) == list(range(20))
    assert publisher.over_dds == 0, 'nobody outside listened, yet it went over DDS'

    outside = graph.collect(TwistStamped, 'cmd', qos.COMMAND)
    assert wait_for(lambda: publisher.get_subscription_count() >= 2, 10.0)
    for i in range(20, 40):
        publisher.publish(command(i))
        assert wait_for(lambda: len(received) > i and len(outside) > i - 20, 5.0)
    assert wait_for(lambda: subscription.copies_dropped >= 20, 5.0), subscription.copies_dropped
    assert values(outside) == list(range(20, 40))
    assert publisher.over_dds == 20
    assert values(received) == list(range(40)), 'a message came twice (or never)'
    assert subscription.from_dds == 0


def test_messages_from_outside_still_arrive(process, graph):
    """A publisher outside the fast path (another process or context) reaches the in-process
    subscriber, interleaved with in-process messages, each once."""
    received = []
    listener = process.node('listener', graph.namespace)
    subscription = intra.create_subscription(listener, TwistStamped, 'user/cmd', received.append,
                                             qos.COMMAND)
    publisher = intra.create_publisher(process.node('talker', graph.namespace), TwistStamped,
                                       'user/cmd', qos.COMMAND)
    outside = graph.node('teleop').create_publisher(TwistStamped, 'user/cmd', qos.COMMAND)
    assert wait_for(lambda: outside.get_subscription_count() >= 1, 10.0)
    # The outside publisher matches the in-process reader, and the in-process publisher sees
    # it as one (its own reader is not outside): messages go out over DDS only for the reader.
    for i in range(10):
        outside.publish(command(1000 + i))
        publisher.publish(command(i))
        assert wait_for(lambda: len(received) >= 2 * (i + 1), 5.0), values(received)
    assert wait_for(lambda: subscription.from_dds >= 10, 2.0)
    assert sorted(values(received)) == sorted(list(range(10)) + list(range(1000, 1010)))
    assert [v for v in values(received) if v >= 1000] == list(range(1000, 1010))
    assert subscription.from_dds == 10 and subscription.direct == 10


def test_latest_only_subscriber_gets_the_newest_and_counts_the_rest(process, graph):
    """Depth 1 (the pilot's frames): a subscriber busy in a callback then gets only the newest
    message, and the sequence numbers in the info show the gap, as with DDS."""
    node = process.node('pilot_frames', graph.namespace)
    got = []
    busy = threading.Event()
    release = threading.Event()

    def on_frame(msg, info):
        got.append((msg.header.stamp.sec, info['publication_sequence_number']))
        busy.set()
        release.wait(5.0)

    subscription = intra.create_subscription(node, Image, 'camera/image_raw', on_frame,
                                             qos.IMAGE_LATEST)
    publisher = intra.create_publisher(process.node('camera', graph.namespace), Image,
                                       'camera/image_raw', qos.IMAGE_PUBLISH)

    def frame(i):
        image = Image(width=2, height=1, encoding='mono8', step=2, data=bytes(2))
        image.header.stamp.sec = i
        return image
    publisher.publish(frame(1))
    assert busy.wait(5.0)
    for i in range(2, 6):  # while the callback of frame 1 runs
        publisher.publish(frame(i))
    release.set()
    assert wait_for(lambda: len(got) >= 2, 5.0)
    assert got == [(1, 1), (5, 5)], got
    assert subscription.replaced == 3


def test_without_enable_nodes_get_rclpy_own_entities(graph):
    node = graph.node('plain')
    publisher = intra.create_publisher(node, TwistStamped, 'cmd', qos.COMMAND)
    subscription = intra.create_subscription(node, TwistStamped, 'cmd', print, qos.COMMAND)
    assert type(publisher).__module__.startswith('rclpy')
    assert type(subscription).__module__.startswith('rclpy')
