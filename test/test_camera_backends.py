"""Camera backends for a Pi: the libcamera GStreamer pipeline, the `auto` choice and its refusals,
and the real OpenCV paths that run here (no CSI camera, pip's OpenCV without GStreamer)."""
import importlib.util

import cv2
import pytest

from donkey_ros.camera.sources import (CameraError, LibcameraSource, OpenCVSource, choose_backend,
                                       libcamera_pipeline, libcamera_refusal, make_source,
                                       opencv_has_gstreamer, resolve_backend)
from donkey_ros.common.image import image_to_array
from test_camera import CameraHarness, frame_index, write_video

HERE_GSTREAMER = opencv_has_gstreamer(cv2.getBuildInformation())


def test_libcamera_pipeline_string():
    assert libcamera_pipeline(160, 120, 20.0) == (
        'libcamerasrc ! video/x-raw,width=160,height=120,framerate=20/1 ! videoconvert ! '
        'video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false')
    named = libcamera_pipeline(640, 480, 7.5, '/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a')
    assert named.startswith('libcamerasrc camera-name="/base/axi/pcie@120000/rp1/i2c@88000/'
                            'imx708@1a" ! ')
    assert 'framerate=15/2' in named and 'width=640,height=480' in named


def test_device_names_a_libcamera_camera_only_when_it_is_not_an_index():
    assert 'camera-name' not in make_source('libcamera', device='0').pipeline
    assert 'camera-name' not in make_source('libcamera', device='/dev/video0').pipeline
    assert 'camera-name="/base/imx219"' in make_source('libcamera', device='/base/imx219').pipeline


def test_opencv_gstreamer_is_read_from_the_build_information():
    assert opencv_has_gstreamer('  Video I/O:\n    GStreamer:                   YES (1.24.2)\n')
    assert not opencv_has_gstreamer('  Video I/O:\n    GStreamer:                   NO\n')
    assert not opencv_has_gstreamer('')


def test_auto_choice_in_order_with_one_line_per_refusal():
    assert choose_backend('', '') == ('picamera2', [])
    backend, refusals = choose_backend('picamera2 is not installed', '')
    assert backend == 'libcamera' and refusals == ['not picamera2: picamera2 is not installed']
    backend, refusals = choose_backend('no picamera2', 'no libcamerasrc')
    assert backend == 'opencv' and refusals == ['not picamera2: no picamera2',
                                                'not libcamera: no libcamerasrc']
    assert resolve_backend('file') == ('file', [])


def test_libcamera_refusals_name_the_fix():
    assert libcamera_refusal(True, True, True, True) == ''
    assert 'python3-opencv' in libcamera_refusal(False, False, False, False)
    assert 'without GStreamer' in libcamera_refusal(True, False, True, True)
    assert 'gstreamer1.0-tools' in libcamera_refusal(True, True, False, False)
    assert 'gstreamer1.0-libcamera' in libcamera_refusal(True, True, True, False)


@pytest.mark.skipif(importlib.util.find_spec('picamera2') is not None or HERE_GSTREAMER,
                    reason='this machine has picamera2 or a GStreamer OpenCV')
def test_auto_on_this_machine_falls_back_to_v4l2_and_says_why():
    backend, refusals = resolve_backend('auto')
    assert backend == 'opencv'
    assert len(refusals) == 2 and all('\n' not in r for r in refusals)
    assert 'picamera2 is not installed' in refusals[0]
    assert 'without GStreamer' in refusals[1]
    assert isinstance(make_source('auto', device='/dev/video0'), OpenCVSource)


@pytest.mark.skipif(HERE_GSTREAMER, reason='this OpenCV has GStreamer')
def test_libcamera_source_without_gstreamer_is_one_clear_error():
    source = LibcameraSource(160, 120, 20.0)
    with pytest.raises(CameraError, match="without GStreamer.*python3-opencv") as info:
        source.open()
    assert '\n' not in str(info.value)
    source.close()


@pytest.mark.skipif(importlib.util.find_spec('picamera2') is not None or HERE_GSTREAMER,
                    reason='auto would not pick opencv here')
def test_camera_node_on_auto_streams_through_opencv(graph, tmp_path):
    video = tmp_path / 'clip.avi'
    write_video(video, size=(160, 120))
    camera = CameraHarness(graph, backend='auto', device=str(video), fps=30.0)
    assert graph.wait_for(lambda: len(camera.images) >= 5, 10.0)
    assert {frame_index(image_to_array(m)) for m in camera.images} <= set(range(5))
    assert isinstance(camera.node.capture.source, OpenCVSource)
