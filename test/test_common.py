"""Shared helpers: parameter tables, image conversion, drive commands."""
import math

import numpy as np
import pytest
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from donkey_ros.common.command import CommandError, DriveCommand, command_from_msg, command_to_msg
from donkey_ros.common.errors import ConfigError
from donkey_ros.common.image import ImageError, array_to_image, image_to_array
from donkey_ros.common.params import Param, declare_parameters, markdown_table

SPECS = (
    Param('rate', 20.0, 'Frames per second.', min=1.0, max=100.0),
    Param('mode', 'user', 'Mode.', choices=('user', 'pilot')),
    Param('topics', ['a', 'b'], 'Topics.'),
    Param('exclude', [], 'Excluded topics.', item_type=str),
    Param('count', 3, 'A count.', min=0),
    Param('enabled', True, 'Switch.'),
)


def test_param_validation_coerces_and_rejects_with_the_name():
    rate = SPECS[0]
    assert rate.validate(30) == 30.0 and isinstance(rate.validate(30), float)
    with pytest.raises(ConfigError, match=r"'rate' = -5.0 is out of range \(1.0 <= value <= 100.0\)"):
        rate.validate(-5.0)
    with pytest.raises(ConfigError, match="'rate' must be finite"):
        rate.validate(math.nan)
    with pytest.raises(ConfigError, match="'rate' must be float"):
        rate.validate('fast')
    with pytest.raises(ConfigError, match="'mode' = 'auto' is not valid"):
        SPECS[1].validate('auto')
    with pytest.raises(ConfigError, match="'count' must be int"):
        SPECS[4].validate(2.5)
    with pytest.raises(ConfigError, match="'enabled' must be bool"):
        SPECS[5].validate(1)
    assert SPECS[3].type_name == 'str[]' and SPECS[2].validate(('x',)) == ['x']


def test_markdown_table_lists_every_parameter_with_constraints():
    table = markdown_table(SPECS)
    assert table.count('\n') == len(SPECS) + 1
    assert '| `rate` | float | `20.0` | Frames per second. (1.0 <= value <= 100.0) |' in table


def test_declared_parameters_come_from_overrides_and_changes_are_validated(graph):
    from rclpy.node import Node
    changes = []
    node = graph.add(Node, node_name='params_probe', parameter_overrides=[
        Parameter('rate', value=50), Parameter('exclude', value=['x'])])
    values = declare_parameters(node, SPECS, on_change=lambda n, v: changes.append((n, v)))
    assert values.rate == 50.0 and values.exclude == ['x'] and values.topics == ['a', 'b']
    assert node.describe_parameter('rate').description == 'Frames per second.'
    bad = node.set_parameters([Parameter('rate', value=500.0)])[0]
    assert not bad.successful and 'out of range' in bad.reason and values.rate == 50.0
    good = node.set_parameters([Parameter('mode', value='pilot')])[0]
    assert good.successful and values.mode == 'pilot' and changes == [('mode', 'pilot')]


def test_declare_rejects_bad_start_up_values(graph):
    from rclpy.node import Node
    node = graph.add(Node, node_name='params_bad', parameter_overrides=[
        Parameter('mode', value='auto')])
    with pytest.raises(ConfigError, match="'mode' = 'auto' is not valid"):
        declare_parameters(node, SPECS)


def test_image_round_trip_and_other_encodings():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
    msg = array_to_image(rgb, frame_id='cam')
    assert (msg.width, msg.height, msg.step, msg.encoding) == (16, 12, 48, 'rgb8')
    assert np.array_equal(image_to_array(msg), rgb)
    bgr = Image(width=16, height=12, step=48, encoding='bgr8', data=rgb[:, :, ::-1].tobytes())
    assert np.array_equal(image_to_array(bgr), rgb)
    padded = Image(width=16, height=12, step=52, encoding='rgb8',
                   data=np.pad(rgb.reshape(12, 48), ((0, 0), (0, 4))).tobytes())
    assert np.array_equal(image_to_array(padded), rgb)
    mono = array_to_image(rgb[:, :, 0].copy(), encoding='mono8')
    assert np.array_equal(image_to_array(mono)[:, :, 1], rgb[:, :, 0])


@pytest.mark.parametrize('msg, error', [
    (Image(width=0, height=0, encoding='rgb8'), 'empty image'),
    (Image(width=2, height=2, step=6, encoding='yuv422', data=bytes(12)), "unsupported encoding 'yuv422'"),
    (Image(width=4, height=4, step=12, encoding='rgb8', data=bytes(20)), 'image data is 20 bytes'),
])
def test_bad_images_raise_one_clear_error(msg, error):
    with pytest.raises(ImageError, match=error):
        image_to_array(msg)


def test_commands_clamp_and_reject_non_finite():
    assert DriveCommand.checked(1.05, -1.5) == DriveCommand(1.0, -1.0)  # slightly over: clamped
    msg = command_to_msg(DriveCommand(0.25, -0.5))
    assert (msg.twist.angular.z, msg.twist.linear.x) == (0.25, -0.5)
    assert command_from_msg(msg) == DriveCommand(0.25, -0.5)
    msg.twist.linear.x = math.inf
    with pytest.raises(CommandError, match='throttle is inf'):
        command_from_msg(msg)


@pytest.mark.parametrize('steering, throttle, name', [
    (0.0, 1e308, 'throttle'), (0.0, -1.51, 'throttle'), (3.0, 0.5, 'steering'),
    (-1e9, 0.0, 'steering')])
def test_commands_far_outside_the_range_are_rejected_not_clamped(steering, throttle, name):
    """1e308 is garbage, not a request for full throttle (it used to be clamped to 1.0)."""
    with pytest.raises(CommandError,
                       match=f'{name} is .*outside \\[-1.5, 1.5\\]; command rejected'):
        DriveCommand.checked(steering, throttle)


def test_jpeg_round_trip_and_unreadable_data():
    from donkey_ros.common.image import decode_jpeg, encode_jpeg
    rgb = np.zeros((24, 32, 3), np.uint8)
    rgb[:, :16] = (250, 20, 20)  # red left half: channel order must survive
    back = decode_jpeg(encode_jpeg(rgb, quality=95))
    assert back.shape == rgb.shape
    assert np.abs(back.astype(int) - rgb).mean() < 4
    assert back[12, 4, 0] > 200 and back[12, 4, 2] < 60
    with pytest.raises(ImageError, match='not a readable'):
        decode_jpeg(b'not a jpeg')
