"""Garbage files given to the command-line tools give one line naming the file, not a traceback
(issue 13): the real CLIs run in a subprocess."""
import os
import subprocess
import sys
from pathlib import Path

from donkey_ros.recording.synthetic import write_synthetic_bag

ROOT = Path(__file__).resolve().parents[1]
GARBAGE = bytes(range(128, 256)) * 20 + b'\x00\xff\xfe'   # not UTF-8, not YAML


def run(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def cli(*args, timeout=120):
    return run('-m', 'donkey_ros.cli', *args, timeout=timeout)


def assert_one_line(done, path, what):
    assert done.returncode not in (0, None), done.stdout + done.stderr
    assert 'Traceback' not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if str(path) in line]
    assert len(lines) == 1 and what in lines[0], done.stderr
    assert len([line for line in done.stderr.splitlines() if 'error' in line.lower()]) == 1, \
        done.stderr


def test_binary_track_file(tmp_path):
    track = tmp_path / 'track.yaml'
    track.write_bytes(GARBAGE)
    assert_one_line(cli('tracks', '--track', track, '--out', tmp_path / 'pictures'), track,
                    'not a text file')
    assert_one_line(cli('drive', '--track', track, '--no-web', '--laps', '1'), track,
                    'not a text file')
    done = run('-c', 'from donkey_ros.sim.sim_node import main; main()', '--ros-args',
               '-r', '__ns:=/binary_track', '-p', f'track:={track}')
    assert done.returncode == 2
    assert_one_line(done, track, 'not a text file')


def test_bag_repair_rewrites_a_garbage_metadata_file(tmp_path):
    bag = tmp_path / 'bag'
    write_synthetic_bag(bag, frames=20)
    (bag / 'metadata.yaml').write_bytes(GARBAGE)
    info = cli('bag', 'info', bag)
    assert info.returncode == 1 and 'Traceback' not in info.stderr
    assert 'bag repair' in info.stderr and len(info.stderr.strip().splitlines()) == 1
    done = cli('bag', 'repair', bag)
    assert done.returncode == 0 and 'Traceback' not in done.stderr, done.stderr
    assert 'metadata.yaml rewritten' in done.stdout
    assert cli('bag', 'info', bag).returncode == 0
    from donkey_ros.recording.metadata import read_metadata
    from donkey_ros.recording.errors import BagError
    (bag / 'metadata.yaml').write_bytes(GARBAGE)
    try:
        read_metadata(bag)
    except BagError as error:
        assert str(bag / 'metadata.yaml') in str(error) and 'not UTF-8' in str(error)
    else:
        raise AssertionError('garbage metadata read without error')


def test_import_config_onto_a_broken_parameter_file(tmp_path):
    config = tmp_path / 'myconfig.py'
    config.write_text('STEERING_LEFT_PWM = 460\nSTEERING_RIGHT_PWM = 290\n')
    output = tmp_path / 'car.yaml'
    broken = '/**/actuator:\n  ros__parameters: [1, 2\n    units: }\n'
    output.write_text(broken)
    assert_one_line(cli('import-config', config, '-o', output), output, 'not valid YAML')
    assert output.read_text() == broken                        # left as it was


def test_calibrate_with_a_garbage_config(tmp_path):
    config = tmp_path / 'car.yaml'
    config.write_bytes(GARBAGE)
    assert_one_line(cli('calibrate', '--config', config), config, 'not a text file')
