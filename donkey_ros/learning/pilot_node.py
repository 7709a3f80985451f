"""The pilot node: camera frames in, `pilot/cmd` out, from a TFLite model run with LiteRT.

Frames come in on `camera/image_raw`, best-effort depth 1: the middleware keeps only the newest
frame, so no backlog can ever build up. Inference runs off the node's executor: a worker thread
owns a small helper node (``<name>_frames``, same namespace) holding just the camera subscription,
and spins it with its own executor. So the worker takes the newest frame as soon as it arrives,
runs the model and publishes `pilot/cmd` stamped with the frame's stamp, while parameters, the
reload service and diagnostics stay on the main executor and never wait for (or delay) inference.
Frames that were replaced by a newer one before the worker took them are counted as skipped
(gaps in the publisher's sequence numbers; on the in-process fast path, common/intra.py, the
frames its depth-1 queue replaced).

The model (``model_path``) can be swapped at run time by setting the parameter or calling
``~/reload`` (std_srvs/Trigger, re-reads the file). A parameter change is loaded while it is
validated: a model that cannot be used refuses the change (its reason is the set's reason) and
the working model keeps driving. A missing, corrupt or mismatched model, or a
frame of the wrong size, is logged as one line and the pilot publishes nothing: the mux then
times the pilot out and sends neutral. TensorFlow is never imported here.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from donkey_ros.common import intra, qos
from donkey_ros.common.command import (NEUTRAL, CommandBuilder, DriveCommand, clamp,
                                      command_to_msg)
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.common.image import image_to_array
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import SPIN_PERIOD, make_executor, node_main
from donkey_ros.learning.inference import ModelRunner

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / 'models' / 'default_pilot.tflite'

NODE_NAME = 'pilot'
PARAMS = (
    Param('model_path', '', 'The .tflite model to drive with (empty = the shipped default model '
          'donkey_ros/models/default_pilot.tflite). Setting it at run time swaps the model, or '
          'is refused (with the reason) if the model cannot be used.'),
    Param('threads', 1, 'LiteRT interpreter threads.', min=1, max=8),
    Param('throttle_mode', 'model', "Throttle from the model ('model') or a fixed value "
          "('constant').", choices=('model', 'constant')),
    Param('constant_throttle', 0.3, "Throttle when throttle_mode is 'constant'.",
          min=-1.0, max=1.0),
    Param('throttle_scale', 1.0, "Multiplies the throttle (DonkeyCar's AI_THROTTLE_MULT).",
          min=0.0, max=3.0),
    Param('output_order', 'auto', 'Models with two output tensors (DonkeyCar exports): which one '
          "is steering. 'auto' = the model's metadata, else the order the model declares "
          '(its serving_default signature): steering first.',
          choices=('auto', 'steering_throttle', 'throttle_steering')),
    Param('steering_sign', 0, "Sign applied to the model's steering so that + = left: 0 = the "
          'metadata, else -1 for models without metadata (DonkeyCar: + = right).',
          min=-1, max=1),
    Param('input_scale', 0.0, 'Pixel (0-255) multiplier of the input normalization; 0 = the '
          'metadata, else 1/255 for models without metadata (DonkeyCar).', min=0.0, max=1.0),
    Param('input_offset', 0.0, 'Added after input_scale (used only when input_scale > 0; '
          'e.g. -1.0 with input_scale 2/255 for [-1, 1] inputs).', min=-255.0, max=255.0),
    Param('throttle_range', 0.5, 'Models without metadata, categorical: DonkeyCar throttle bins '
          'cover 0..this.', min=0.01, max=1.0),
    Param('resize_mismatched', False, 'Resize camera frames whose size differs from the frames '
          'the model was trained on, instead of refusing them.'),
)
RELOAD_PARAMS = {'model_path', 'threads', 'output_order', 'steering_sign', 'input_scale',
                 'input_offset', 'throttle_range'}


def load_runner(params) -> ModelRunner:
    """A ModelRunner for the node's parameters (overrides applied).

    Raises:
        ModelError: missing, corrupt or inconsistent model.
    """
    path = Path(params.model_path).expanduser() if params.model_path else DEFAULT_MODEL
    overrides = {}
    if params.output_order != 'auto':
        overrides['layout'] = params.output_order
    if params.steering_sign:
        overrides['steering_sign'] = float(params.steering_sign)
    if params.input_scale > 0:
        overrides.update(input_scale=params.input_scale, input_offset=params.input_offset)
    return ModelRunner(path, threads=params.threads, overrides=overrides,
                       donkeycar_throttle_range=params.throttle_range)


class PilotNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self._staged_runner = None
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param,
                                         check=self._check_param)
        self.runner: ModelRunner | None = None
        self.model_error = ''
        self.frame_error = ''
        self.frames_received = 0
        self.frames_skipped = 0
        self.frames_rejected = 0
        self.commands = 0
        self.last_command = (0.0, 0.0)
        self._last_sequence = 0
        self.inference_ms = collections.deque(maxlen=200)
        self.process_ms = collections.deque(maxlen=200)
        self.latency_ms = collections.deque(maxlen=200)
        self._system_clock = not self.get_parameter('use_sim_time').value
        self.cmd_pub = intra.create_publisher(self, TwistStamped, 'pilot/cmd', qos.COMMAND)
        self._commands = CommandBuilder()  # used by the inference thread only
        self.create_service(Trigger, '~/reload', self._on_reload)
        self._load(self.params)
        # The camera subscription lives on a helper node spun by the inference thread.
        # It ignores the command line (a `__node:=` remap would give it the pilot's name); the
        # topic is resolved by the pilot itself, so the pilot's remaps still apply.
        self.frames_node = rclpy.create_node(
            f'{self.get_name()}_frames', namespace=self.get_namespace(), context=self.context,
            start_parameter_services=False, use_global_arguments=False)
        # With the in-process fast path the skipped frames are those its depth-1 queue replaced
        # (the in-process camera's), and the callback needs no message info.
        fast = intra.enabled(self.context) is not None
        self._frames = intra.create_subscription(
            self.frames_node, Image, self.resolve_topic_name('camera/image_raw'),
            self._on_latest_frame if fast else self._on_frame, qos.IMAGE_LATEST)
        # Made here, not in the worker: an EventsExecutor sets signal handlers when created, and
        # run_nodes (main thread, after the nodes are made) puts its own back. _on_frame takes
        # the message info, which rclpy 9.1's EventsExecutor cannot give: this is then single
        # (but not on the fast path).
        self._frames_executor = make_executor(context=self.context, nodes=[self.frames_node])
        self._frames_executor.add_node(self.frames_node)
        self._running = True
        self._worker = threading.Thread(target=self._spin_frames, name='pilot-inference',
                                        daemon=True)
        self._worker.start()
        self.diagnostics = DiagnosticsPublisher(self, self._report)

    # --- model -------------------------------------------------------------------------------
    def _load(self, params) -> bool:
        try:
            runner = load_runner(params)
        except DonkeyRosError as error:
            self.runner = None
            self.model_error = str(error)
            self.get_logger().error(f'{error}; publishing nothing until a usable model is set')
            return False
        self.runner = runner
        self.model_error = ''
        self.frame_error = ''
        self.get_logger().info(f'model {runner.describe()}')
        return True

    def _check_param(self, proposed, changed) -> None:
        """Validation of a parameter batch: a batch that changes the model loads it here, so a
        model that cannot be used refuses the batch and the working one keeps driving."""
        self._staged_runner = None
        if RELOAD_PARAMS & set(changed):
            self._staged_runner = load_runner(proposed)  # ModelError refuses the batch

    def _on_param(self, name, value) -> None:
        runner, self._staged_runner = getattr(self, '_staged_runner', None), None
        if name in RELOAD_PARAMS and runner is not None:
            self.runner = runner
            self.model_error = ''
            self.frame_error = ''
            self.get_logger().info(f'model {runner.describe()}')

    def _on_reload(self, request, response):
        response.success = self._load(self.params)
        response.message = (f'loaded {self.runner.name}' if response.success
                            else self.model_error)
        return response

    # --- hot path (inference thread) ---------------------------------------------------------
    def _spin_frames(self) -> None:
        executor = self._frames_executor
        try:
            while self._running and self.context.ok():
                try:
                    executor.spin_once(timeout_sec=SPIN_PERIOD)
                except Exception as error:  # a bad frame must not end inference for good
                    if not (self._running and self.context.ok()):
                        break
                    self._reject(f'{type(error).__name__}: {error}')
        finally:
            executor.shutdown(timeout_sec=0.5)

    def _on_frame(self, msg: Image, info) -> None:
        started = time.perf_counter()
        sequence = info.get('publication_sequence_number', 0) or 0
        if 0 < self._last_sequence < sequence < 2**63:
            self.frames_skipped += sequence - self._last_sequence - 1
        self._last_sequence = sequence
        self._use_frame(msg, started)

    def _on_latest_frame(self, msg: Image) -> None:
        """The fast path's frames: skipped = replaced in its queue (frames of a camera in another
        process, over DDS, are then not counted when skipped)."""
        started = time.perf_counter()
        self.frames_skipped = self._frames.replaced
        self._use_frame(msg, started)

    def _use_frame(self, msg: Image, started: float) -> None:
        self.frames_received += 1
        runner = self.runner
        if runner is None:
            return
        try:
            pixels = image_to_array(msg)
            if self.params.resize_mismatched and pixels.shape != runner.image_shape:
                pixels = _resize(pixels, runner.image_shape)
            steering, throttle = runner.predict(pixels)
        except (DonkeyRosError, ValueError, RuntimeError) as error:
            self._reject(str(error))
            return
        params = self.params
        if params.throttle_mode == 'constant':
            throttle = params.constant_throttle
        throttle *= params.throttle_scale
        if not (math.isfinite(steering) and math.isfinite(throttle)):
            self._reject(f'model output is not finite (steering {steering}, throttle {throttle})')
            return
        stamp = msg.header.stamp
        # Timed up to the hand-over: on the in-process fast path, publish returns only once the
        # mux and the actuator have taken the command (in this thread).
        now = time.time_ns() if self._system_clock else self.get_clock().now().nanoseconds
        done = time.perf_counter()
        self._publish(clamp(steering), clamp(throttle), stamp)
        self.inference_ms.append(runner.last_invoke_s * 1e3)
        self.process_ms.append((done - started) * 1e3)
        self.latency_ms.append((now - stamp.sec * 1_000_000_000 - stamp.nanosec) * 1e-6)

    def _publish(self, steering: float, throttle: float, stamp) -> None:
        # A new message each time: in-process subscribers keep it.
        self.cmd_pub.publish(self._commands.build(DriveCommand(steering, throttle), stamp))
        self._commands.prepare()  # the command has reached the wheels if they are in-process
        self.commands += 1
        self.last_command = (steering, throttle)
        if self.frame_error:
            self.frame_error = ''
            self.get_logger().info('frames accepted again')

    def _reject(self, reason: str) -> None:
        self.frames_rejected += 1
        if reason != self.frame_error:
            self.get_logger().error(f'frame not used: {reason}; publishing nothing')
        self.frame_error = reason

    # --- health ------------------------------------------------------------------------------
    def _report(self):
        values = {
            'model': self.runner.name if self.runner else '-',
            'frames_received': self.frames_received, 'frames_skipped': self.frames_skipped,
            'frames_rejected': self.frames_rejected, 'commands': self.commands,
            'inference_ms_p50': _median(self.inference_ms),
            'processing_ms_p50': _median(self.process_ms),
            'latency_ms_p50': _median(self.latency_ms),
            'latency_ms_max': max(self.latency_ms, default=0.0),
            'steering': self.last_command[0], 'throttle': self.last_command[1],
        }
        if not self._worker.is_alive():
            return ERROR, 'inference thread stopped', values
        if self.runner is None:
            return ERROR, f'no model: {self.model_error}', values
        if self.frame_error:
            return ERROR, f'frames refused: {self.frame_error}', values
        if not self.frames_received:
            return WARN, 'waiting for camera/image_raw', values
        return OK, f'driving with {self.runner.name}', values

    def _stop_worker(self) -> None:
        self._running = False
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=5.0)

    def on_shutdown(self) -> None:
        self._stop_worker()
        self.cmd_pub.publish(command_to_msg(NEUTRAL, self.get_clock().now().to_msg()))

    def destroy_node(self) -> None:
        self._stop_worker()
        self.frames_node.destroy_node()
        super().destroy_node()


def _median(values) -> float:
    return float(np.median(values)) if values else 0.0


def _resize(pixels: np.ndarray, shape: tuple) -> np.ndarray:
    import cv2
    return cv2.resize(pixels, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def main() -> None:
    node_main(PilotNode)
