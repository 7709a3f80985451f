"""ROS glue for the camera: publishes ``camera/image_raw`` (rgb8) and ``camera/camera_info``.

Frames are captured in a thread of their own (never on the executor), stamped when grabbed, and
published from that thread. A camera that disappears is reopened with back-off, so unplugging
and replugging it needs no restart.
"""
from __future__ import annotations

import threading

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from donkey_ros.camera.camera_info import from_file, pinhole
from donkey_ros.camera.capture import CaptureThread, FrameShaper
from donkey_ros.camera.sources import BACKENDS, make_source, resolve_backend
from donkey_ros.common import intra, qos
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.image import array_to_image
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main

NODE_NAME = 'camera'
PARAMS = (
    Param('backend', 'auto', 'Frame source: opencv (USB/V4L2 camera or video path), libcamera '
          '(CSI camera on Ubuntu: GStreamer libcamerasrc in OpenCV), picamera2 (Pi camera on '
          'Raspberry Pi OS), file (folder of images or video, looped); auto = picamera2 if '
          'installed, else libcamera if available, else opencv.', choices=BACKENDS,
          read_only=True),
    Param('device', '0', 'opencv: camera index (0), device (/dev/video0) or video path/URL; '
          "libcamera: the camera's libcamera id (`cam --list`), 0 = the first.", read_only=True),
    Param('path', '', 'file: folder of images (played in name order) or a video file.',
          read_only=True),
    Param('width', 160, 'Published image width before cropping (frames are resized).',
          min=8, max=4096, read_only=True),
    Param('height', 120, 'Published image height before cropping.', min=8, max=4096,
          read_only=True),
    Param('fps', 20.0, 'Frames per second published (a faster camera is thinned, files are '
          'paced).', min=0.5, max=240.0, read_only=True),
    Param('crop_top', 0, 'Pixels cut from the top after resizing (DonkeyCar ROI_CROP_TOP).',
          min=0, max=4096, read_only=True),
    Param('crop_bottom', 0, 'Pixels cut from the bottom after resizing.', min=0, max=4096,
          read_only=True),
    Param('crop_left', 0, 'Pixels cut from the left after resizing.', min=0, max=4096,
          read_only=True),
    Param('crop_right', 0, 'Pixels cut from the right after resizing.', min=0, max=4096,
          read_only=True),
    Param('flip_horizontal', False, 'Mirror the image left-right.', read_only=True),
    Param('flip_vertical', False, 'Mirror the image top-bottom (both flips = camera mounted '
          'upside down).', read_only=True),
    Param('frame_id', 'camera', 'frame_id of the published image and camera info.',
          read_only=True),
    Param('hfov_deg', 62.2, 'Horizontal field of view for the pinhole camera_info when no '
          'calibration file is given (Pi camera v2: 62.2).', min=1.0, max=179.0, read_only=True),
    Param('camera_info_file', '', 'ROS camera_calibration YAML; adapted to the published size.',
          read_only=True),
    Param('reliability', 'reliable', 'QoS reliability of the image publisher (the contract: '
          'reliable).', choices=('reliable', 'best_effort'), read_only=True),
    Param('depth', 10, 'QoS history depth of the image publisher.', min=1, max=100,
          read_only=True),
    Param('retry_interval', 0.5, 'First wait (s) before reopening a failed camera; doubles on '
          'each failure.', min=0.05, max=60.0, read_only=True),
    Param('retry_max', 5.0, 'Longest wait (s) between attempts to reopen a camera.', min=0.05,
          max=300.0, read_only=True),
)


def image_qos(reliability: str, depth: int) -> QoSProfile:
    profile = QoSProfile(history=qos.IMAGE_PUBLISH.history, depth=depth,
                         reliability=ReliabilityPolicy.RELIABLE)
    if reliability == 'best_effort':
        profile.reliability = ReliabilityPolicy.BEST_EFFORT
    return profile


class CameraNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = p = declare_parameters(self, PARAMS)
        self.shaper = FrameShaper(p.width, p.height, p.crop_top, p.crop_bottom, p.crop_left,
                                  p.crop_right, p.flip_horizontal, p.flip_vertical)
        self.model = (from_file(p.camera_info_file, self.shaper) if p.camera_info_file
                      else pinhole(self.shaper, p.hfov_deg))
        backend, refusals = resolve_backend(p.backend)
        for refusal in refusals:
            self.get_logger().info(f'camera backend auto: {refusal}')
        if p.backend == 'auto':
            self.get_logger().info(f'camera backend auto: using {backend}')
        source = make_source(backend, p.device, p.path, p.width, p.height, p.fps)
        self.image_pub = intra.create_publisher(self, Image, 'camera/image_raw',
                                                image_qos(p.reliability, p.depth))
        self.info_pub = intra.create_publisher(self, CameraInfo, 'camera/camera_info',
                                               image_qos(p.reliability, p.depth))
        # In-process subscribers keep the message they get: a new one per frame then, made
        # before the frame is grabbed (making an Image costs ~0.1 ms after an idle spell).
        self._reuse = not isinstance(self.image_pub, intra.IntraPublisher)
        self._msg = None
        self._lock = threading.Lock()
        self.capture = CaptureThread(
            source, self.shaper, p.fps, self._publish, self._on_error,
            stamp=lambda: self.get_clock().now().to_msg(),
            retry_interval=p.retry_interval, retry_max=p.retry_max,
            prepare=None if self._reuse else self._prepare)
        self.diagnostics = DiagnosticsPublisher(self, self._report,
                                                hardware_id=source.description)
        self.get_logger().info(
            f'{source.description}: {self.shaper.out_width}x{self.shaper.out_height} rgb8 at '
            f'{p.fps:g} fps on {self.resolve_topic_name("camera/image_raw")}')
        self.capture.start()

    def _publish(self, rgb, stamp) -> None:
        if self._reuse:
            with self._lock:
                self._msg = array_to_image(rgb, stamp, self.params.frame_id, msg=self._msg)
                self.image_pub.publish(self._msg)
        else:
            msg, self._msg = self._msg, None
            self.image_pub.publish(array_to_image(rgb, stamp, self.params.frame_id, msg=msg))
        if self.info_pub.get_subscription_count():  # nobody listening: not even built
            self.info_pub.publish(self.model.to_msg(stamp, self.params.frame_id))

    def _prepare(self) -> None:
        if self._msg is None:
            self._msg = Image()

    def _on_error(self, message: str) -> None:
        if message.endswith('streaming again'):
            self.get_logger().info(message)
        else:
            self.get_logger().error(message, throttle_duration_sec=2.0)

    def _report(self):
        c = self.capture
        values = {'source': c.source.description, 'state': c.state, 'frames': c.frames,
                  'fps': c.measured_fps, 'errors': c.errors, 'last_error': c.last_error}
        if c.state == 'streaming':
            return OK, f'streaming {c.measured_fps:.1f} fps', values
        if c.state in ('starting', 'stopped'):
            return WARN, c.state, values
        return ERROR, c.last_error or c.state, values

    def on_shutdown(self) -> None:
        self.capture.stop()

    def destroy_node(self):
        if hasattr(self, 'capture'):
            self.capture.stop()
        return super().destroy_node()


def main() -> None:
    node_main(CameraNode)


if __name__ == '__main__':
    main()
