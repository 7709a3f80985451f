"""The recorder on real full and read-only disks (small tmpfs mounts): honest status, a record
service that refuses with the reason, a clean stop and a readable bag.

Needs permission to mount (root, as in the project's containers and CI); skipped otherwise.
"""
import contextlib
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import Image

from donkey_ros.common import qos
from donkey_ros.common.image import array_to_image
from donkey_ros.recording.recorder import Recorder, RecorderConfig, bytes_on_disk
from donkey_ros.recording.recorder_node import RecorderNode
from test_bag_independent import check_metadata, read_bag
from test_recorder import call, params


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A tmpfs of ``size`` mounted at ``path`` (unmounted at the end, whatever happens)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f'size={size}' + (',ro' if read_only else '')
    result = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs', str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f'cannot mount a tmpfs here ({result.stderr.strip() or result.returncode}): '
                    'the full-disk tests need mount permission')
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False)




class Car:
    """A recorder node on ``folder`` and a camera publishing numbered 160x120 frames (57.6 kB)."""

    def __init__(self, graph, folder: Path, **values):
        from diagnostic_msgs.msg import DiagnosticArray
        from donkey_ros_interfaces.msg import RecorderStatus
        self.graph, ns = graph, graph.namespace
        self.node = graph.add(RecorderNode, parameter_overrides=params(
            folder=str(folder), poll_period=0.1, status_rate=20.0, flush_period=0.1,
            topics=['camera/image_raw'], **values))
        self.status = graph.collect(RecorderStatus, f'{ns}/recorder/status')
        self.diagnostics = graph.collect(DiagnosticArray, '/diagnostics')
        self.camera = graph.node('camera').create_publisher(Image, f'{ns}/camera/image_raw',
                                                            qos.IMAGE_PUBLISH)
        self.sent = 0
        assert graph.wait_for(lambda: self.camera.get_subscription_count() == 1, timeout=5.0)

    def record(self, on: bool):
        return call(self.graph, f'{self.graph.namespace}/recorder/record', on)

    def publish_until(self, predicate, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        rng = np.random.default_rng(self.sent)
        while time.monotonic() < deadline:
            frame = rng.integers(0, 255, (120, 160, 3), np.uint8)  # incompressible
            frame[0, 0, 0], frame[0, 0, 1] = self.sent % 256, self.sent // 256
            self.camera.publish(array_to_image(frame))
            self.sent += 1
            time.sleep(0.01)
            if predicate():
                return True
        return False

    def diagnosed(self, level: int, text: str) -> bool:
        return any(s.level == level and text in s.message for a in self.diagnostics
                   for s in a.status if s.name.endswith('/recorder'))


def frame_numbers(bag: Path) -> list[int]:
    return [int(m[3].data[0]) + 256 * int(m[3].data[1])
            for m in read_bag(bag, decode=True) if m[0].endswith('image_raw')]


def test_low_disk_warns_then_the_recording_stops_cleanly_before_the_disk_is_full(graph, tmp_path):
    from diagnostic_msgs.msg import DiagnosticStatus as D
    with tmpfs(tmp_path / 'disk', '6m') as disk:
        car = Car(graph, disk, warn_free_mb=4.0, min_free_mb=1.5)
        response = car.record(True)
        assert response.success, response.message
        # Fill until the warning, then hold still: it is a warning, the recording goes on.
        assert car.publish_until(lambda: car.node.recorder.low_disk), 'no low-disk warning'
        assert graph.wait_for(lambda: car.diagnosed(D.WARN, 'low disk space'), timeout=3.0)
        assert car.status[-1].recording and car.status[-1].error == ''
        # Fill on: below min_free_mb the recorder stops and completes the bag.
        assert car.publish_until(lambda: not car.node.recorder.recording), 'never stopped'
        assert graph.wait_for(lambda: not car.status[-1].recording
                              and 'disk almost full' in car.status[-1].error, timeout=3.0)
        status = car.status[-1]
        assert 'complete' in status.error and 'incomplete' not in status.error, status.error
        assert status.write_errors == 0 and 0 < status.free_bytes < 1.5 * 2**20
        assert graph.wait_for(lambda: car.diagnosed(D.ERROR, 'disk almost full'), timeout=3.0)
        bag = car.node.recorder.bags[-1]
        assert status.bytes == bytes_on_disk(bag)
        # What was written is a complete bag an independent reader agrees with.
        messages = check_metadata(bag)
        assert len(messages) == status.messages > 20
        numbers = frame_numbers(bag)
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        # Asked again, the service refuses with the reason.
        response = car.record(True)
        assert not response.success
        assert 'disk almost full' in response.message and 'min_free_mb' in response.message
        assert not car.node.recorder.recording


def test_disk_full_stops_the_recording_and_says_so(graph, tmp_path):
    """No reserve (min_free_mb 0): the disk really fills; writes fail with ENOSPC."""
    from diagnostic_msgs.msg import DiagnosticStatus as D

    from donkey_ros.recording.repair import repair_bag
    with tmpfs(tmp_path / 'disk', '3m') as disk:
        car = Car(graph, disk, warn_free_mb=0.0, min_free_mb=0.0)
        assert car.record(True).success
        assert car.publish_until(lambda: car.node.recorder.error), 'the disk never filled'
        assert graph.wait_for(lambda: car.status[-1].error and not car.status[-1].recording,
                              timeout=3.0)
        status = car.status[-1]
        assert 'No space left on device' in status.error, status.error
        assert status.write_errors >= 1 and status.dropped >= status.write_errors
        bag = car.node.recorder.bags[-1]
        assert status.bytes == bytes_on_disk(bag) > 0
        assert graph.wait_for(lambda: car.diagnosed(D.ERROR, 'No space left'), timeout=3.0)
        response = car.record(True)
        assert not response.success and 'No space left on device' in response.message
        car.node.recorder.close()
        # Room again (the disk grows): what was flushed before the failure is there to read.
        subprocess.run(['mount', '-o', 'remount,size=16m', str(disk)], check=True)
        if 'incomplete' in status.error:
            assert f'donkey-ros bag repair {bag}' in status.error
            repair_bag(bag)
        numbers = frame_numbers(bag)
        assert len(numbers) >= status.messages > 10  # at least every message it counted
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
        assert len(check_metadata(bag)) == len(numbers)


def test_read_only_folder_is_refused_with_the_reason(graph, tmp_path):
    with tmpfs(tmp_path / 'ro', '1m', read_only=True) as disk:
        car = Car(graph, disk / 'bags')
        response = car.record(True)
        assert not response.success
        assert 'Read-only file system' in response.message, response.message
        assert graph.wait_for(lambda: car.status and 'Read-only' in car.status[-1].error)
        assert not car.status[-1].recording


def test_low_disk_warning_is_logged_once(tmp_path):
    with tmpfs(tmp_path / 'disk', '2m') as disk:
        warnings = []
        recorder = Recorder(RecorderConfig(folder=disk, flush_period=0.05,
                                           warn_free_bytes=8 * 2**20),
                            log_info=lambda _: None, log_warning=warnings.append)
        try:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and not recorder.low_disk:
                time.sleep(0.05)
            time.sleep(0.3)  # several more flush periods, still low
            assert recorder.low_disk and len(warnings) == 1, warnings
            assert 'low disk space' in warnings[0] and str(disk) in warnings[0]
        finally:
            recorder.close()
    assert os.path.ismount(str(tmp_path / 'disk')) is False
