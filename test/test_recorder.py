"""The recorder node in real rclpy graphs: standard bags read back by an independent reader."""
import importlib.metadata
import os
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.errors import ConfigError
from donkey_ros.common.image import array_to_image
from donkey_ros.recording.recorder import Recorder, RecorderConfig
from donkey_ros.recording.recorder_node import RecorderNode
from test_bag_independent import check_metadata, read_bag, read_metadata


def params(**values):
    return [Parameter(k, value=v) for k, v in values.items()]


def call(graph, name: str, value: bool):
    client = graph.node('client').create_client(SetBool, name)
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(SetBool.Request(data=value))
    assert graph.wait_for(future.done, timeout=10.0)
    return future.result()


def test_records_the_simulator_into_a_standard_bag(graph, tmp_path):
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.sim.expert_node import ExpertNode
    from donkey_ros.sim.sim_node import SimNode

    ns = graph.namespace
    images = graph.collect(Image, f'{ns}/camera/image_raw', qos.IMAGE_RELIABLE)
    graph.add(SimNode)
    graph.add(ExpertNode)
    graph.add(MuxNode)
    recorder = graph.add(RecorderNode, parameter_overrides=params(
        autostart=True, folder=str(tmp_path), poll_period=0.2))
    statuses = graph.collect(_status_type(), f'{ns}/recorder/status')
    assert graph.wait_for(lambda: len(recorder.subscribed) == 6, timeout=10.0), recorder.subscribed
    assert graph.wait_for(lambda: recorder.recorder.stats()['messages'] > 250, timeout=20.0)
    assert graph.wait_for(lambda: any(s.recording and s.messages > 0 for s in statuses))
    response = call(graph, f'{ns}/recorder/record', False)
    assert response.success and 'stopped' in response.message
    bag = Path(recorder.recorder.bags[0])
    assert graph.wait_for(lambda: (bag / 'metadata.yaml').exists(), timeout=10.0)
    collected = list(images)

    # An independent reader (mcap + mcap-ros2-support) finds every message, intact, in order,
    # and metadata.yaml agrees with the content.
    messages = check_metadata(bag)
    topics = {m[0] for m in messages}
    assert topics == {f'{ns}/{t}' for t in ('camera/image_raw', 'user/cmd', 'cmd',
                                            'drive_mode', 'sim/odom', 'sim/status')}
    decoded = read_bag(bag, decode=True)
    recorded = [m[3] for m in decoded if m[0] == f'{ns}/camera/image_raw']
    stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in collected]
    first = stamps.index((recorded[0].header.stamp.sec, recorded[0].header.stamp.nanosec))
    assert len(recorded) > 20
    for got, sent in zip(recorded, collected[first:]):  # a contiguous run, byte for byte
        assert (got.header.stamp.sec, got.header.stamp.nanosec) == \
            (sent.header.stamp.sec, sent.header.stamp.nanosec)
        assert bytes(got.data) == bytes(sent.data)
    log_times = [m[2] for m in decoded if m[0] == f'{ns}/camera/image_raw']
    assert log_times == sorted(log_times)
    status = [m[3] for m in decoded if m[0] == f'{ns}/sim/status']
    assert status and status[-1].track and status[-1].speed > 0      # custom type decoded
    assert [m[3].data for m in decoded if m[0] == f'{ns}/drive_mode'] == ['user']

    # And it is training data: the expert's commands paired with frames, with ground truth.
    from donkey_ros.recording.dataset import open_dataset
    data = open_dataset(bag)
    samples = list(data)
    # Every frame pairs with the expert's command, except where that command came later than the
    # pairing tolerance (a loaded 2-core machine delays the expert): nothing is lost otherwise.
    counts = data.counts
    assert counts.bad_image == 0 and counts.excluded == 0, counts
    assert len(samples) + counts.no_command >= len(recorded) - 3, counts
    assert len(samples) >= len(recorded) // 2, counts
    # sim/status is best effort (SENSOR): a loaded machine may drop a few; the rest pair up.
    with_truth = [s for s in samples if s.truth]
    assert len(with_truth) >= 0.8 * len(samples), f'{len(with_truth)} of {len(samples)}'
    assert all('on_track' in s.truth for s in with_truth)
    # drive_mode (latched) can arrive a few ms after the first frames: mode None, kept.
    assert [s.mode for s in samples[2:]] == ['user'] * (len(samples) - 2)
    # The truth of a frame is the simulator step that rendered it (same header stamp).
    def key(msg):
        return msg.header.stamp.sec, msg.header.stamp.nanosec
    status_by_step = {key(m[3]): m[3] for m in decoded if m[0] == f'{ns}/sim/status'}
    image_by_time = {m[2]: m[3] for m in decoded if m[0] == f'{ns}/camera/image_raw'}
    matched = 0
    for sample in with_truth:
        same_step = status_by_step.get(key(image_by_time[sample.stamp_ns]))
        matched += same_step is not None and sample.truth['progress'] == same_step.progress
    assert matched >= len(with_truth) - 2
    assert samples[-1].image.shape == (120, 160, 3)


def _status_type():
    from donkey_ros_interfaces.msg import RecorderStatus
    return RecorderStatus


def test_topics_appearing_later_best_effort_and_latched(graph, tmp_path):
    ns = graph.namespace
    recorder = graph.add(RecorderNode, parameter_overrides=params(
        autostart=True, folder=str(tmp_path), poll_period=0.1,
        topics=['camera/image_raw', 'sim/odom', 'drive_mode']))
    time.sleep(0.3)
    assert recorder.subscribed == {}
    probe = graph.node('publisher')
    mode = probe.create_publisher(String, f'{ns}/drive_mode', qos.LATCHED)
    mode.publish(String(data='pilot'))     # before the recorder subscribes: latched
    best_effort = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    odom = probe.create_publisher(Odometry, f'{ns}/sim/odom', best_effort)
    camera = probe.create_publisher(Image, f'{ns}/camera/image_raw', qos.IMAGE_PUBLISH)
    assert graph.wait_for(lambda: len(recorder.subscribed) == 3 and
                          camera.get_subscription_count() == 1 and
                          odom.get_subscription_count() == 1, timeout=5.0)
    for i in range(30):
        camera.publish(array_to_image(np.full((24, 32, 3), i, np.uint8)))
        msg = Odometry()
        msg.pose.pose.position.x = float(i)
        odom.publish(msg)
        time.sleep(0.01)
    assert graph.wait_for(lambda: recorder.recorder.stats()['messages'] >= 61, timeout=5.0)
    recorder.recorder.stop()
    bag = Path(recorder.recorder.bags[0])
    assert graph.wait_for(lambda: (bag / 'metadata.yaml').exists(), timeout=5.0)
    decoded = read_bag(bag, decode=True)
    assert [m[3].data[0] for m in decoded if m[0].endswith('image_raw')] == list(range(30))
    assert [m[3].pose.pose.position.x for m in decoded if m[0].endswith('odom')] == \
        [float(i) for i in range(30)]
    assert [m[3].data for m in decoded if m[0].endswith('drive_mode')] == ['pilot']
    meta = check_metadata(bag)
    assert len(meta) == 61


def test_record_service_and_auto_record_on_throttle(graph, tmp_path):
    ns = graph.namespace
    recorder = graph.add(RecorderNode, parameter_overrides=params(
        auto_record_on_throttle=True, tail=0.3, folder=str(tmp_path), poll_period=0.1,
        topics=['camera/image_raw', 'cmd']))
    probe = graph.node('publisher')
    cmd = probe.create_publisher(TwistStamped, f'{ns}/cmd', qos.COMMAND)
    camera = probe.create_publisher(Image, f'{ns}/camera/image_raw', qos.IMAGE_PUBLISH)
    assert graph.wait_for(lambda: len(recorder.subscribed) == 2 and
                          camera.get_subscription_count() == 1, timeout=5.0)

    def drive(throttle: float, seconds: float, phase: int) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cmd.publish(command_to_msg(DriveCommand(0.0, throttle)))
            camera.publish(array_to_image(np.full((8, 8, 3), phase, np.uint8)))
            time.sleep(0.02)

    drive(0.0, 0.6, 1)             # armed, standing still: nothing recorded
    assert not list(tmp_path.iterdir())
    drive(0.5, 0.6, 2)             # driving: recorded
    drive(0.0, 1.0, 3)             # stopped: the tail, then nothing
    drive(-0.4, 0.3, 4)            # reversing counts as driving
    drive(0.0, 0.1, 5)
    response = call(graph, f'{ns}/recorder/record', False)
    assert response.success and 'stopped' in response.message
    drive(0.7, 0.3, 6)             # disarmed: nothing, whatever the throttle
    bag = Path(recorder.recorder.bags[0])
    assert graph.wait_for(lambda: (bag / 'metadata.yaml').exists(), timeout=5.0)
    assert len(recorder.recorder.bags) == 1
    phases = [m[3].data[0] for m in read_bag(bag, decode=True) if m[0].endswith('image_raw')]
    assert 1 not in phases and 6 not in phases
    assert 10 <= phases.count(2) <= 31         # 0.6 s at <= 50 Hz
    assert 3 <= phases.count(3) <= 25          # the 0.3 s tail of a 1 s stop
    assert phases.count(4) >= 10
    assert phases == sorted(phases)
    # Started again by the service: a new bag.
    assert call(graph, f'{ns}/recorder/record', True).success
    drive(0.5, 0.3, 7)
    assert call(graph, f'{ns}/recorder/record', False).success
    assert graph.wait_for(lambda: len(recorder.recorder.bags) == 2 and
                          (recorder.recorder.bags[1] / 'metadata.yaml').exists(), timeout=5.0)
    assert {m[3].data[0] for m in read_bag(recorder.recorder.bags[1], decode=True)
            if m[0].endswith('image_raw')} == {7}


def test_a_full_queue_drops_the_oldest_and_counts(tmp_path):
    # JPEG-compressing 640x480 frames is slower than pushing them: the queue overflows.
    from donkey_ros.recording.types import typestore
    from donkey_ros.recording.synthetic import write_synthetic_bag
    store = typestore()
    recorder = Recorder(RecorderConfig(folder=tmp_path, compress_images=True, queue_messages=20),
                        log_info=lambda _: None)
    recorder.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
    recorder.start()
    source = write_synthetic_bag(tmp_path / 'src', frames=2, width=640, height=480)
    from rosbags.rosbag2 import Reader
    with Reader(source.path) as reader:
        raw = next(bytes(d) for c, _, d in reader.messages() if c.topic == '/camera/image_raw')
    frame = store.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    for i in range(300):
        frame.header.frame_id = str(i)
        recorder.push('/camera/image_raw', 10**18 + i, bytes(store.serialize_cdr(
            frame, 'sensor_msgs/msg/Image')))
    recorder.close(timeout=60)
    assert recorder.dropped > 100
    messages = read_bag(recorder.bags[0], decode=True)
    assert {m[0] for m in messages} == {'/camera/image_raw/compressed'}
    ids = [int(m[3].header.frame_id) for m in messages]
    assert len(ids) + recorder.dropped == 300
    assert ids == sorted(ids) and ids[-1] == 299          # the newest are kept
    assert bytes(messages[-1][3].data[:2]) == b'\xff\xd8'  # JPEG


def test_bags_carry_the_ros_distro_that_runs(tmp_path, monkeypatch):
    from rclpy.serialization import serialize_message
    # The distro of this test leg: a sourced ROS installation's ROS_DISTRO, else the installed
    # rclpy wheel's version (Jazzy 7.1.x, Kilted 9.1.x), which must be the leg `make test` picked.
    leg = os.environ.get('ROS_DISTRO') or \
        {'7': 'jazzy', '9': 'kilted'}[importlib.metadata.version('ros-rclpy').split('.')[0]]
    if os.environ.get('DONKEY_ROS_DISTRO'):
        assert leg == os.environ['DONKEY_ROS_DISTRO']
    for ros_distro, expected in ((None, leg), ('rolling', 'rolling')):
        if ros_distro is None:
            monkeypatch.delenv('ROS_DISTRO', raising=False)
        else:
            monkeypatch.setenv('ROS_DISTRO', ros_distro)
        recorder = Recorder(RecorderConfig(folder=tmp_path / expected), log_info=lambda _: None)
        recorder.add_topic('/chatter', 'std_msgs/msg/String')
        recorder.start()
        recorder.push('/chatter', 10**18, bytes(serialize_message(String(data=expected))))
        recorder.close(timeout=30)
        assert read_metadata(recorder.bags[0])['ros_distro'] == expected
        assert [m[3].data for m in read_bag(recorder.bags[0], decode=True)] == [expected]


def test_bad_parameters_are_one_clear_error(graph, tmp_path):
    with pytest.raises(ConfigError, match="storage"):
        graph.add(RecorderNode, parameter_overrides=params(storage='rosbag1'))
    with pytest.raises(ConfigError, match='flush_period'):
        graph.add(RecorderNode, parameter_overrides=params(flush_period=0.0))


def test_config_file_sets_every_parameter_validly():
    import yaml
    from donkey_ros.recording.recorder_node import PARAMS
    path = Path(__file__).resolve().parents[1] / 'config' / 'recorder.yaml'
    values = yaml.safe_load(path.read_text())['/**/recorder']['ros__parameters']
    assert set(values) == {p.name for p in PARAMS}
    for spec in PARAMS:
        spec.validate(values[spec.name])


def test_an_unwritable_folder_is_reported_and_recording_resumes_when_fixed(graph, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from donkey_ros_interfaces.msg import RecorderStatus
    ns = graph.namespace
    blocker = tmp_path / 'not_a_folder'
    blocker.write_text('a file where the bags should go')
    recorder = graph.add(RecorderNode, parameter_overrides=params(
        autostart=True, folder=str(blocker / 'bags'), poll_period=0.1, status_rate=10.0,
        topics=['camera/image_raw']))
    diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
    status = graph.collect(RecorderStatus, f'{ns}/recorder/status')
    camera = graph.node('publisher').create_publisher(Image, f'{ns}/camera/image_raw',
                                                      qos.IMAGE_PUBLISH)
    assert graph.wait_for(lambda: camera.get_subscription_count() == 1, timeout=5.0)

    def publish(n):
        for i in range(n):
            camera.publish(array_to_image(np.full((8, 8, 3), i, np.uint8)))
            time.sleep(0.01)

    publish(5)

    def reported_error():
        return any(s.level == s.ERROR and 'cannot write to' in s.message
                   for a in diagnostics for s in a.status if s.name.endswith('/recorder'))
    assert graph.wait_for(reported_error, timeout=3.0)
    assert graph.wait_for(lambda: status and 'cannot write to' in status[-1].error)
    assert not status[-1].recording, 'the status never says recording when it does not'
    result = recorder.set_parameters([Parameter('folder', value=str(tmp_path / 'bags'))])
    assert result[0].successful
    assert graph.wait_for(lambda: recorder.recorder.recording, timeout=3.0), 'autostart retries'
    publish(10)
    assert graph.wait_for(lambda: recorder.recorder.stats()['messages'] == 10)
    assert graph.wait_for(lambda: status[-1].recording and status[-1].error == '')
    recorder.recorder.stop()
    bag = recorder.recorder.bags[-1]
    assert graph.wait_for(lambda: (bag / 'metadata.yaml').exists())
    assert len(check_metadata(bag)) == 10
