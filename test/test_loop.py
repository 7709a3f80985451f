"""The closed loop in the simulator: record expert laps -> train -> the pilot node drives."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from donkey_ros.apps.record import record_expert

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, timeout=170):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-m', 'donkey_ros.cli', *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def test_expert_recording_is_a_bag_the_dataset_reader_pairs_frame_by_frame(tmp_path):
    from donkey_ros.recording.dataset import open_dataset

    recording = record_expert(tmp_path / 'bag', 'oval', laps=1, speed=1.5)
    assert recording.laps == 1 and recording.off_track == 0
    data = open_dataset([recording.path])
    samples = list(data)
    assert len(samples) == recording.frames == data.counts.used
    images = np.stack([s.image for s in samples[:50]])
    assert images.shape[1:] == (120, 160, 3) and images.std() > 10
    steering = np.array([s.steering for s in samples])
    # The oval turns left only: the expert mostly steers left, and never hard right.
    assert np.mean(steering > 0) > 0.5 and steering.min() > -0.6
    assert all(s.mode == 'user' for s in samples[:10])
    # The simulator's ground truth (sim/status) is recorded too, so off-road frames can be dropped.
    truth = [s.truth for s in samples[100:110]]
    assert all(t is not None and t['on_track'] for t in truth)


def test_loop_rejects_an_unknown_track_before_doing_any_work(tmp_path):
    result = run_cli('loop', '--track', 'moon_base', '--workdir', str(tmp_path), timeout=60)
    assert result.returncode == 1
    assert 'moon_base' in result.stderr and 'Traceback' not in result.stderr
    assert not (tmp_path / 'bags').exists()


@pytest.mark.slow
def test_recorded_laps_train_a_pilot_that_drives_two_clean_laps_through_the_nodes(tmp_path):
    """Acceptance: 4 expert laps recorded, a small model trained for a few epochs, then the real
    sim, pilot and mux nodes (rclpy, 2x real time) drive 2 laps with no off-track event."""
    result = run_cli('loop', '--track', 'oval', '--record-laps', '4', '--drive-laps', '2',
                     '--epochs', '8', '--patience', '3', '--via', 'ros', '--time-scale', '2',
                     '--workdir', str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / 'loop.json').read_text())
    assert summary['record']['laps'] == 4
    assert summary['train']['epochs'] <= 8
    drive = summary['drive'][0]
    assert drive['track'] == 'oval' and drive['seen_in_training']
    assert drive['laps'] >= 2, result.stdout[-2000:]
    assert drive['off_track'] == 0, result.stdout[-2000:]
    assert drive['mean_abs_cte'] < 0.25
    assert all(10.0 < t < 40.0 for t in drive['lap_times'])
    picture = tmp_path / 'drive_pilot_oval.png'
    assert picture.read_bytes()[:4] == b'\x89PNG'
    model = json.loads((tmp_path / 'pilot.json').read_text())
    assert model['command'].startswith('donkey-ros loop --track oval')
    assert 'Traceback' not in result.stderr
