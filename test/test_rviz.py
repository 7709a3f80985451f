"""config/donkey.rviz against the running simulator stack.

Every display's topic exists with its type and compatible QoS, and what rviz would draw (track
markers, car pose, overlay, arrow) is right.

rviz itself is not installable here; an independent rclpy subscriber reads the same topics.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from donkey_ros.common import qos
from donkey_ros.common.image import image_to_array
from donkey_ros.sim.track import load_track
from rosgraph import wait_for

RVIZ = Path(__file__).resolve().parent.parent / 'config' / 'donkey.rviz'
TYPES = {'rviz_default_plugins/Image': 'sensor_msgs/msg/Image',
         'rviz_default_plugins/MarkerArray': 'visualization_msgs/msg/MarkerArray',
         'rviz_default_plugins/Marker': 'visualization_msgs/msg/Marker',
         'rviz_default_plugins/Odometry': 'nav_msgs/msg/Odometry'}


def displays() -> list[dict]:
    config = yaml.safe_load(RVIZ.read_text())
    return [d for d in config['Visualization Manager']['Displays'] if 'Topic' in d]


def test_rviz_config_shows_the_contract():
    config = yaml.safe_load(RVIZ.read_text())
    assert config['Visualization Manager']['Global Options']['Fixed Frame'] == 'odom'
    shown = {(d['Class'], d['Topic']['Value']) for d in displays()}
    assert shown == {
        ('rviz_default_plugins/Image', 'camera/image_raw'),
        ('rviz_default_plugins/Image', 'pilot/overlay'),
        ('rviz_default_plugins/MarkerArray', 'sim/track'),
        ('rviz_default_plugins/Odometry', 'sim/odom'),
        ('rviz_default_plugins/Marker', 'cmd/marker'),
    }
    for display in displays():  # relative names: one file for every namespace (car1, car2)
        assert not display['Topic']['Value'].startswith('/')
        assert display['Enabled'] is True


@pytest.fixture(scope='module')
def stack():
    """Simulator, expert, mux and overlay in one graph, driving."""
    from rosgraph import RosGraph

    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.monitor.overlay_node import OverlayNode
    from donkey_ros.sim.expert_node import ExpertNode
    from donkey_ros.sim.sim_node import SimNode

    with RosGraph() as graph:
        graph.sim = graph.add(SimNode)
        graph.add(ExpertNode)
        graph.add(MuxNode)
        graph.overlay = graph.add(OverlayNode, parameter_overrides=[
            Parameter('rate', value=5.0), Parameter('upscale', value=2)])
        ns = graph.namespace
        probe = graph.node('rviz_stand_in')
        graph.probe = probe
        graph.odom = graph.collect(Odometry, f'{ns}/sim/odom', qos.SENSOR, node=probe)
        graph.overlays = []
        probe.create_subscription(Image, f'{ns}/pilot/overlay',
                                  lambda m: graph.overlays.append((time.monotonic(), m)),
                                  qos.IMAGE_LATEST)
        graph.camera = graph.collect(Image, f'{ns}/camera/image_raw', qos.IMAGE_LATEST,
                                     node=probe)
        graph.markers = graph.collect(Marker, f'{ns}/cmd/marker', 10, node=probe)
        graph.cmds = graph.collect(TwistStamped, f'{ns}/cmd', qos.COMMAND, node=probe)
        assert graph.wait_for(lambda: len(graph.odom) > 20 and len(graph.overlays) > 3, 10.0)
        yield graph


def rviz_qos(topic: dict) -> QoSProfile:
    return QoSProfile(
        depth=int(topic['Depth']),
        reliability=ReliabilityPolicy.RELIABLE if topic['Reliability Policy'] == 'Reliable'
        else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL
        if topic['Durability Policy'] == 'Transient Local' else DurabilityPolicy.VOLATILE)


def test_every_display_topic_is_published_with_its_type_and_compatible_qos(stack):
    ns = stack.namespace
    published = dict(stack.probe.get_topic_names_and_types())
    for display in displays():
        topic = display['Topic']
        name = f"{ns}/{topic['Value']}"
        assert name in published, f'{name} ({display["Name"]}) is not published'
        assert TYPES[display['Class']] in published[name]
        wanted = rviz_qos(topic)
        publishers = stack.probe.get_publishers_info_by_topic(name)
        assert publishers
        for info in publishers:
            if wanted.reliability == ReliabilityPolicy.RELIABLE:
                assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE, name
            if wanted.durability == DurabilityPolicy.TRANSIENT_LOCAL:
                assert info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL, name


def nearest(points: np.ndarray, xy) -> float:
    return float(np.min(np.hypot(points[:, 0] - xy[0], points[:, 1] - xy[1])))


def test_track_markers_reach_a_late_subscriber(stack):
    """sim/track is latched: rviz started after the sim still gets the whole track."""
    late = stack.node('late_rviz')
    arrays = stack.collect(MarkerArray, f'{stack.namespace}/sim/track', qos.LATCHED, node=late)
    assert stack.wait_for(lambda: arrays, 5.0)
    markers = arrays[0].markers
    track = load_track(stack.sim.params.track)
    assert len(markers) == 3
    assert len({(m.ns, m.id) for m in markers}) == 3
    centre = np.array(track.points)
    for marker in markers:
        assert marker.type == Marker.LINE_STRIP and marker.action == Marker.ADD
        assert marker.header.frame_id == 'odom'
        assert marker.scale.x > 0 and marker.color.a == 1.0
        points = np.array([(p.x, p.y) for p in marker.points])
        assert len(points) > 50
        assert np.allclose(points[0], points[-1])  # closed loop
        distances = [nearest(centre, p) for p in points]
        offset = np.median(distances)
        assert offset == pytest.approx(0.0, abs=0.02) or \
            offset == pytest.approx(track.road_width / 2, abs=0.03)
    offsets = sorted(round(float(np.median([nearest(centre, (p.x, p.y)) for p in m.points])), 2)
                     for m in markers)
    assert offsets == pytest.approx([0.0, track.road_width / 2, track.road_width / 2], abs=0.03)


def test_car_pose_is_on_the_track_and_moving(stack):
    track = load_track(stack.sim.params.track)
    centre = np.array(track.points)
    first = stack.odom[-1]

    def moved_from_first():
        now = stack.odom[-1].pose.pose.position
        return math.hypot(now.x - first.pose.pose.position.x, now.y - first.pose.pose.position.y)

    wait_for(lambda: moved_from_first() > 0.3, timeout=10.0)  # polled: a loaded machine is slower
    last = stack.odom[-1]
    for odom in (first, last):
        assert odom.header.frame_id == 'odom' and odom.child_frame_id == 'base_link'
        q = odom.pose.pose.orientation
        assert q.x ** 2 + q.y ** 2 + q.z ** 2 + q.w ** 2 == pytest.approx(1.0, abs=1e-6)
        position = (odom.pose.pose.position.x, odom.pose.pose.position.y)
        assert nearest(centre, position) < track.road_width / 2
    moved = math.hypot(last.pose.pose.position.x - first.pose.pose.position.x,
                       last.pose.pose.position.y - first.pose.pose.position.y)
    assert moved > 0.3  # the expert drives at 1.5 m/s
    # The pose heading follows the track direction.
    yaw = 2 * math.atan2(last.pose.pose.orientation.z, last.pose.pose.orientation.w)
    s, *_ = track.project(last.pose.pose.position.x, last.pose.pose.position.y)
    error = math.atan2(math.sin(yaw - track.heading_at(s)), math.cos(yaw - track.heading_at(s)))
    assert abs(error) < math.radians(30)


def test_overlay_is_the_camera_enlarged_with_the_commands_drawn(stack):
    _, overlay_msg = stack.overlays[-1]
    camera_msg = stack.camera[-1]
    overlay, camera = image_to_array(overlay_msg), image_to_array(camera_msg)
    assert overlay.shape == (camera.shape[0] * 2, camera.shape[1] * 2, 3)
    # The output command's arc is white and starts at the bottom centre.
    h, w = overlay.shape[:2]
    assert (overlay[h - 30:h - 10, w // 2 - 20:w // 2 + 20] == 255).all(axis=2).any()
    # Rate capped at 5 Hz while the camera runs at 20 Hz.
    times = [t for t, _ in stack.overlays]
    window = [t for t in times if t > times[-1] - 2.0]
    assert 6 <= len(window) <= 13


def test_cmd_arrow_sits_on_the_car_and_points_with_the_steering(stack):
    assert stack.wait_for(lambda: len(stack.markers) > 5)
    marker = stack.markers[-1]
    odom = stack.odom[-1]
    assert marker.type == Marker.ARROW and marker.header.frame_id == 'odom'
    assert math.hypot(marker.pose.position.x - odom.pose.pose.position.x,
                      marker.pose.position.y - odom.pose.pose.position.y) < 0.2
    cmd = stack.cmds[-1]
    car_yaw = 2 * math.atan2(odom.pose.pose.orientation.z, odom.pose.pose.orientation.w)
    arrow_yaw = 2 * math.atan2(marker.pose.orientation.z, marker.pose.orientation.w)
    expected = car_yaw + cmd.twist.angular.z * math.radians(25.0)
    error = math.atan2(math.sin(arrow_yaw - expected), math.cos(arrow_yaw - expected))
    assert abs(error) < math.radians(8)  # pose and command are a few ms apart
    assert marker.scale.x == pytest.approx(0.15 + 0.5 * abs(cmd.twist.linear.x), abs=0.1)
