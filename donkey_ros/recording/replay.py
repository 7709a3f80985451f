"""`donkey-ros replay BAG`: publish a bag's messages with their original timing.

Try the pilot on recorded data without a car: ``donkey-ros replay BAG --topics camera/image_raw``
while the pilot runs. Messages are published as the serialized bytes stored in the bag (no
deserialization), each topic with the QoS it was recorded with (drive_mode stays latched). The
bag is any standard rosbag2 bag (MCAP or sqlite3), so ``ros2 bag play`` works on ours as well.
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from donkey_ros.recording.dataset import find_bags, match_topic, open_reader
from donkey_ros.recording.errors import BagError


@dataclass
class ReplayStats:
    published: int = 0
    skipped_types: list = field(default_factory=list)
    loops: int = 0


def recorded_namespace(bag: Path, topics: list[str]) -> str:
    """The namespace the bag was recorded in ('' for the root), from custom_data or topics."""
    from donkey_ros.recording.metadata import read_metadata
    try:
        custom = read_metadata(bag).get('custom_data') or {} if bag.is_dir() else {}
    except (OSError, ValueError):
        custom = {}
    if custom.get('donkey_ros.namespace'):
        return custom['donkey_ros.namespace'].rstrip('/')
    cameras = match_topic(topics, 'camera/image_raw') or \
        match_topic(topics, 'camera/image_raw/compressed')
    return cameras[0][: cameras[0].index('/camera/image_raw')] if cameras else ''


def output_topic(topic: str, recorded_ns: str, namespace: str | None) -> str:
    """The topic to publish on: ``topic`` with the recorded namespace replaced by ``namespace``."""
    if namespace is None:
        return topic
    new = '/' + namespace.strip('/') if namespace.strip('/') else ''
    if recorded_ns and (topic == recorded_ns or topic.startswith(recorded_ns + '/')):
        return new + topic[len(recorded_ns):]
    return new + topic if not recorded_ns else topic


def _qos(offered: list):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    reliable = all(getattr(q.reliability, 'name', '') != 'BEST_EFFORT' for q in offered)
    latched = bool(offered) and all(getattr(q.durability, 'name', '') == 'TRANSIENT_LOCAL'
                                    for q in offered)
    return QoSProfile(
        depth=1 if latched else 10,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


class BagPlayer:
    """Publishes one bag on ``node``'s publishers (see ``play``).

    Args:
        node: an rclpy node (its namespace is not used: topic names are absolute).
        bag: bag directory or .mcap/.db3 file.
        rate: speed factor (2.0 = twice as fast).
        topics: relative topic names to play (any namespace), None = all.
        start: seconds into the bag to start from.
        namespace: publish in this namespace instead of the recorded one (None = as recorded).

    Raises:
        BagError: not a bag, damaged bag, no topic to play, bad rate.
    """

    def __init__(self, node, bag: str | Path, rate: float = 1.0, topics=None,
                 start: float = 0.0, namespace: str | None = None) -> None:
        from donkey_ros.recording.recorder_node import message_class
        if not rate > 0:
            raise BagError(f'rate must be > 0, got {rate}')
        if start < 0:
            raise BagError(f'start must be >= 0 s, got {start}')
        bags = find_bags(bag)
        if len(bags) != 1:
            raise BagError(f"'{bag}' holds {len(bags)} bags; replay one bag at a time")
        self.bag = bags[0]
        self.node = node
        self.rate = rate
        self.start = start
        self.stats = ReplayStats()
        reader = open_reader(self.bag)
        try:
            all_topics = sorted({c.topic for c in reader.connections})
            recorded_ns = recorded_namespace(self.bag, all_topics)
            wanted = [c for c in reader.connections
                      if topics is None or any(match_topic([c.topic], t) for t in topics)]
            if not wanted:
                raise BagError(f"bag '{self.bag}' has none of the topics {list(topics)} "
                               f"(it has {', '.join(all_topics)})")
            self.start_ns = reader.start_time
            self.end_ns = reader.end_time
        finally:
            reader.close()
        self.publishers = {}
        self.topic_map = {}
        for connection in wanted:
            if connection.topic in self.publishers:
                continue
            try:
                cls = message_class(connection.msgtype)
            except BagError as error:
                self.stats.skipped_types.append(connection.msgtype)
                node.get_logger().error(f'not replaying {connection.topic}: {error}')
                continue
            out = output_topic(connection.topic, recorded_ns, namespace)
            self.topic_map[connection.topic] = out
            self.publishers[connection.topic] = node.create_publisher(
                cls, out, _qos(connection.ext.offered_qos_profiles))
        if not self.publishers:
            raise BagError(f"bag '{self.bag}': no topic with an installed message type to replay")

    @property
    def duration(self) -> float:
        return max(0.0, (self.end_ns - self.start_ns) / 1e9 - self.start)

    def play(self, stop: threading.Event | None = None, loop: bool = False,
             progress: Callable[[float, float], None] | None = None) -> ReplayStats:
        """Publishes the messages at their recorded pace until done (or ``stop`` is set)."""
        stop = stop or threading.Event()
        first = self.start_ns + int(self.start * 1e9)
        while not stop.is_set():
            reader = open_reader(self.bag)
            try:
                connections = [c for c in reader.connections if c.topic in self.publishers]
                t0 = None
                last_progress = 0.0
                for connection, stamp, data in reader.messages(connections, start=first):
                    if t0 is None:
                        t0 = (time.monotonic(), stamp)
                    target = t0[0] + (stamp - t0[1]) / 1e9 / self.rate
                    while not stop.is_set():
                        delay = target - time.monotonic()
                        if delay <= 0:
                            break
                        stop.wait(min(delay, 0.1))
                    if stop.is_set():
                        break
                    self.publishers[connection.topic].publish(bytes(data))
                    self.stats.published += 1
                    now = time.monotonic()
                    if progress is not None and now - last_progress >= 1.0:
                        last_progress = now
                        progress((stamp - first) / 1e9, self.duration)
            finally:
                reader.close()
            self.stats.loops += 1
            if not loop:
                break
        return self.stats


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='donkey-ros replay',
        description="Publish a bag's messages with their original timing (try the pilot on "
        'recorded data without a car).')
    parser.add_argument('bag', help='bag directory (or .mcap / .db3 file)')
    parser.add_argument('--rate', type=float, default=1.0, help='speed factor (default 1.0)')
    parser.add_argument('--loop', action='store_true', help='start again at the end')
    parser.add_argument('--topics', default=None,
                        help='comma-separated relative topics to play (default: all), '
                        'e.g. camera/image_raw')
    parser.add_argument('--start', type=float, default=0.0, help='seconds into the bag to start')
    parser.add_argument('--namespace', default=None,
                        help="publish in this namespace instead of the recorded one ('' = root)")
    parser.add_argument('--delay', type=float, default=0.5,
                        help='seconds to wait for subscribers to connect before playing')
    args = parser.parse_args(argv)
    topics = [t for t in args.topics.split(',') if t] if args.topics else None

    import rclpy
    from rclpy.node import Node
    from rclpy.signals import SignalHandlerOptions
    import signal

    rclpy.init(args=['--ros-args'], signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    node = Node('replay')
    try:
        player = BagPlayer(node, args.bag, rate=args.rate, topics=topics, start=args.start,
                           namespace=args.namespace)
        for source, target in player.topic_map.items():
            print(f'  {source} -> {target}' if source != target else f'  {source}',
                  file=sys.stderr)
        stop.wait(max(0.0, args.delay))

        def progress(done: float, total: float) -> None:
            print(f'\rreplay: {done:6.1f} / {total:.1f} s', end='', file=sys.stderr, flush=True)

        stats = player.play(stop, loop=args.loop, progress=progress)
        print(f'\rreplay: published {stats.published} messages'
              + (f' ({stats.loops} loops)' if args.loop else ''), file=sys.stderr)
        return 130 if stop.is_set() else 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
