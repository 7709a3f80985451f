"""kill -9 in the middle of a recording, then `donkey-ros bag repair`: at most ~1 s is lost."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from sensor_msgs.msg import Image

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.image import array_to_image
from test_bag_independent import check_metadata, read_bag


def frame(i: int) -> np.ndarray:
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, :, 0] = i % 256
    image[:, :, 1] = i // 256
    image[:, :, 2] = (np.arange(160)[None, :] + i) % 256
    return image


@pytest.mark.slow
def test_kill_9_mid_recording_then_repair_loses_at_most_the_last_second(graph, tmp_path):
    ns = graph.namespace
    recorder = subprocess.Popen(
        [sys.executable, '-m', 'donkey_ros.recording.recorder_node', '--ros-args',
         '-r', f'__ns:={ns}', '-p', 'autostart:=true', '-p', f'folder:={tmp_path}',
         '-p', 'poll_period:=0.2', '-p', 'topics:=[camera/image_raw, user/cmd]'],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        probe = graph.node('car')
        camera = probe.create_publisher(Image, f'{ns}/camera/image_raw', qos.IMAGE_PUBLISH)
        cmd = probe.create_publisher(TwistStamped, f'{ns}/user/cmd', qos.COMMAND)
        assert graph.wait_for(lambda: camera.get_subscription_count() == 1 and
                              cmd.get_subscription_count() == 1, timeout=20.0)
        time.sleep(0.5)
        # A 20 s recording at 30 Hz, killed after 10 s.
        sent = []                      # (monotonic time, index)
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < 10.0:
            msg = array_to_image(frame(i))
            msg.header.frame_id = str(i)
            camera.publish(msg)
            command = command_to_msg(DriveCommand(steering=(i % 200) / 100 - 1, throttle=0.3))
            command.header.frame_id = str(i)
            cmd.publish(command)
            sent.append((time.monotonic(), i))
            i += 1
            time.sleep(max(0.0, start + i / 30 - time.monotonic()))
        killed_at = time.monotonic()
        os.kill(recorder.pid, signal.SIGKILL)
        recorder.wait(timeout=10)
    finally:
        if recorder.poll() is None:
            recorder.kill()
        output = recorder.stdout.read().decode(errors='replace')
    bags = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(bags) == 1, output
    bag = bags[0]
    assert not (bag / 'metadata.yaml').exists()      # the crash left it incomplete

    repair = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'bag', 'repair', str(bag)],
                            capture_output=True, text=True, timeout=120)
    assert repair.returncode == 0, repair.stderr
    assert 'repaired' in repair.stdout

    check_metadata(bag)
    messages = read_bag(bag, decode=True)
    images = [m[3] for m in messages if m[0] == f'{ns}/camera/image_raw']
    commands = [m[3] for m in messages if m[0] == f'{ns}/user/cmd']
    must_have = {index for t, index in sent if t <= killed_at - 1.0}
    got_images = [int(m.header.frame_id) for m in images]
    got_commands = [int(m.header.frame_id) for m in commands]
    assert must_have <= set(got_images), f'lost {len(must_have - set(got_images))} frames'
    assert must_have <= set(got_commands)
    assert got_images == sorted(got_images) and len(set(got_images)) == len(got_images)
    first = got_images[0]
    assert got_images == list(range(first, first + len(got_images)))   # no gaps
    for msg in images[::37]:                                            # bytes intact
        index = int(msg.header.frame_id)
        assert np.array_equal(np.frombuffer(bytes(msg.data), np.uint8).reshape(120, 160, 3),
                              frame(index))
    lost = len(sent) - len(got_images)
    print(f'\nkill -9 after {len(sent)} frames at 30 Hz: {len(got_images)} recovered, {lost} lost '
          f'({lost / 30:.2f} s); repair: {repair.stdout.splitlines()[1].strip()}')
    assert lost <= 30, f'{lost} frames lost (> 1 s at 30 Hz)'


def test_sigterm_completes_the_bag(graph, tmp_path):
    # A clean stop (SIGTERM from launch, Ctrl-C) writes the index and metadata.yaml itself.
    ns = graph.namespace
    recorder = subprocess.Popen(
        [sys.executable, '-m', 'donkey_ros.recording.recorder_node', '--ros-args',
         '-r', f'__ns:={ns}', '-p', 'autostart:=true', '-p', f'folder:={tmp_path}',
         '-p', 'poll_period:=0.2', '-p', 'topics:=[camera/image_raw]'],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        camera = graph.node('car').create_publisher(Image, f'{ns}/camera/image_raw',
                                                    qos.IMAGE_PUBLISH)
        assert graph.wait_for(lambda: camera.get_subscription_count() == 1, timeout=20.0)
        time.sleep(0.3)
        for i in range(20):
            msg = array_to_image(frame(i))
            msg.header.frame_id = str(i)
            camera.publish(msg)
            time.sleep(0.02)
        time.sleep(0.5)
        recorder.send_signal(signal.SIGTERM)
        assert recorder.wait(timeout=20) == 0
    finally:
        if recorder.poll() is None:
            recorder.kill()
        output = recorder.stdout.read().decode(errors='replace')
    bag = next(p for p in tmp_path.iterdir() if p.is_dir())
    assert 'bag complete' in output and 'Traceback' not in output
    messages = check_metadata(bag)
    assert [int(m.header.frame_id) for m in (x[3] for x in read_bag(bag, decode=True))] == \
        list(range(20))
    assert len(messages) == 20
