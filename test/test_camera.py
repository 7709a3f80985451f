"""The camera: frame shaping, the file and opencv backends on generated videos, recovery."""
import importlib.util
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from donkey_ros.camera.camera_info import from_file, pinhole
from donkey_ros.camera.camera_node import CameraNode
from donkey_ros.camera.capture import FrameShaper
from donkey_ros.camera.sources import CameraError, FileSource, make_source
from donkey_ros.common import qos
from donkey_ros.common.diagnostics import ERROR
from donkey_ros.common.errors import ConfigError
from donkey_ros.common.image import image_to_array

# Frame i of a test video is one colour (BGR), so the published frame tells which one it was.
COLOURS_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255)]


def write_video(path, size=(320, 240), fps=20):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, size)
    assert writer.isOpened()
    for colour in COLOURS_BGR:
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:] = colour
        writer.write(frame)
    writer.release()


def frame_index(rgb):
    """Which COLOURS_BGR frame an RGB image shows (MJPG is lossy: nearest colour)."""
    pixel = rgb[rgb.shape[0] // 2, rgb.shape[1] // 2].astype(int)
    distances = [np.abs(pixel - np.array(c[::-1])).sum() for c in COLOURS_BGR]
    return int(np.argmin(distances))


# ---- shaping and camera model --------------------------------------------------------------

def test_shaper_resizes_crops_flips_and_outputs_rgb():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, :160] = (0, 0, 255)  # left half red (BGR)
    frame[:, 160:] = (255, 0, 0)  # right half blue
    frame[:24] = (0, 255, 0)  # a green band on top (12 px after halving)
    rgb = FrameShaper(160, 120)(frame)
    assert rgb.shape == (120, 160, 3) and rgb.flags['C_CONTIGUOUS']
    assert tuple(rgb[60, 10]) == (255, 0, 0) and tuple(rgb[60, 150]) == (0, 0, 255)
    cropped = FrameShaper(160, 120, crop_top=12, crop_right=40, flip_horizontal=True)(frame)
    assert cropped.shape == (108, 120, 3)
    assert tuple(cropped[0, 100]) == (255, 0, 0), 'green band cropped away, mirrored'
    assert tuple(cropped[50, 110]) == (255, 0, 0) and tuple(cropped[50, 5]) == (0, 0, 255)
    gray = FrameShaper(160, 120)(np.full((120, 160), 7, np.uint8))
    assert gray.shape == (120, 160, 3)
    with pytest.raises(ConfigError, match='crop leaves nothing'):
        FrameShaper(160, 120, crop_top=60, crop_bottom=60)


def test_shaper_matches_the_plain_array_operations_for_every_flip_and_layout():
    rng = np.random.default_rng(3)
    bgr = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    bgra = np.dstack([bgr, rng.integers(0, 255, (120, 160), dtype=np.uint8)])
    for frame in (bgr, bgra, bgr[:, :, 1]):
        for flip_h in (False, True):
            for flip_v in (False, True):
                shaper = FrameShaper(160, 120, crop_top=10, crop_bottom=5, crop_left=3,
                                     crop_right=7, flip_horizontal=flip_h, flip_vertical=flip_v)
                want = frame[10:115, 3:153]
                want = np.repeat(want[:, :, None], 3, 2) if want.ndim == 2 else \
                    want[:, :, 2::-1]
                want = want[::-1 if flip_v else 1, ::-1 if flip_h else 1]
                got = shaper(frame)
                assert got.flags['C_CONTIGUOUS'] and got.dtype == np.uint8
                np.testing.assert_array_equal(got, want,
                                              err_msg=f'{frame.shape} h{flip_h} v{flip_v}')


def test_camera_model_follows_resizing_and_cropping(tmp_path):
    shaper = FrameShaper(160, 120, crop_top=20)
    model = pinhole(shaper, 90.0)
    assert (model.width, model.height) == (160, 100)
    assert model.k[0] == pytest.approx(80.0) and model.k[5] == pytest.approx(59.5 - 20)
    calibration = tmp_path / 'cam.yaml'
    calibration.write_text(
        'image_width: 640\nimage_height: 480\ncamera_name: pi\n'
        'camera_matrix: {rows: 3, cols: 3, data: [500, 0, 320, 0, 500, 240, 0, 0, 1]}\n'
        'distortion_model: plumb_bob\n'
        'distortion_coefficients: {rows: 1, cols: 5, data: [-0.3, 0.1, 0, 0, 0]}\n')
    model = from_file(str(calibration), shaper)
    assert model.k[0] == pytest.approx(125.0) and model.k[2] == pytest.approx(80.0)
    assert model.k[5] == pytest.approx(60.0 - 20) and model.d[0] == -0.3
    assert model.p[0] == pytest.approx(125.0) and model.p[6] == pytest.approx(40.0)
    calibration.write_text('nothing: here\n')
    with pytest.raises(CameraError, match='is not a camera_calibration YAML'):
        from_file(str(calibration), shaper)


def test_file_source_loops_over_a_video_and_skips_unreadable_images(tmp_path):
    video = tmp_path / 'drive.avi'
    write_video(video)
    source = FileSource(str(video))
    source.open()
    seen = []
    for _ in range(12):
        assert source.grab()
        seen.append(frame_index(source.retrieve()[:, :, ::-1]))
    assert seen == [0, 1, 2, 3, 4] * 2 + [0, 1]
    folder = tmp_path / 'images'
    folder.mkdir()
    for i in (2, 0):
        frame = np.zeros((60, 80, 3), np.uint8)
        frame[:] = COLOURS_BGR[i]
        cv2.imwrite(str(folder / f'{i:03d}.png'), frame)
    (folder / '001.png').write_bytes(b'not a png')
    source = FileSource(str(folder))
    source.open()
    results = []
    for _ in range(3):
        source.grab()
        try:
            results.append(frame_index(source.retrieve()[:, :, ::-1]))
        except CameraError as error:
            results.append(str(error))
    assert results[0] == 0 and 'is not a readable image' in results[1] and results[2] == 2
    with pytest.raises(CameraError, match='does not exist'):
        FileSource(str(tmp_path / 'missing')).open()


def test_picamera2_is_imported_only_when_selected_with_a_clear_error():
    if importlib.util.find_spec('picamera2') is not None:
        pytest.skip('picamera2 is installed here')
    with pytest.raises(CameraError, match='picamera2 is not installed: sudo apt install'):
        make_source('picamera2')
    assert 'picamera2' not in sys.modules


# ---- the node ----------------------------------------------------------------------------

class CameraHarness:
    def __init__(self, graph, **params):
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        probe = graph.node('probe')
        ns = graph.namespace
        self.images = graph.collect(Image, f'{ns}/camera/image_raw', qos.IMAGE_RELIABLE,
                                    node=probe)
        self.infos = graph.collect(CameraInfo, f'{ns}/camera/camera_info', qos.IMAGE_RELIABLE,
                                   node=probe)
        self.node = graph.add(CameraNode, parameter_overrides=overrides)
        self.graph = graph


def stamp_seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


def test_file_backend_publishes_looping_frames_with_capture_stamps(graph, tmp_path):
    video = tmp_path / 'drive.avi'
    write_video(video)
    camera = CameraHarness(graph, backend='file', path=str(video), fps=25.0, crop_top=20)
    assert graph.wait_for(lambda: len(camera.images) >= 12, 10.0)
    start = time.time()
    first = len(camera.images)
    assert graph.wait_for(lambda: len(camera.images) >= first + 10, 5.0)
    rate = (len(camera.images) - first) / (time.time() - start)
    assert 15 <= rate <= 30, f'{rate:.1f} fps published for 25 wanted'
    images = list(camera.images)
    msg = images[0]
    assert (msg.width, msg.height, msg.encoding) == (160, 100, 'rgb8')
    assert msg.header.frame_id == 'camera'
    indices = [frame_index(image_to_array(m)) for m in images[:12]]
    start_at = indices.index(0)
    assert indices[start_at:start_at + 6] == [0, 1, 2, 3, 4, 0], indices
    stamps = [stamp_seconds(m.header.stamp) for m in images]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert np.median(np.diff(stamps)) == pytest.approx(0.04, abs=0.01)
    assert graph.wait_for(lambda: camera.infos, 2.0)
    infos = list(camera.infos)
    image_stamps = {stamp_seconds(m.header.stamp) for m in camera.images}
    assert all((i.width, i.height) == (160, 100) for i in infos)
    assert {stamp_seconds(i.header.stamp) for i in infos} <= image_stamps, \
        'each camera_info has the stamp of its image'
    assert camera.node.image_pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE


def test_opencv_backend_on_a_video_path_and_best_effort_qos(graph, tmp_path):
    video = tmp_path / 'clip.avi'
    write_video(video, size=(160, 120))
    camera = CameraHarness(graph, backend='opencv', device=str(video), fps=30.0,
                           flip_vertical=True, reliability='best_effort')
    camera.images.clear()
    probe = graph.node('be')
    best_effort = graph.collect(Image, f'{graph.namespace}/camera/image_raw', qos.IMAGE_LATEST,
                                node=probe)
    assert graph.wait_for(lambda: len(best_effort) >= 5, 10.0)
    assert camera.node.image_pub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    assert {frame_index(image_to_array(m)) for m in best_effort} <= set(range(5))


def test_missing_camera_is_retried_and_recovers_without_restart(graph, tmp_path):
    video = tmp_path / 'later.avi'
    camera = CameraHarness(graph, backend='opencv', device=str(video), fps=20.0,
                           retry_interval=0.1, retry_max=0.2)
    assert graph.wait_for(lambda: camera.node.capture.errors >= 2, 5.0)
    assert 'does not exist; retrying' in camera.node.capture.last_error
    assert camera.node._report()[0] == ERROR
    assert not camera.images
    write_video(tmp_path / 'tmp.avi')
    os.replace(tmp_path / 'tmp.avi', video)  # the camera is "plugged in"
    assert graph.wait_for(lambda: len(camera.images) >= 3, 5.0)
    os.replace(video, tmp_path / 'away.avi')  # unplugged while streaming (at the end of the clip)
    assert graph.wait_for(lambda: 'does not exist' in camera.node.capture.last_error, 5.0)
    count = len(camera.images)
    time.sleep(0.3)
    assert len(camera.images) == count
    os.replace(tmp_path / 'away.avi', video)  # plugged back in
    assert graph.wait_for(lambda: len(camera.images) >= count + 3, 5.0)


def test_bad_parameters_exit_with_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'donkey_ros.camera.camera_node', '--ros-args',
         '-p', 'backend:=file', '-p', 'crop_top:=100', '-p', 'crop_bottom:=30'],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'crop leaves nothing of the 160x120 image' in result.stderr
    assert 'Traceback' not in result.stderr
