"""The pilot node in a real rclpy graph: frames in, pilot/cmd out, checked by independent readers."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from donkey_ros.common import qos
from donkey_ros.common.image import array_to_image
from donkey_ros.learning.inference import ModelRunner
from donkey_ros.learning.synthetic import lane_frame
from rosgraph import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """Three models: 'lane' (random weights, output depends on the image), 'constant' (always
    steering 0.5, throttle 0.2), 'donkeycar' (DonkeyCar-shaped, no metadata), and a corrupt file."""
    pytest.importorskip('tensorflow')
    import keras

    from donkey_ros.learning.export import export
    from donkey_ros.learning.models import ModelSpec, inference_model, training_model
    from donkey_ros.learning.train import TrainConfig
    from test_learning import _donkeycar_linear

    folder = tmp_path_factory.mktemp('pilot_models')
    keras.utils.set_random_seed(4)
    metadata = TrainConfig().model_metadata(160, 120)
    spec = ModelSpec(input_height=metadata.input_height, input_width=metadata.input_width)
    lane = export(inference_model(training_model(spec), spec), folder / 'lane.tflite', metadata)
    constant_model = training_model(spec)
    for name, bias in (('steering', 0.5), ('throttle', 0.2)):
        layer = constant_model.get_layer(name)
        kernel, _ = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.array([bias], np.float32)])
    constant = export(inference_model(constant_model, spec), folder / 'constant.tflite', metadata)
    donkeycar = _donkeycar_linear(folder / 'donkeycar.tflite', angle=0.25, throttle=0.4)
    corrupt = folder / 'corrupt.tflite'
    corrupt.write_bytes(b'TFL3' * 100)
    return {'lane': str(lane), 'constant': str(constant), 'donkeycar': str(donkeycar),
            'corrupt': str(corrupt), 'missing': str(folder / 'missing.tflite')}


class PilotHarness:
    """A pilot node plus a probe that publishes frames and collects commands and diagnostics."""

    def __init__(self, graph, **params):
        from donkey_ros.learning.pilot_node import PilotNode

        self.graph = graph
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.pilot = graph.add(PilotNode, parameter_overrides=overrides)
        self.probe = graph.node('probe')
        ns = graph.namespace
        self.frames = self.probe.create_publisher(Image, f'{ns}/camera/image_raw',
                                                  qos.IMAGE_PUBLISH)
        self.cmds = graph.collect(TwistStamped, f'{ns}/pilot/cmd', qos.COMMAND, node=self.probe)
        self.statuses = []
        self.probe.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)
        self.reload = self.probe.create_client(Trigger, f'{ns}/pilot/reload')
        self.count = 0
        assert graph.wait_for(lambda: self.frames.get_subscription_count() >= 1, 10)

    def _on_diag(self, msg):
        for status in msg.status:
            if status.name == self.pilot.get_fully_qualified_name():
                self.statuses.append(status)

    def send(self, frame: np.ndarray) -> int:
        """Publishes a frame with a unique stamp; returns the stamp's nanoseconds."""
        self.count += 1
        stamp = Time(sec=100 + self.count, nanosec=1000 * self.count)
        self.frames.publish(array_to_image(frame, stamp))
        return stamp.sec * 10**9 + stamp.nanosec

    def answer(self, key: int, timeout: float = 5.0):
        found = []

        def check():
            found[:] = [m for m in list(self.cmds)
                        if m.header.stamp.sec * 10**9 + m.header.stamp.nanosec == key]
            return bool(found)
        return found[0] if self.graph.wait_for(check, timeout) else None

    def send_until_answered(self, frame, timeout: float = 10.0):
        """Frames until one is answered (the best-effort subscription needs discovery first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.answer(self.send(frame), timeout=0.5)
            if msg is not None:
                return msg
        return None

    def send_until_received(self, frame, timeout: float = 10.0) -> int:
        """Frames until the pilot has taken one in (the subscription is best effort, depth 1);
        returns the stamp of the frame it took."""
        before = self.pilot.frames_received
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            key = self.send(frame)
            if self.graph.wait_for(lambda: self.pilot.frames_received > before, 0.5):
                return key
        raise AssertionError(f'the pilot took no frame in {timeout:g} s')

    def latest_status(self, timeout: float = 3.0):
        start = len(self.statuses)
        self.graph.wait_for(lambda: len(self.statuses) > start, timeout)
        return self.statuses[-1] if self.statuses else None


def frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return [lane_frame(float(rng.uniform(-0.8, 0.8)), rng=rng) for _ in range(count)]


def test_each_frame_gets_the_models_command_stamped_with_the_frames_stamp(graph, models):
    harness = PilotHarness(graph, model_path=models['lane'])
    reference = ModelRunner(models['lane'])     # an independent interpreter in the test
    assert harness.send_until_answered(frames(1)[0]) is not None
    for frame in frames(5, seed=1):
        msg = harness.answer(harness.send(frame))
        assert msg is not None, 'no pilot/cmd for a frame'
        steering, throttle = reference.predict(frame)
        assert msg.twist.angular.z == pytest.approx(np.clip(steering, -1, 1), abs=1e-5)
        assert msg.twist.linear.x == pytest.approx(np.clip(throttle, -1, 1), abs=1e-5)
        time.sleep(0.02)
    status = harness.latest_status()
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.OK and values['model'] == 'lane.tflite'
    assert int(values['commands']) >= 6 and float(values['inference_ms_p50']) > 0


def test_constant_scaled_throttle(graph, models):
    harness = PilotHarness(graph, model_path=models['constant'], throttle_mode='constant',
                           constant_throttle=0.25, throttle_scale=2.0)
    msg = harness.send_until_answered(frames(1)[0])
    assert (msg.twist.angular.z, msg.twist.linear.x) == (pytest.approx(0.5), pytest.approx(0.5))
    graph.nodes[0].set_parameters([Parameter('throttle_mode', value='model')])
    msg = harness.answer(harness.send(frames(1)[0]))
    assert msg.twist.linear.x == pytest.approx(0.4)  # model 0.2 x throttle_scale 2


def test_missing_model_publishes_nothing_until_a_model_is_set(graph, models):
    harness = PilotHarness(graph, model_path=models['missing'])
    unanswered = [harness.send_until_received(frame) for frame in frames(5)]
    # A diagnostics report sent after the pilot took the frames: their callbacks are over.
    status = harness.latest_status()
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['frames_received']) >= len(unanswered)
    assert status.level == DiagnosticStatus.ERROR and 'does not exist' in status.message
    result = harness.pilot.set_parameters([Parameter('model_path', value=models['constant'])])
    assert result[0].successful
    msg = harness.send_until_answered(frames(1)[0])
    assert (msg.twist.angular.z, msg.twist.linear.x) == (pytest.approx(0.5), pytest.approx(0.2))
    # pilot/cmd is reliable and in order: a command for the earlier frames would be here by now.
    answered = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in harness.cmds]
    assert not set(answered) & set(unanswered)
    assert min(answered) > max(unanswered)


def test_a_model_swap_that_fails_is_refused_and_the_working_model_keeps_driving(
        graph, models, tmp_path):
    import shutil

    working = shutil.copy(models['constant'], tmp_path / 'working.tflite')
    harness = PilotHarness(graph, model_path=str(working))
    assert harness.send_until_answered(frames(1)[0]) is not None
    for bad in (models['corrupt'], models['missing']):
        result = harness.pilot.set_parameters([Parameter('model_path', value=bad)])[0]
        assert not result.successful and Path(bad).name in result.reason, result.reason
        assert harness.pilot.get_parameter('model_path').value == str(working)
    # A batch is refused whole: the throttle change that came with the bad model is not applied.
    result = harness.pilot.set_parameters_atomically([
        Parameter('throttle_scale', value=2.0), Parameter('model_path', value=models['corrupt'])])
    assert not result.successful and harness.pilot.params.throttle_scale == 1.0
    msg = harness.answer(harness.send(frames(1)[0]))
    assert (msg.twist.angular.z, msg.twist.linear.x) == (pytest.approx(0.5), pytest.approx(0.2))
    assert harness.latest_status().level == DiagnosticStatus.OK
    # ~/reload re-reads the file: a file broken on disk is refused with the reason.
    Path(working).write_bytes(Path(models['corrupt']).read_bytes())
    assert harness.reload.wait_for_service(timeout_sec=5)
    future = harness.reload.call_async(Trigger.Request())
    assert graph.wait_for(future.done, 5)
    assert not future.result().success and 'working.tflite' in future.result().message
    # Swapping to a good model at run time drives again, without a restart.
    assert harness.pilot.set_parameters(
        [Parameter('model_path', value=models['constant'])])[0].successful
    assert harness.send_until_answered(frames(1)[0]) is not None


def test_wrong_frame_size_is_refused_until_frames_fit(graph, models):
    harness = PilotHarness(graph, model_path=models['lane'])
    big = np.zeros((240, 320, 3), np.uint8)
    for _ in range(10):
        harness.send(big)
        time.sleep(0.05)
    time.sleep(0.3)
    assert harness.cmds == []
    status = harness.latest_status()
    assert status.level == DiagnosticStatus.ERROR and '320x240' in status.message
    assert harness.send_until_answered(frames(1)[0]) is not None
    # With resize_mismatched the big frames are resized instead.
    harness.pilot.set_parameters([Parameter('resize_mismatched', value=True)])
    assert harness.answer(harness.send(big)) is not None


def test_a_burst_of_frames_never_builds_a_backlog(graph, models):
    harness = PilotHarness(graph, model_path=models['lane'])
    assert harness.send_until_answered(frames(1)[0]) is not None
    burst = frames(4)
    harness.cmds.clear()
    keys = [harness.send(burst[i % 4]) for i in range(300)]
    newest = harness.answer(keys[-1], timeout=5.0)
    assert newest is not None, 'the newest frame of the burst was not answered'
    answered = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in harness.cmds]
    assert answered == sorted(answered)                  # in order, never an old frame late
    assert len(answered) < len(keys)                     # frames were skipped, not queued
    values = {kv.key: kv.value for kv in harness.latest_status().values}
    assert int(values['frames_skipped']) > 0


def test_donkeycar_model_steering_is_negated_and_output_order_selectable(graph, models):
    harness = PilotHarness(graph, model_path=models['donkeycar'])
    msg = harness.send_until_answered(np.full((120, 160, 3), 90, np.uint8))
    assert (msg.twist.angular.z, msg.twist.linear.x) == (pytest.approx(-0.25),
                                                         pytest.approx(0.4))
    harness.pilot.set_parameters([Parameter('output_order', value='throttle_steering'),
                                  Parameter('steering_sign', value=1)])
    msg = harness.answer(harness.send(np.full((120, 160, 3), 90, np.uint8)))
    assert (msg.twist.angular.z, msg.twist.linear.x) == (pytest.approx(0.4), pytest.approx(0.25))


def test_mux_goes_neutral_when_the_pilot_falls_silent(graph, models):
    from donkey_ros.control.mux_node import MuxNode

    graph.add(MuxNode, parameter_overrides=[Parameter('mode', value='pilot'),
                                            Parameter('timeout', value=0.3)])
    harness = PilotHarness(graph, model_path=models['constant'])
    out = graph.collect(TwistStamped, f'{graph.namespace}/cmd', qos.COMMAND, node=harness.probe)
    assert harness.send_until_answered(frames(1)[0]) is not None
    assert graph.wait_for(lambda: out and out[-1].twist.angular.z == pytest.approx(0.5), 3)
    # No more frames: the pilot falls silent and the mux times it out.
    assert graph.wait_for(lambda: out[-1].twist.linear.x == 0.0
                          and out[-1].twist.angular.z == 0.0, 3)


def test_shutdown_hook_sends_neutral(graph, models):
    harness = PilotHarness(graph, model_path=models['constant'])
    assert harness.send_until_answered(frames(1)[0]) is not None
    harness.pilot.on_shutdown()
    assert graph.wait_for(lambda: harness.cmds[-1].twist.linear.x == 0.0
                          and harness.cmds[-1].twist.angular.z == 0.0, 3)


def test_pilot_process_with_a_bad_model_keeps_running_and_stops_cleanly(models):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    code = ('import sys; from donkey_ros.learning.pilot_node import main; '
            'assert "tensorflow" not in sys.modules; main()')
    process = subprocess.Popen(
        [sys.executable, '-c', code, '--ros-args', '-p', f'model_path:={models["corrupt"]}',
         '-r', f'__ns:=/pilot_proc{os.getpid()}'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []

    def read():
        for line in process.stdout:
            lines.append(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # Up, and it has said what is wrong with the model: now it must keep running.
        assert wait_for(lambda: any('publishing nothing until a usable model' in line
                                    for line in lines) or process.poll() is not None, 60)
        assert process.poll() is None, ''.join(lines)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
        reader.join(timeout=10)
        output = ''.join(lines)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert 'cannot load corrupt.tflite' in output
    assert 'Traceback' not in output
    assert "'tensorflow'" not in output
