"""In-process fast path: a message published in a process goes straight to that process's
subscribers of the same topic, without the middleware; everything outside still gets it by DDS.

rclpy has no intra-process transport (rclcpp's ``use_intra_process_comms``): between two nodes of
one process a message is serialized, handed to DDS, taken, deserialized and dispatched like one
between processes. With the fast path ``enable``d for a context, publishers and subscriptions made
through ``create_publisher`` / ``create_subscription`` of this module work like this:

- **Delivery.** ``publish(msg)`` hands the message object itself to every in-process subscription
  of the same resolved topic. The subscription's callback runs as a task on the executor that
  spins the subscribing node (``executor.create_task``, which wakes it), so every callback still
  runs on its own node's executor thread, as with DDS: a subscriber that shares an executor with
  a hung callback gets nothing until it returns. Messages wait for their task in a queue of the
  subscription's QoS depth (KEEP_LAST): a slow subscriber with depth 1 gets only the newest, and
  the replaced ones show as gaps in the sequence numbers, as with DDS. A subscription made
  ``thread_safe`` (its callback locks what it shares with the node's other callbacks: the mux's
  ``user/cmd`` and ``pilot/cmd``, the actuator's ``cmd``) is called at once in the publisher's
  thread instead, one hop less each: the pilot's command then reaches the PCA9685 in the pilot's
  thread. A publisher whose executor hangs delivers nothing, as before.
- **DDS for everything outside.** The message is also published over DDS when some subscription
  that is not served in-process matches (a recorder, web page, rviz, ``ros2 topic echo``, a node
  of another process or context), or when an in-process subscriber cannot be served directly (its
  node is not on an executor yet). Nobody outside listening: no DDS publish at all.
- **External publishers still arrive.** In-process subscriptions keep their DDS reader, so a
  message from another process (``user/cmd`` from a teleop, a ``cmd`` from a tool) reaches them.
  That reader also gets the DDS copies of in-process messages whenever those go out over DDS
  (rclpy cannot set rcl's ``ignore_local_publications``, and the message info that names the
  publisher breaks the EventsExecutor): each subscription remembers the messages it was handed
  directly and drops a DDS message equal, field for field, to one of them. A message from
  outside that equals one published in the process moments before (same stamp to the
  nanosecond and same content) is therefore taken for its copy.
- **Ownership.** A published message is shared, not copied: the publisher must not change it
  after ``publish`` (publish a new one each time), and subscribers must not change what they get.

Without ``enable`` the two functions return rclpy's own publisher and subscription, untouched.
"""
from __future__ import annotations

import collections
import inspect
import itertools
import threading
import time
import weakref
from typing import Callable

from rclpy.qos import HistoryPolicy, QoSProfile

KEEP_ALL_DEPTH = 1000
"""Queue length of a KEEP_ALL subscription's direct deliveries."""
EXPECTED_MIN = 32
"""Direct messages each subscription remembers (at least; 4 x its depth), to drop DDS copies."""

_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_registries_lock = threading.Lock()
_publisher_ids = itertools.count(1)


class IntraProcess:
    """The in-process subscriptions of one rclpy context, by resolved topic name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: dict[str, tuple] = {}

    def add(self, subscription: 'IntraSubscription') -> None:
        with self._lock:
            found = self._subscriptions.get(subscription.topic, ())
            self._subscriptions[subscription.topic] = found + (subscription,)

    def remove(self, subscription: 'IntraSubscription') -> None:
        with self._lock:
            found = self._subscriptions.get(subscription.topic, ())
            self._subscriptions[subscription.topic] = tuple(s for s in found
                                                            if s is not subscription)

    def subscriptions(self, topic: str) -> tuple:
        return self._subscriptions.get(topic, ())


def enable(context=None) -> IntraProcess:
    """Turns the fast path on for ``context`` (default: rclpy's default context); idempotent.
    Publishers and subscriptions made afterwards use it."""
    context = context or _default_context()
    with _registries_lock:
        registry = _registries.get(context)
        if registry is None:
            registry = _registries[context] = IntraProcess()
        return registry


def enabled(context=None) -> IntraProcess | None:
    """The fast path of ``context``, or None when it is off."""
    return _registries.get(context or _default_context())


def _default_context():
    import rclpy
    return rclpy.get_default_context()


def create_publisher(node, msg_type, topic: str, qos: QoSProfile):
    """``node.create_publisher``, through the fast path when it is on for the node's context."""
    publisher = node.create_publisher(msg_type, topic, qos)
    registry = enabled(node.context)
    if registry is None:
        return publisher
    return IntraPublisher(registry, publisher)


def create_subscription(node, msg_type, topic: str, callback: Callable, qos: QoSProfile,
                        thread_safe: bool = False):
    """``node.create_subscription``, served in-process when the fast path is on for the node's
    context. ``callback`` may take ``(msg)`` or ``(msg, info)``, as with rclpy; direct deliveries
    give an info with the publisher's ``publication_sequence_number`` and ``source_timestamp``.

    ``thread_safe``: the callback may run in any thread, at the same time as the node's other
    callbacks (it locks what it shares with them): in-process messages then call it at once in
    the publisher's thread, with no executor in between."""
    registry = enabled(node.context)
    if registry is None:
        return node.create_subscription(msg_type, topic, callback, qos)
    return IntraSubscription(registry, node, msg_type, topic, callback, qos, thread_safe)


class IntraPublisher:
    """An rclpy publisher whose messages go straight to the process's subscribers of the topic."""

    def __init__(self, registry: IntraProcess, publisher) -> None:
        self.registry = registry
        self.publisher = publisher
        self.topic = publisher.topic_name
        self.id = next(_publisher_ids)
        self._sequence = itertools.count(1)
        self.direct = 0
        """Messages handed directly to in-process subscriptions (one per subscription)."""
        self.over_dds = 0
        """Messages published over DDS."""

    def publish(self, msg) -> None:
        sequence = next(self._sequence)
        local = self.registry.subscriptions(self.topic)
        direct = [s for s in local if s.executor() is not None]
        info = {'publication_sequence_number': sequence, 'reception_sequence_number': sequence,
                'source_timestamp': time.time_ns(), 'received_timestamp': 0}
        # Straight to the in-process subscribers first: what follows overlaps their wake-up.
        # Their DDS copies cannot arrive before the DDS publish below, which comes after expect.
        for subscription in direct:
            if subscription.deliver(msg, info):
                self.direct += 1
        # DDS readers other than those of the in-process subscriptions: somebody outside.
        outside = self.publisher.get_subscription_count() - len(local) > 0
        if outside or len(direct) < len(local):
            for subscription in direct:
                subscription.expect(self.id, msg)
            self.publisher.publish(msg)
            self.over_dds += 1

    def get_subscription_count(self) -> int:
        return self.publisher.get_subscription_count()

    def __getattr__(self, name):  # topic_name, qos_profile, handle, destroy, ...
        return getattr(self.publisher, name)


class IntraSubscription:
    """An rclpy subscription that also takes messages straight from the process's publishers."""

    def __init__(self, registry: IntraProcess, node, msg_type, topic: str, callback: Callable,
                 qos: QoSProfile, thread_safe: bool = False) -> None:
        self.registry = registry
        self.node = node
        self.callback = callback
        self.thread_safe = thread_safe
        self.with_info = _takes_info(callback)
        depth = KEEP_ALL_DEPTH if qos.history == HistoryPolicy.KEEP_ALL else max(qos.depth, 1)
        self._pending: collections.deque = collections.deque(maxlen=depth)
        self._expected: collections.deque = collections.deque(maxlen=max(EXPECTED_MIN,
                                                                         4 * depth))
        self._lock = threading.Lock()
        self._scheduled = False
        self.direct = 0
        """Messages delivered directly (callbacks run)."""
        self.replaced = 0
        """Direct messages replaced by newer ones before their callback ran (depth exceeded)."""
        self.copies_dropped = 0
        """DDS copies of messages already delivered directly, dropped."""
        self.from_dds = 0
        """Messages from DDS (publishers outside the fast path) passed to the callback."""
        self.subscription = node.create_subscription(
            msg_type, topic, self._from_dds_info if self.with_info else self._from_dds, qos)
        self.topic = self.subscription.topic_name
        registry.add(self)

    def executor(self):
        """The executor spinning the subscribing node, if any."""
        try:
            return self.node.executor
        except Exception:
            return None

    # --- direct -----------------------------------------------------------------------------
    def expect(self, publisher_id: int, msg) -> None:
        """``msg`` is handed over directly and will also reach this subscription's DDS reader."""
        with self._lock:
            self._expected.append((publisher_id, msg))

    def deliver(self, msg, info: dict) -> bool:
        """Queues ``msg`` for the callback on the node's executor (False if it has none), or
        calls the callback now if it is thread-safe."""
        if self.thread_safe:
            self.direct += 1
            try:
                self._call(msg, info)
            except Exception as error:  # the publisher's thread must go on (and publish to DDS)
                self.node.get_logger().error(f'{self.topic}: callback failed: {error!r}',
                                             throttle_duration_sec=1.0)
            return True
        with self._lock:
            if len(self._pending) == self._pending.maxlen:
                self.replaced += 1
            self._pending.append((msg, info))
            if self._scheduled:
                return True
            self._scheduled = True
        if self._schedule():
            return True
        with self._lock:
            self._scheduled = False
        return False

    def _schedule(self) -> bool:
        executor = self.executor()
        if executor is None:
            return False
        try:
            executor.create_task(self._run_one)
        except Exception:  # the executor has shut down
            return False
        return True

    def _run_one(self) -> None:
        with self._lock:
            if not self._pending:
                self._scheduled = False
                return
            msg, info = self._pending.popleft()
            more = bool(self._pending)
            if not more:
                self._scheduled = False
        try:
            self.direct += 1
            self._call(msg, info)
        finally:
            if more and not self._schedule():
                with self._lock:
                    self._scheduled = False

    def _call(self, msg, info) -> None:
        if self.with_info:
            self.callback(msg, info)
        else:
            self.callback(msg)

    # --- DDS --------------------------------------------------------------------------------
    def _is_copy(self, msg) -> bool:
        with self._lock:
            expected = self._expected
            for index, (publisher, sent) in enumerate(expected):
                if sent == msg:
                    # This publisher's older messages will not come any more (DDS delivers one
                    # writer's messages in order; those were lost or replaced): forget them.
                    items = list(expected)
                    kept = [e for e in items[:index] if e[0] != publisher] + items[index + 1:]
                    expected.clear()
                    expected.extend(kept)
                    return True
        return False

    def _from_dds(self, msg) -> None:
        if self._expected and self._is_copy(msg):
            self.copies_dropped += 1
            return
        self.from_dds += 1
        self.callback(msg)

    def _from_dds_info(self, msg, info) -> None:
        if self._expected and self._is_copy(msg):
            self.copies_dropped += 1
            return
        self.from_dds += 1
        self.callback(msg, info)

    def destroy(self) -> None:
        self.registry.remove(self)
        self.node.destroy_subscription(self.subscription)

    def __getattr__(self, name):  # topic_name, qos_profile, handle, ...
        return getattr(self.subscription, name)


def _takes_info(callback: Callable) -> bool:
    """Whether rclpy would call ``callback`` with the message info too (as rclpy decides)."""
    try:
        inspect.signature(callback).bind(object())
        return False
    except TypeError:
        return True
