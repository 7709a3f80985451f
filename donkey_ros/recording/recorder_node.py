"""ROS glue for the recorder: subscribes (serialized, no deserialization) and feeds ``Recorder``.

Topics are looked up in the graph every ``poll_period`` s, so topics that appear later are
recorded from when they appear; each is subscribed with its publishers' reliability and
durability (a best-effort publisher still gets recorded; latched drive_mode arrives at once).
Start/stop: ``recorder/record`` (std_srvs/SetBool), ``autostart``, ``auto_record_on_throttle``.
The service refuses (success false, the reason in the message) when the folder cannot be written
or has less than ``min_free_mb`` free; ``recorder/status`` carries the error of a recording that
stopped (write failure, disk full) and ``/diagnostics`` says ERROR, or WARN below ``warn_free_mb``.
"""
from __future__ import annotations

import functools
import importlib
import json
import time

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import qos, topics
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.paths import bags_folder
from donkey_ros.common.runner import node_main
from donkey_ros.recording import types
from donkey_ros.recording.errors import BagError
from donkey_ros.recording.recorder import Recorder, RecorderConfig
from donkey_ros.recording.writer import COMPRESSIONS, STORAGES, qos_profile

NODE_NAME = 'recorder'
DEFAULT_TOPICS = list(topics.RECORDED)
PARAMS = (
    Param('topics', DEFAULT_TOPICS, 'Topics to record (relative names); recorded from when '
          'they first have a publisher.', read_only=True),
    Param('folder', '', 'Folder where bags are created (one sub-folder per bag, named by start '
          "time); '' = the data folder's bags/ ($DONKEY_ROS_DATA, else "
          '~/.local/share/donkey_ros).'),
    Param('prefix', 'drive', 'Bag name prefix: PREFIX_YYYY-mm-dd_HH-MM-SS.'),
    Param('storage', 'mcap', 'rosbag2 storage plugin of new bags.', choices=STORAGES),
    Param('compression', 'none', 'MCAP chunk compression (zstd costs CPU, saves disk).',
          choices=COMPRESSIONS),
    Param('autostart', False, 'Start recording when the node starts.', read_only=True),
    Param('auto_record_on_throttle', False, "Record only while abs(throttle) on 'cmd' is above "
          "'throttle_threshold' (plus 'tail' s), DonkeyCar-style; starts armed.", read_only=True),
    Param('throttle_threshold', 0.05, 'Throttle magnitude that opens the auto-record gate.',
          min=0.0, max=1.0),
    Param('tail', 1.0, 'Seconds recorded after the throttle drops (auto-record).',
          min=0.0, max=60.0),
    Param('max_file_size_mb', 1024, 'Start a new file of the bag at this size (0 = never).',
          min=0, max=1_000_000),
    Param('max_file_duration', 0.0, 'Start a new file after this many seconds, measured on '
          'the monotonic clock (0 = never).', min=0.0, max=86400.0),
    Param('flush_period', 0.5, 'Seconds between disk syncs: at most this much is lost when '
          'power fails.', min=0.05, max=5.0, read_only=True),
    Param('queue_size_mb', 128, 'Memory for messages waiting to be written; when full the '
          'oldest are dropped and counted.', min=1, max=4096, read_only=True),
    Param('queue_messages', 2000, 'Message count limit of the write queue.', min=10,
          max=1_000_000, read_only=True),
    Param('compress_images', False, 'Record sensor_msgs/Image topics as JPEG '
          '(TOPIC/compressed, sensor_msgs/CompressedImage) for long sessions.'),
    Param('jpeg_quality', 90, 'JPEG quality of compressed images.', min=10, max=100),
    Param('image_depth', 100, 'History depth of image subscriptions: frames DDS keeps for the '
          'recorder while it is busy (memory is used only when it falls behind).', min=1,
          max=10000, read_only=True),
    Param('poll_period', 1.0, 'Seconds between looks at the graph for new topics.',
          min=0.1, max=30.0, read_only=True),
    Param('status_rate', 1.0, 'Rate (Hz) of recorder/status.', min=0.1, max=50.0, read_only=True),
    Param('min_free_mb', 100.0, 'Free space (MB) the bag folder must keep: recording does not '
          'start below it and stops (bag completed, readable) when it falls below.',
          min=0.0, max=1_000_000.0),
    Param('warn_free_mb', 1024.0, 'Below this much free space (MB) the recorder warns once '
          '(log and diagnostics WARN) while it keeps recording (0 = never).',
          min=0.0, max=1_000_000.0),
)


def message_class(msgtype: str):
    """The Python class of 'pkg/msg/Type' (importlib, no rosidl_runtime_py).

    Raises:
        BagError: the package is not installed.
    """
    try:
        package, kind, name = msgtype.split('/')
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except (ValueError, ImportError, AttributeError):
        raise BagError(f"message type '{msgtype}' is not installed (no Python module)") from None


def offered_qos(profile) -> dict:
    """An rclpy QoSProfile as a rosbag2 v9 offered-QoS dict."""
    def name(policy, default: str) -> str:
        text = getattr(policy, 'name', str(policy)).lower()
        return default if text in ('unknown', 'system_default', 'best_available') else text
    return qos_profile(reliability=name(profile.reliability, 'reliable'),
                       durability=name(profile.durability, 'volatile'),
                       history=name(profile.history, 'keep_last'),
                       depth=int(profile.depth or 10))


class RecorderNode(Node):
    MESSAGE_INFO_CALLBACKS = True  # receive stamps: not on rclpy 9.1's EventsExecutor (runner.py)
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param)
        self._last_error = ''
        self._last_error_time = -1e9
        self.recorder = Recorder(self._config(), log_error=self._log_error,
                                 log_info=self.get_logger().info,
                                 log_warning=self.get_logger().warning)
        self._autostart_pending = False
        self._autostart_error = ''
        self.subscribed: dict[str, str] = {}
        self._failed: set[str] = set()
        self._last_messages = 0
        self._last_status = time.monotonic()
        self._rate = 0.0
        self._status_type, self.status_pub = self._status_publisher()
        self.create_service(SetBool, 'recorder/record', self._on_record)
        if self.params.auto_record_on_throttle:
            self.create_subscription(TwistStamped, 'cmd', self._on_cmd, qos.COMMAND)
        self.create_timer(self.params.poll_period, self._poll_graph)
        self.create_timer(1.0 / self.params.status_rate, self._publish_status)
        self.diagnostics = DiagnosticsPublisher(self, self._report)
        self._poll_graph()
        self.get_logger().info(f'bags folder: {self.recorder.config.folder}')
        if self.params.autostart or self.params.auto_record_on_throttle:
            self._autostart_pending = True
            self._autostart()

    def _autostart(self) -> None:
        """autostart: starts, or retries at every graph poll until the folder can be written."""
        try:
            self.recorder.start()
        except BagError as error:
            if str(error) != self._autostart_error:  # say it once, not at every retry
                self._autostart_error = str(error)
                self._log_error(f'cannot start recording: {error} (retrying)')
            return
        self._autostart_pending = False
        self.get_logger().info(
            'recording armed: waiting for throttle' if self.params.auto_record_on_throttle
            else f'recording to {self.recorder.config.folder}')

    def _config(self) -> RecorderConfig:
        p = self.params
        return RecorderConfig(
            folder=bags_folder(p.folder), prefix=p.prefix, storage=p.storage,
            compression=p.compression,
            max_file_bytes=p.max_file_size_mb * 2**20, max_file_seconds=p.max_file_duration,
            flush_period=p.flush_period, queue_bytes=p.queue_size_mb * 2**20,
            queue_messages=p.queue_messages, compress_images=p.compress_images,
            jpeg_quality=p.jpeg_quality, auto_throttle=p.auto_record_on_throttle,
            throttle_threshold=p.throttle_threshold, tail=p.tail,
            min_free_bytes=int(p.min_free_mb * 2**20), warn_free_bytes=int(p.warn_free_mb * 2**20),
            custom_data={'donkey_ros.namespace': self.get_namespace(),
                         'donkey_ros.recorder': self.get_fully_qualified_name()})

    def _on_param(self, name, value) -> None:
        # Applies to the next bag (and, for the gate values, at once).
        config = self.recorder.config
        mapping = {'folder': ('folder', bags_folder), 'prefix': ('prefix', str),
                   'storage': ('storage', str), 'compression': ('compression', str),
                   'throttle_threshold': ('throttle_threshold', float), 'tail': ('tail', float),
                   'max_file_duration': ('max_file_seconds', float),
                   'max_file_size_mb': ('max_file_bytes', lambda v: v * 2**20),
                   'jpeg_quality': ('jpeg_quality', int),
                   'compress_images': ('compress_images', bool),
                   'min_free_mb': ('min_free_bytes', lambda v: int(v * 2**20)),
                   'warn_free_mb': ('warn_free_bytes', lambda v: int(v * 2**20))}
        if name in mapping:
            field, convert = mapping[name]
            setattr(config, field, convert(value))

    def _log_error(self, text: str) -> None:
        self._last_error = text
        self._last_error_time = time.monotonic()
        self.get_logger().error(text, throttle_duration_sec=1.0)

    def _status_publisher(self):
        try:
            from donkey_ros_interfaces.msg import RecorderStatus
        except ImportError:
            self.get_logger().warn('donkey_ros_interfaces is not built: recorder/status is '
                                   'published as std_msgs/String (JSON)')
            return String, self.create_publisher(String, 'recorder/status', 10)
        return RecorderStatus, self.create_publisher(RecorderStatus, 'recorder/status', 10)

    # -- topics ------------------------------------------------------------------------------
    def _poll_graph(self) -> None:
        if self._autostart_pending:
            self._autostart()
        try:
            available = dict(self.get_topic_names_and_types())
        except Exception as error:  # graph queries fail while the context shuts down
            self.get_logger().debug(f'graph query failed: {error}')
            return
        for relative in self.params.topics:
            name = self.resolve_topic_name(relative)
            if name in self.subscribed or name in self._failed or name not in available:
                continue
            publishers = self.get_publishers_info_by_topic(name)
            if not publishers:
                continue
            msgtype = available[name][0]
            try:
                self._subscribe(name, msgtype, publishers)
            except BagError as error:
                self._failed.add(name)
                self._log_error(f'cannot record {name}: {error}')

    def _subscribe(self, name: str, msgtype: str, publishers) -> None:
        cls = message_class(msgtype)
        types.definition(msgtype)   # the bag needs the definition: fail now, not per message
        reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
        latched = all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                      for p in publishers)
        image = msgtype in ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
        profile = QoSProfile(
            depth=self.params.image_depth if image else 100,
            reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
        self.recorder.add_topic(name, msgtype, [offered_qos(publishers[0].qos_profile)],
                                latched=latched)
        self.create_subscription(cls, name, functools.partial(self._on_message, name), profile,
                                 raw=True)
        self.subscribed[name] = msgtype
        self.get_logger().info(f'recording {name} ({msgtype}'
                               f'{", best effort" if not reliable else ""}'
                               f'{", latched" if latched else ""})')

    def _on_message(self, name: str, data: bytes, info) -> None:
        stamp = info.get('received_timestamp') if isinstance(info, dict) else None
        self.recorder.push(name, stamp or time.time_ns(), data)

    def _on_cmd(self, msg: TwistStamped) -> None:
        throttle = msg.twist.linear.x
        if throttle == throttle:  # NaN never opens the gate
            self.recorder.note_throttle(throttle)

    # -- services and status -----------------------------------------------------------------
    def _on_record(self, request, response):
        if request.data:
            try:
                self.recorder.start()
            except BagError as error:
                response.success = False
                response.message = f'not recording: {error}'
                self.get_logger().error(response.message)
                return response
            self._autostart_pending = False
            response.message = (f'recording (folder {self.recorder.config.folder})'
                                + (', gated on throttle' if self.params.auto_record_on_throttle
                                   else ''))
        else:
            self._autostart_pending = False
            self.recorder.stop()
            bag = self.recorder.stats()['bag']
            response.message = f'stopped; last bag: {bag}' if bag else 'stopped'
        response.success = True
        self.get_logger().info(response.message)
        return response

    def _publish_status(self) -> None:
        stats = self.recorder.stats()
        now = time.monotonic()
        delta = stats['messages'] - self._last_messages
        self._rate = max(0.0, delta) / max(1e-3, now - self._last_status)
        self._last_messages, self._last_status = stats['messages'], now
        if self._status_type is String:
            self.status_pub.publish(String(data=json.dumps({**stats, 'rate': self._rate})))
            return
        msg = self._status_type()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.recording = bool(stats['recording'])
        msg.bag_path = stats['bag']
        msg.current_file = stats['file']
        msg.messages = int(stats['messages'])
        msg.bytes = int(stats['bytes'])
        msg.dropped = int(stats['dropped'])
        msg.messages_per_second = float(self._rate)
        msg.duration = float(stats['duration'])
        msg.error = stats['error']
        msg.write_errors = int(stats['write_errors'])
        msg.free_bytes = int(stats['free_bytes'] or 0)
        self.status_pub.publish(msg)

    def _report(self):
        stats = self.recorder.stats()
        if stats['error']:
            level, text = ERROR, stats['error']
        elif time.monotonic() - self._last_error_time < 5.0:
            level, text = ERROR, self._last_error
        elif stats['low_disk']:
            level, text = WARN, (f"low disk space: {(stats['free_bytes'] or 0) / 2**20:.0f} MB "
                                 f"free (warn_free_mb {self.params.warn_free_mb:g})")
        elif stats['dropped'] or stats['write_errors']:
            level, text = WARN, (f"{stats['dropped']} messages dropped (disk too slow?), "
                                 f"{stats['write_errors']} write errors so far")
        else:
            level = OK
            text = ('recording' if stats['recording'] else
                    'armed' if self.recorder.wanted else 'idle')
        return level, text, {**stats, 'rate': self._rate, 'topics': len(self.subscribed)}

    def on_shutdown(self) -> None:
        """Completes the bag (index, metadata.yaml) before the process ends."""
        self.recorder.close()


def main() -> None:
    node_main(RecorderNode)


if __name__ == '__main__':
    main()
