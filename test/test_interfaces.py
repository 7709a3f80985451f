"""The custom interfaces of donkey_ros_interfaces: generated types and a real service round trip.

The package is built with the standard rosidl tools by scripts/build_interfaces.sh (or colcon);
these tests use it as installed, with no environment set up beyond conftest.py's DDS isolation.
"""
import time

import numpy as np
import pytest
from rclpy.node import Node

from donkey_ros_interfaces.msg import RecorderStatus, SimStatus
from donkey_ros_interfaces.srv import ListStyles, Stylize
from sensor_msgs.msg import Image
from std_msgs.msg import Header


def _image(width: int, height: int, channels: int = 3) -> Image:
    pixels = np.arange(width * height * channels, dtype=np.uint32).astype(np.uint8)
    msg = Image(height=height, width=width, encoding='rgb8', is_bigendian=0,
                step=width * channels)
    msg.data = pixels.tobytes()
    return msg


def _pixels(msg: Image) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(
        msg.height, msg.width, msg.step // msg.width)


def test_stylize_fields_and_defaults():
    request = Stylize.Request()
    assert isinstance(request.image, Image)
    assert isinstance(request.style_image, Image)
    assert request.style == ''
    assert request.strength == 0.0
    assert request.width == 0 and request.height == 0
    assert request.style_image.width == 0 and len(request.style_image.data) == 0

    request = Stylize.Request(image=_image(4, 2), style='mosaic', strength=0.5, width=8, height=6)
    assert request.style == 'mosaic'
    assert request.strength == pytest.approx(0.5)
    assert (request.width, request.height) == (8, 6)
    assert request.image.width == 4 and len(request.image.data) == 4 * 2 * 3

    response = Stylize.Response(image=_image(2, 2), success=True, message='ok',
                                processing_time=0.25)
    assert response.success is True
    assert response.message == 'ok'
    assert response.processing_time == 0.25
    assert Stylize.Response().success is False


def test_list_styles_fields():
    assert ListStyles.Request.get_fields_and_field_types() == {}
    response = ListStyles.Response(styles=['mosaic', 'candy'],
                                   descriptions=['Roman mosaic', 'Bright candy colours'])
    assert list(response.styles) == ['mosaic', 'candy']
    assert len(response.descriptions) == len(response.styles)
    assert ListStyles.Response.get_fields_and_field_types() == {
        'styles': 'sequence<string>', 'descriptions': 'sequence<string>'}


def test_sim_status_fields():
    assert SimStatus.get_fields_and_field_types() == {
        'header': 'std_msgs/Header',
        'on_track': 'boolean',
        'cross_track_error': 'double',
        'progress': 'double',
        'speed': 'double',
        'laps': 'uint32',
        'lap_time': 'double',
        'last_lap_time': 'double',
        'best_lap_time': 'double',
        'off_track_count': 'uint32',
        'distance': 'double',
        'track': 'string',
    }
    msg = SimStatus(header=Header(frame_id='world'), on_track=True, cross_track_error=-0.12,
                    progress=3.5, speed=1.8, laps=2, lap_time=4.0, last_lap_time=11.2,
                    best_lap_time=10.9, off_track_count=1, distance=50.0, track='oval')
    assert msg.header.frame_id == 'world'
    assert msg.on_track and msg.laps == 2 and msg.track == 'oval'
    assert msg.cross_track_error == pytest.approx(-0.12)


def test_recorder_status_fields():
    assert RecorderStatus.get_fields_and_field_types() == {
        'header': 'std_msgs/Header',
        'recording': 'boolean',
        'bag_path': 'string',
        'current_file': 'string',
        'messages': 'uint64',
        'bytes': 'uint64',
        'dropped': 'uint64',
        'messages_per_second': 'double',
        'duration': 'double',
        'error': 'string',
        'write_errors': 'uint64',
        'free_bytes': 'uint64',
    }
    big = 2 ** 40  # uint64 holds more than 32 bits
    msg = RecorderStatus(recording=True, bag_path='/data/run1', current_file='run1_0.mcap',
                         messages=12, bytes=big, dropped=0, messages_per_second=20.0, duration=0.6)
    assert msg.bytes == big and msg.recording


def test_message_serialization_round_trip():
    from rclpy.serialization import deserialize_message, serialize_message

    msg = SimStatus(on_track=True, laps=3, track='figure8', best_lap_time=9.5)
    assert deserialize_message(serialize_message(msg), SimStatus) == msg
    request = Stylize.Request(image=_image(3, 2), style='candy', strength=1.0)
    assert deserialize_message(serialize_message(request), Stylize.Request) == request


class _FlipServer(Node):
    """Serves Stylize by flipping the image left-right (a stand-in for real style transfer)."""

    def __init__(self, **kwargs):
        super().__init__('flip_stylizer', **kwargs)
        self.requests = []
        self.create_service(Stylize, 'stylize', self._stylize)
        self.create_service(ListStyles, 'list_styles', self._list_styles)

    def _stylize(self, request, response):
        start = time.perf_counter()
        self.requests.append(request)
        if request.image.width == 0 or request.image.height == 0:
            response.success = False
            response.message = 'empty image'
            return response
        flipped = _pixels(request.image)[:, ::-1, :]
        response.image = Image(header=request.image.header, height=request.image.height,
                               width=request.image.width, encoding=request.image.encoding,
                               is_bigendian=request.image.is_bigendian, step=request.image.step)
        response.image.data = np.ascontiguousarray(flipped).tobytes()
        response.success = True
        response.message = f'flipped with style {request.style or "default"!r}'
        response.processing_time = time.perf_counter() - start
        return response

    def _list_styles(self, request, response):
        response.styles = ['flip']
        response.descriptions = ['Mirror the image left-right']
        return response


def _call(client, request, timeout=10.0):
    assert client.wait_for_service(timeout_sec=timeout), f'{client.srv_name} never appeared'
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert future.done(), f'{client.srv_name} did not answer in {timeout}s'
    return future.result()


def test_stylize_service_round_trip(graph):
    server = graph.add(_FlipServer)
    client_node = graph.node('stylize_client')
    stylize = client_node.create_client(Stylize, 'stylize')
    list_styles = client_node.create_client(ListStyles, 'list_styles')

    image = _image(5, 3)
    image.header.frame_id = 'camera'
    response = _call(stylize, Stylize.Request(image=image, style='mosaic', strength=1.0))
    assert response.success, response.message
    assert 'mosaic' in response.message
    assert response.processing_time >= 0.0
    assert (response.image.width, response.image.height) == (5, 3)
    assert response.image.encoding == 'rgb8'
    assert response.image.header.frame_id == 'camera'
    np.testing.assert_array_equal(_pixels(response.image), _pixels(image)[:, ::-1, :])

    # The server saw the request exactly as sent.
    assert len(server.requests) == 1
    seen = server.requests[0]
    assert seen.style == 'mosaic' and seen.strength == pytest.approx(1.0)
    assert seen.style_image.width == 0 and (seen.width, seen.height) == (0, 0)

    failure = _call(stylize, Stylize.Request())
    assert not failure.success and failure.message == 'empty image'

    styles = _call(list_styles, ListStyles.Request())
    assert list(styles.styles) == ['flip']
    assert list(styles.descriptions) == ['Mirror the image left-right']
