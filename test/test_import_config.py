"""`donkey-ros import-config`: DonkeyCar config.py + myconfig.py -> a parameter file the nodes take.

The files are read as data (never executed); every value written is checked against the nodes'
own PARAMS tables; the file is parsed back by rclpy's parameter-file parser and fed to a real
actuator node.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from donkey_ros.donkeycar.config import DonkeyCarConfigError, read_config
from donkey_ros.donkeycar.config_import import (ConfigImportError, import_config, map_config,
                                                node_tables, validate)

ROOT = Path(__file__).resolve().parents[1]

# The parts of DonkeyCar's cfg_complete.py (DonkeyCar 5) that matter here, as it writes them:
# computed values, comments, dicts.
CONFIG_PY = '''"""
CAR CONFIG
"""
import os

#PATHS
CAR_PATH = PACKAGE_PATH = os.path.dirname(os.path.realpath(__file__))
DATA_PATH = os.path.join(CAR_PATH, 'data')

#CAMERA
CAMERA_TYPE = "PICAM"   # (PICAM|WEBCAM|CVCAM|CSIC|V4L|D435|MOCK|IMAGE_LIST)
IMAGE_W = 160
IMAGE_H = 120
IMAGE_DEPTH = 3
CAMERA_FRAMERATE = 20
CAMERA_VFLIP = False
CAMERA_HFLIP = False
CAMERA_INDEX = 0

PCA9685_I2C_ADDR = 0x40
PCA9685_I2C_BUSNUM = None

JOYSTICK_MAX_THROTTLE = 0.5
JOYSTICK_STEERING_SCALE = 1.0
JOYSTICK_DEADZONE = 0.01
JOYSTICK_THROTTLE_DIR = -1.0
JOYSTICK_DEVICE_FILE = "/dev/input/js0"
CONTROLLER_TYPE = 'xbox'

DRIVE_TRAIN_TYPE = "PWM_STEERING_THROTTLE"
PWM_STEERING_THROTTLE = {
    "PWM_STEERING_PIN": "PCA9685.1:40.1",   # PCA9685, I2C bus 1, address 0x40, channel 1
    "PWM_STEERING_SCALE": 1.0,
    "PWM_STEERING_INVERTED": False,
    "PWM_THROTTLE_PIN": "PCA9685.1:40.0",
    "PWM_THROTTLE_SCALE": 1.0,
    "PWM_THROTTLE_INVERTED": False,
    "STEERING_LEFT_PWM": 460,
    "STEERING_RIGHT_PWM": 290,
    "THROTTLE_FORWARD_PWM": 500,
    "THROTTLE_STOPPED_PWM": 370,
    "THROTTLE_REVERSE_PWM": 220,
}
MODEL_CATEGORICAL_MAX_THROTTLE_RANGE = 0.8
TRANSFORMATIONS = []
ROI_CROP_TOP = 45
ROI_CROP_BOTTOM = 0
DRIVE_LOOP_HZ = 20
AI_THROTTLE_MULT = 1.0
WEB_CONTROL_PORT = int(os.getenv("WEB_CONTROL_PORT", 8887))
'''

MYCONFIG_PY = '''# My car's changes (the rest stays commented, as `donkey createcar` writes it)
# STEERING_LEFT_PWM = 460
PWM_STEERING_THROTTLE = {
    "PWM_STEERING_PIN": "PCA9685.1:41.3",
    "PWM_STEERING_SCALE": 1.0,
    "PWM_STEERING_INVERTED": False,
    "PWM_THROTTLE_PIN": "PCA9685.1:41.2",
    "PWM_THROTTLE_SCALE": 1.0,
    "PWM_THROTTLE_INVERTED": False,
    "STEERING_LEFT_PWM": 470,
    "STEERING_RIGHT_PWM": 305,
    "THROTTLE_FORWARD_PWM": 480,
    "THROTTLE_STOPPED_PWM": 375,
    "THROTTLE_REVERSE_PWM": 250,
}
PWM_STEERING_THROTTLE["STEERING_LEFT_PWM"] = 475
IMAGE_W = 224
IMAGE_H = 168
DRIVE_LOOP_HZ = 30
CAMERA_VFLIP = True
CAMERA_HFLIP = True
TRANSFORMATIONS = ['CROP']
ROI_CROP_TOP = 40
AI_THROTTLE_MULT = 0.8
JOYSTICK_MAX_THROTTLE = 0.4
JOYSTICK_DEADZONE = 0.05
CONTROLLER_TYPE = 'F710'
'''


@pytest.fixture
def car(tmp_path):
    folder = tmp_path / 'mycar'
    folder.mkdir()
    (folder / 'config.py').write_text(CONFIG_PY)
    (folder / 'myconfig.py').write_text(MYCONFIG_PY)
    return folder


def test_donkeycar_5_car_becomes_a_parameter_file_the_nodes_take(car, tmp_path, graph):
    output = tmp_path / 'car.yaml'
    imported, changes, backup = import_config(car / 'myconfig.py', output,
                                              model=str(car / 'models' / 'pilot.tflite'))
    assert backup is None and len(changes) == imported.count()
    document = yaml.safe_load(output.read_text())
    actuator = document['/**/actuator']['ros__parameters']
    assert actuator == {
        'steering_left_pwm': 475, 'steering_right_pwm': 305, 'throttle_forward_pwm': 480,
        'throttle_stopped_pwm': 375, 'throttle_reverse_pwm': 250, 'units': 'ticks',
        'ticks_frequency': 60, 'steering_channel': 3, 'i2c_bus': 1, 'i2c_address': 0x41,
        'throttle_channel': 2}
    camera = document['/**/camera']['ros__parameters']
    assert camera == {'backend': 'picamera2', 'width': 224, 'height': 168, 'fps': 30.0,
                      'flip_vertical': True, 'flip_horizontal': True, 'crop_top': 40}
    assert document['/**/pilot']['ros__parameters'] == {
        'model_path': str(car / 'models' / 'pilot.tflite'), 'throttle_scale': 0.8,
        'throttle_range': 0.8}
    assert document['/**/joy_teleop']['ros__parameters'] == {
        'throttle_scale': 0.4, 'steering_scale': 1.0, 'deadzone': 0.05,
        'throttle_inverted': False, 'pad': 'xbox'}
    text = output.read_text()
    assert '# DonkeyCar PWM_STEERING_THROTTLE["STEERING_LEFT_PWM"]' in text
    assert 'CAMERA_FRAMERATE = 20 differs from DRIVE_LOOP_HZ = 30' in text   # a note, kept

    # rcl's own parser reads it (as `--params-file` / launch do) into a real actuator node.
    from rclpy.parameter import Parameter

    from donkey_ros.actuation.actuator_node import ActuatorNode
    node = graph.add(ActuatorNode, cli_args=['--ros-args', '--params-file', str(output)],
                     parameter_overrides=[Parameter('backend', value='emulated'),
                                          Parameter('emulated_board_address', value=0x41)])
    for name, value in actuator.items():
        assert node.get_parameter(name).value == value
    # The board on the throttle channel gets the stopped pulse DonkeyCar wrote: 375 ticks.
    board = node.output.board
    assert graph.wait_for(lambda: 2 in board.outputs())
    assert board.outputs()[2].ticks == 375


def test_older_names_and_pwm_scales(tmp_path):
    servo_esc = tmp_path / 'old.py'
    servo_esc.write_text('DRIVE_TRAIN_TYPE = "SERVO_ESC"\nSTEERING_CHANNEL = 1\n'
                         'STEERING_LEFT_PWM = 420\nSTEERING_RIGHT_PWM = 360\n'
                         'THROTTLE_CHANNEL = 0\nTHROTTLE_FORWARD_PWM = 400\n'
                         'THROTTLE_STOPPED_PWM = 370\nTHROTTLE_REVERSE_PWM = 310\n'
                         'PCA9685_I2C_ADDR = 0x40\nPCA9685_I2C_BUSNUM = None\n'
                         'PWM_STEERING_THROTTLE = {"STEERING_LEFT_PWM": 999}\n')
    imported = validate(map_config(read_config(servo_esc)))
    assert imported.params['actuator'] == {
        'steering_left_pwm': 420, 'steering_right_pwm': 360, 'throttle_forward_pwm': 400,
        'throttle_stopped_pwm': 370, 'throttle_reverse_pwm': 310, 'units': 'ticks',
        'ticks_frequency': 60, 'steering_channel': 1, 'throttle_channel': 0, 'i2c_address': 64}
    assert any('PCA9685_I2C_BUSNUM = None' in note for note in imported.notes)

    def table(steering_scale, throttle_scale):
        path = tmp_path / f'scaled_{steering_scale}_{throttle_scale}.py'
        path.write_text(f'PWM_STEERING_THROTTLE = {{"PWM_STEERING_SCALE": {steering_scale}, '
                        f'"PWM_THROTTLE_SCALE": {throttle_scale}, "STEERING_LEFT_PWM": 460, '
                        '"THROTTLE_STOPPED_PWM": 370}\n')
        return validate(map_config(read_config(path))).params['actuator']

    # One scale: the values stay ticks, at 60 Hz / scale (DonkeyCar writes ticks x scale at 60).
    assert table(0.5, 0.5) == {'steering_left_pwm': 460, 'throttle_stopped_pwm': 370,
                               'units': 'ticks', 'ticks_frequency': 120}
    # Two scales: pulse widths in microseconds, DonkeyCar's arithmetic.
    assert table(1.0, 1.2) == {'steering_left_pwm': round(460 * 1e6 / 4096 / 60),
                               'throttle_stopped_pwm': round(370 * 1.2 * 1e6 / 4096 / 60),
                               'units': 'us'}


def test_config_files_are_never_executed(tmp_path):
    marker = tmp_path / 'executed'
    evil = tmp_path / 'myconfig.py'
    evil.write_text(f'import os\nos.system("touch {marker}")\nopen("{marker}", "w")\n'
                    f'STEERING_LEFT_PWM = __import__("os").system("touch {marker}")\n'
                    'STEERING_RIGHT_PWM = 300\nIMAGE_W = 160 * 2\nIMAGE_H = 120\n'
                    'if True:\n    IMAGE_H = 240\n')
    config = read_config(evil, base=False)
    assert not marker.exists()
    assert config.values == {'STEERING_RIGHT_PWM': 300}
    assert set(config.skipped) == {'STEERING_LEFT_PWM', 'IMAGE_W', 'IMAGE_H'}


def test_bad_configs_are_named(tmp_path):
    broken = tmp_path / 'myconfig.py'
    broken.write_text('IMAGE_W = 160\nIMAGE_H = (120\n')
    with pytest.raises(DonkeyCarConfigError, match='line 2'):
        read_config(broken)
    with pytest.raises(DonkeyCarConfigError, match='does not exist'):
        read_config(tmp_path / 'missing.py')
    wrong = tmp_path / 'wrong.py'
    wrong.write_text('STEERING_LEFT_PWM = 5000\nIMAGE_W = "wide"\n')
    with pytest.raises(ConfigImportError, match='STEERING_LEFT_PWM.*out of range.*IMAGE_W'):
        import_config(wrong, tmp_path / 'car.yaml', base=False)
    assert not (tmp_path / 'car.yaml').exists()
    other = tmp_path / 'dc.py'
    other.write_text('DRIVE_TRAIN_TYPE = "DC_TWO_WHEEL"\nIMAGE_W = 160\n'
                     'PWM_STEERING_THROTTLE = {"PWM_STEERING_PIN": "RPI_GPIO.BOARD.33"}\n')
    imported = validate(map_config(read_config(other)))
    assert 'actuator' not in imported.params
    assert any('DC_TWO_WHEEL' in note for note in imported.notes)
    gpio = tmp_path / 'gpio.py'
    gpio.write_text('PWM_STEERING_THROTTLE = {"PWM_STEERING_PIN": "RPI_GPIO.BOARD.33", '
                    '"PWM_STEERING_INVERTED": True, "STEERING_LEFT_PWM": 460}\n')
    imported = validate(map_config(read_config(gpio)))
    assert any('not a PCA9685 pin' in note for note in imported.notes)
    assert any('PWM_STEERING_INVERTED' in note for note in imported.notes)


def test_every_parameter_written_is_declared_by_its_node(car):
    # A config touching every mapping; validate() raises if a node renamed or dropped one of
    # the parameters, or narrowed its range below DonkeyCar's values.
    (car / 'myconfig.py').write_text(MYCONFIG_PY + 'ROI_CROP_BOTTOM = 5\nROI_CROP_LEFT = 2\n'
                                     'ROI_CROP_RIGHT = 3\nCAMERA_TYPE = "WEBCAM"\n'
                                     'CAMERA_INDEX = 2\nJOYSTICK_THROTTLE_DIR = 1.0\n')
    imported = validate(map_config(read_config(car / 'myconfig.py'), model='x.tflite'))
    tables = node_tables()
    written = {(section, name) for section, values in imported.params.items() for name in values}
    assert len(written) == 11 + 11 + 3 + 5   # actuator, camera, pilot, joy_teleop
    for section, name in written:
        assert name in tables[section][1]
    assert imported.params['camera']['device'] == '2'
    assert imported.params['joy_teleop']['throttle_inverted'] is True


def test_existing_file_is_updated_in_place(car, tmp_path):
    output = tmp_path / 'config' / 'car.yaml'
    output.parent.mkdir()
    shutil.copy(ROOT / 'config' / 'car.yaml', output)
    original = output.read_text()
    imported, changes, backup = import_config(car / 'myconfig.py', output)
    assert backup.read_text() == original
    text = output.read_text()
    # Settings and comments DonkeyCar has no equivalent for stay as they were.
    before = yaml.safe_load(original)
    after = yaml.safe_load(text)
    for section, values in before.items():
        for name, value in values['ros__parameters'].items():
            node = section.split('/')[-1]
            section_name = {'actuator': 'actuator', 'camera': 'camera',
                            'joy_teleop': 'joy_teleop'}.get(node)
            if section_name and name in imported.params.get(section_name, {}):
                assert after[section]['ros__parameters'][name] == \
                    imported.params[section_name][name]
            else:
                assert after[section]['ros__parameters'][name] == value, (section, name)
    kept = [line for line in original.splitlines() if line.lstrip().startswith('#')]
    assert all(line in text for line in kept)
    assert {c.name for c in changes} >= {'steering_left_pwm', 'i2c_address', 'width'}
    # Importing again changes nothing.
    _, again, backup = import_config(car / 'myconfig.py', output)
    assert again == [] and backup is None and output.read_text() == text


def test_command_line(car, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    output = tmp_path / 'car.yaml'
    done = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'import-config',
                           str(car / 'myconfig.py'), '-o', str(output)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'actuator.steering_left_pwm: new -> 475' in done.stdout
    assert f'config:={output}' in done.stdout and output.is_file()
    failed = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'import-config',
                             str(tmp_path / 'nope.py'), '-o', str(output)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode == 1 and 'does not exist' in failed.stderr
    assert 'Traceback' not in failed.stderr


def test_parameter_file_update_keeps_layout_and_refuses_what_it_cannot_edit():
    from donkey_ros.common.param_file import ParamFileError, update_text

    text = ('# my car\n/**/camera:\n  ros__parameters:\n    width: 160   # px\n'
            '    device: "0"\n\nrecorder:\n  ros__parameters:\n    folder: data\n')
    new, changes = update_text(text, {'camera': {'width': 224, 'fps': 30.0, 'device': '0'},
                                      'pilot': {'throttle_scale': 0.8}},
                               {('camera', 'width'): 'DonkeyCar IMAGE_W'})
    assert new.splitlines()[:5] == ['# my car', '/**/camera:', '  ros__parameters:',
                                    '    width: 224   # DonkeyCar IMAGE_W', '    device: "0"']
    assert '    fps: 30.0' in new.splitlines()[5] and 'recorder:' in new
    assert yaml.safe_load(new)['recorder'] == {'ros__parameters': {'folder': 'data'}}
    assert [(c.node, c.name, c.old, c.new) for c in changes] == [
        ('camera', 'width', 160, 224), ('camera', 'fps', None, 30.0),
        ('pilot', 'throttle_scale', None, 0.8)]
    with pytest.raises(ParamFileError, match='flow style'):
        update_text('camera:\n  ros__parameters: {width: 160}\n', {'camera': {'width': 224}})
