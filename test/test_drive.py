"""The README's main job: `donkey-ros drive` runs the simulator stack and reports laps."""
import os
import re
import subprocess
import sys

import pytest

DONKEY_ROS = os.path.join(os.path.dirname(sys.executable), 'donkey-ros')


@pytest.mark.slow
def test_drive_completes_laps_without_leaving_the_track():
    result = subprocess.run(
        [DONKEY_ROS, 'drive', '--laps', '2', '--time-scale', '4', '--web-port', '0'],
        capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert 'laps completed    : 2' in out
    assert 'off-track events  : 0' in out
    lap_times = [float(t) for t in re.findall(r'lap \d: ([\d.]+) s', out)]
    assert len(lap_times) == 2 and all(15.0 < t < 40.0 for t in lap_times), out
    assert re.search(r'web controller: http://127\.0\.0\.1:\d+/', out), out
    assert 'Traceback' not in result.stderr


def test_drive_rejects_an_unknown_track_in_one_line():
    result = subprocess.run([DONKEY_ROS, 'drive', '--track', 'moon_base', '--no-web'],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 2
    assert "parameter 'track'" in result.stderr + result.stdout
    assert 'Traceback' not in result.stderr


@pytest.mark.slow
def test_shipped_pilot_drives_out_of_the_box():
    """`donkey-ros drive --mode pilot`: sim + mux + the CNN pilot with the shipped model."""
    result = subprocess.run(
        [DONKEY_ROS, 'drive', '--mode', 'pilot', '--laps', '1', '--time-scale', '3', '--no-web',
         '--track', 'waveshare'],
        capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'pilot' in result.stdout.splitlines()[0]
    assert 'laps completed    : 1' in result.stdout
    assert 'off-track events  : 0' in result.stdout, result.stdout
