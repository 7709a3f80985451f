"""The overlay drawing (plain NumPy) and the overlay node on its own (no simulator)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.image import array_to_image, image_to_array
from donkey_ros.monitor.overlay import COLORS, arrow, draw_overlay
from donkey_ros.monitor.overlay_node import OverlayNode

GREY = np.full((120, 160, 3), 100, np.uint8)


def painted(image: np.ndarray, color) -> np.ndarray:
    return (image == np.array(color, np.uint8)).all(axis=2)


def test_steering_left_bends_the_arc_left():
    for steering, side in ((0.8, 'left'), (-0.8, 'right')):
        out = draw_overlay(GREY, {'cmd': DriveCommand(steering, 0.0)})
        ys, xs = np.nonzero(painted(out[:80], COLORS['cmd']))  # upper part: the arc, not bars
        assert len(xs), steering
        mean_x = xs.mean()
        assert (mean_x < 70) if side == 'left' else (mean_x > 90)


def test_throttle_bars_go_up_for_forward_and_down_for_reverse():
    h = GREY.shape[0]
    forward = painted(draw_overlay(GREY, {'user': DriveCommand(0.0, 0.9)}), COLORS['user'])
    reverse = painted(draw_overlay(GREY, {'user': DriveCommand(0.0, -0.9)}), COLORS['user'])
    right = slice(130, 160)
    assert forward[:h // 2 - 2, right].sum() > 50 and forward[h // 2 + 2:, right].sum() == 0
    assert reverse[h // 2 + 2:, right].sum() > 50 and reverse[:h // 2 - 2, right].sum() == 0


def test_each_source_has_its_colour_and_the_input_is_untouched():
    frame = GREY.copy()
    out = draw_overlay(frame, {'cmd': DriveCommand(0.2, 0.5), 'user': DriveCommand(0.5, 0.5),
                               'pilot': DriveCommand(-0.5, 0.3)})
    assert (frame == GREY).all()
    for color in COLORS.values():
        assert painted(out, color).sum() > 20
    assert not painted(draw_overlay(frame, {'pilot': None}), COLORS['pilot']).any()


def test_upscale_and_bad_frames():
    assert draw_overlay(GREY, {}, upscale=3).shape == (360, 480, 3)
    with pytest.raises(ValueError):
        draw_overlay(np.zeros((10, 10), np.uint8), {})


def test_arrow_points_where_the_car_goes():
    straight = arrow(DriveCommand(0.0, 0.5), 1.0, 2.0, yaw=0.3)
    assert (straight.x, straight.y, straight.yaw) == (1.0, 2.0, pytest.approx(0.3))
    assert straight.length == pytest.approx(0.4)
    left = arrow(DriveCommand(1.0, 0.5), yaw=0.0, max_steer_deg=25.0)
    assert left.yaw == pytest.approx(math.radians(25.0))
    backwards = arrow(DriveCommand(0.0, -0.5), yaw=0.0)
    assert abs(backwards.yaw) == pytest.approx(math.pi)


def test_node_without_odom_draws_and_marks_in_base_link(graph, capfd):
    node = graph.add(OverlayNode)
    ns = graph.namespace
    probe = graph.node()
    image_pub = probe.create_publisher(Image, f'{ns}/camera/image_raw', qos.IMAGE_PUBLISH)
    cmd_pub = probe.create_publisher(TwistStamped, f'{ns}/cmd', qos.COMMAND)
    overlays = graph.collect(Image, f'{ns}/pilot/overlay', qos.IMAGE_LATEST)
    markers = graph.collect(Marker, f'{ns}/cmd/marker')
    assert graph.wait_for(lambda: probe.count_subscribers(f'{ns}/cmd') >= 1)
    # A broken frame and a NaN command: logged, nothing published, the node carries on.
    image_pub.publish(Image(width=4, height=4, encoding='rgb8', step=12, data=bytes(5)))
    bad = command_to_msg(DriveCommand())
    bad.twist.linear.x = float('nan')
    cmd_pub.publish(bad)
    assert graph.wait_for(lambda: node.rejected == 1)
    cmd_pub.publish(command_to_msg(DriveCommand(0.5, 0.4)))
    assert graph.wait_for(lambda: markers)
    node.next_due = 0.0
    image_pub.publish(array_to_image(GREY))
    assert graph.wait_for(lambda: overlays)
    marker = markers[-1]
    assert marker.header.frame_id == 'base_link' and marker.type == Marker.ARROW
    assert (marker.pose.position.x, marker.pose.position.y) == (0.0, 0.0)
    out = image_to_array(overlays[-1])
    assert out.shape == (240, 320, 3)  # upscale 2 by default
    assert painted(out, COLORS['cmd']).any() and not painted(out, COLORS['pilot']).any()
    err = capfd.readouterr().err
    assert 'camera/image_raw' in err and 'nan' in err.lower()
    level, message, values = node._report()
    assert values['overlays_published'] == 1 and values['frames_rejected'] == 1
