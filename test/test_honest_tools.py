"""The offline tools say what they did: `bag info` counts frames as training does, failed imports
leave nothing and say why, import-config names what it could not read, evaluate writes the file
it prints, and out-of-range options are refused with one line (issue 13)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from donkey_ros.recording.dataset import DatasetError, open_dataset
from donkey_ros.recording.errors import BagError
from donkey_ros.recording.synthetic import write_synthetic_bag

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=180):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, '-m', 'donkey_ros.cli', *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def one_error_line(done, *names):
    """Exit status non-zero, exactly one error line (naming ``names``), no traceback."""
    assert done.returncode != 0, done.stdout
    assert 'Traceback' not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if 'error' in line.lower()]
    assert len(errors) == 1, done.stderr
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


def test_bag_info_counts_usable_frames_with_the_dataset_rules(tmp_path, capsys):
    from donkey_ros import cli
    bad = {3: '16UC1', 7: 'step', 11: 'empty', 12: 'empty'}
    write_synthetic_bag(tmp_path / 'bag', frames=20, bad_frames=bad)
    data = open_dataset(tmp_path / 'bag')
    used = len(list(data))
    assert data.counts.bad_image == len(bad) and used == 20 - 1 - len(bad)  # frame 0: no cmd
    assert cli.main(['bag', 'info', str(tmp_path / 'bag')]) == 0
    out = capsys.readouterr().out
    assert f'training:  {used} of 20 frames usable' in out
    assert f'bad image {len(bad)}' in out


def test_clean_refuses_a_range_past_the_end_and_misspelled_exclusions(tmp_path):
    bag = tmp_path / 'bag'
    write_synthetic_bag(bag, frames=60)        # 3 s
    line = one_error_line(run_cli('clean', bag, '--drop', '100:200', '--no-sheet'), bag)
    assert '3.0 s long' in line and not (bag / 'exclusions.yaml').exists()
    done = run_cli('clean', bag, '--drop', '2:200', '--no-sheet', '--no-auto')
    assert done.returncode == 0, done.stderr
    written = yaml.safe_load((bag / 'exclusions.yaml').read_text())['exclude']
    assert len(written) == 1 and written[0]['start_s'] == 2.0
    assert 2.9 < written[0]['end_s'] < 3.0                  # clamped to the bag's last message
    text = (bag / 'exclusions.yaml').read_text()
    (bag / 'exclusions.yaml').write_text(text.replace('end_ns:', 'edn_ns:'))
    with pytest.raises(DatasetError, match="unknown key 'edn_ns'"):
        list(open_dataset(bag))
    one_error_line(run_cli('bag', 'info', bag), 'exclusions.yaml', 'edn_ns')
    (bag / 'exclusions.yaml').write_text(text.replace('exclude:', 'exlcude:'))
    one_error_line(run_cli('clean', bag, '--no-sheet'), 'exclusions.yaml', 'exlcude')


def test_import_tub_with_every_image_missing_leaves_no_bag(tmp_path):
    from test_import_tub import write_donkeycar_tub
    tub = write_donkeycar_tub(tmp_path / 'tub', 5)
    for image in (tub / 'images').iterdir():
        image.unlink()
    line = one_error_line(run_cli('import-tub', tub, tmp_path / 'bag'), 'no frames imported')
    assert 'missing' in line and str(tmp_path / 'bag') in line
    assert not (tmp_path / 'bag').exists()


UNREADABLE = '''import os
STEERING_LEFT_PWM = int(os.getenv("LEFT", 460))
STEERING_RIGHT_PWM = 250 + 10
THROTTLE_FORWARD_PWM = 400
if os.getenv("FAST"):
    THROTTLE_FORWARD_PWM = 420
THROTTLE_STOPPED_PWM = 370
WEB_CONTROL_PORT = int(os.getenv("WEB_CONTROL_PORT", 8887))
'''


def test_import_config_names_every_setting_it_could_not_read(tmp_path):
    config = tmp_path / 'myconfig.py'
    config.write_text(UNREADABLE)
    output = tmp_path / 'car.yaml'
    line = one_error_line(run_cli('import-config', config, '-o', output),
                          'myconfig.py line 2: STEERING_LEFT_PWM',
                          'myconfig.py line 3: STEERING_RIGHT_PWM',
                          'myconfig.py line 6: THROTTLE_FORWARD_PWM', '--allow-partial')
    assert 'WEB_CONTROL_PORT' not in line           # not a setting the import reads
    assert not output.exists()
    done = run_cli('import-config', config, '-o', output, '--allow-partial')
    assert done.returncode == 0, done.stderr
    listed = [line for line in done.stdout.splitlines() if 'NOT IMPORTED' in line]
    assert len(listed) == 3 and 'inside an if' in listed[2]
    params = yaml.safe_load(output.read_text())['/**/actuator']['ros__parameters']
    assert params['throttle_stopped_pwm'] == 370 and 'steering_left_pwm' not in params
    assert 'STEERING_RIGHT_PWM = 250 + 10' in output.read_text()   # in the file's header


def test_evaluate_plot_writes_the_file_it_names(tmp_path):
    folder = tmp_path / 'adir'
    folder.mkdir()
    write_synthetic_bag(tmp_path / 'bag', frames=30)
    model = ROOT / 'donkey_ros' / 'models' / 'default_pilot.tflite'
    done = run_cli('evaluate', model, tmp_path / 'bag', '--plot', folder)
    assert done.returncode == 0, done.stderr
    written = folder / 'default_pilot.evaluate.png'
    assert f'wrote {written}' in done.stdout and written.stat().st_size > 0
    assert not Path(str(folder) + '.png').exists()
    from donkey_ros.learning.evaluate import EvaluateError, plot_path
    assert plot_path(str(folder), 'm/pilot.tflite') == folder / 'pilot.evaluate.png'
    assert plot_path(str(tmp_path / 'plot'), 'x') == tmp_path / 'plot.png'
    with pytest.raises(EvaluateError, match='does not exist'):
        plot_path(str(tmp_path / 'nope' / 'p.png'), 'x')
    with pytest.raises(EvaluateError, match="'.txt' is not a picture"):
        plot_path(str(tmp_path / 'p.txt'), 'x')
    one_error_line(run_cli('evaluate', model, tmp_path / 'bag', '--plot', tmp_path / 'p.txt'),
                   'p.txt', 'not a picture format')


def test_drive_refuses_negative_laps():
    done = run_cli('drive', '--laps', '-1', '--no-web', timeout=60)
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert 'argument --laps: -1 is negative' in done.stderr.splitlines()[-1]
    done = run_cli('drive', '--duration', 'nan', '--no-web', timeout=60)
    assert done.returncode == 2 and 'argument --duration' in done.stderr.splitlines()[-1]
