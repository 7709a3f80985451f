"""`donkey-ros doctor`: each check against what this machine really has, and the whole command.

This machine has no I2C bus and no camera: those checks must fail with their fix. Where a real
component can stand in here it does: the emulated PCA9685 under the real Adafruit driver stack,
a folder of images as the camera, a DonkeyCar-format model under LiteRT, real rclpy nodes.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from donkey_ros.doctor import checks
from donkey_ros.doctor.checks import FAIL, PASS, SKIP, WARN
from donkey_ros.doctor.doctor import check_config, load_car_config, run_checks

ROOT = Path(__file__).resolve().parents[1]
CAMERA = {'backend': 'opencv', 'device': '/dev/video99', 'path': '', 'width': 160,
          'height': 120, 'fps': 20.0}


def test_clock():
    day = 86400.0
    reference = (time.time() - 30 * day, 'the newest package file')
    old = checks.check_clock(now=0.0, reference=reference, synchronized=lambda: None)
    assert old.status == FAIL and '1970' in old.message and 'timedatectl set-ntp' in old.fix
    behind = checks.check_clock(now=reference[0] - 10 * day, reference=reference,
                                synchronized=lambda: None)
    assert behind.status == FAIL and 'earlier than the newest package file' in behind.message
    fine = checks.check_clock(now=time.time(), reference=reference, synchronized=lambda: None)
    assert fine.status == PASS
    drifting = checks.check_clock(now=time.time(), reference=reference,
                                  synchronized=lambda: False)
    assert drifting.status == WARN and 'NTP' in drifting.message
    # This machine, with the real reference (this package's files) and timedatectl.
    assert checks.check_clock().status in (PASS, WARN)


def test_i2c_bus(tmp_path):
    real = checks.check_i2c(1)
    if not Path('/dev/i2c-1').exists():         # this machine: no I2C
        assert real.status == FAIL and 'raspi-config' in real.fix
    dev = tmp_path / 'dev'
    dev.mkdir()
    missing = checks.check_i2c(1, dev)
    assert missing.status == FAIL and 'no I2C bus at all' in missing.message
    (dev / 'i2c-20').touch()
    elsewhere = checks.check_i2c(1, dev)
    assert 'found i2c-20' in elsewhere.message and 'i2c_bus' in elsewhere.fix
    (dev / 'i2c-1').touch()
    assert checks.check_i2c(1, dev).status == PASS
    if os.geteuid() != 0:                        # root may open anything
        (dev / 'i2c-1').chmod(0)
        denied = checks.check_i2c(1, dev)
        assert denied.status == FAIL and 'adduser' in denied.fix


def test_pca9685_through_the_real_driver_stack():
    from donkey_ros.actuation.backends import Pca9685Output
    from donkey_ros.actuation.emulated_pca9685 import EmulatedI2C, EmulatedPCA9685

    board = EmulatedPCA9685()
    bus = EmulatedI2C({0x40: board})
    asleep = checks.check_pca9685(1, 0x40, open_bus=lambda number: bus)
    assert asleep.status == PASS and 'asleep' in asleep.message
    Pca9685Output(bus, 0x40, 60)               # what the actuator does at start-up
    running = checks.check_pca9685(1, 0x40, open_bus=lambda number: bus)
    assert running.status == PASS and 'running, PWM 59.' in running.message
    wrong = checks.check_pca9685(1, 0x41, open_bus=lambda number: bus)
    assert wrong.status == FAIL and 'found 0x40' in wrong.message and 'i2cdetect' in wrong.fix
    board.connected = False                    # cable pulled
    gone = checks.check_pca9685(1, 0x40, open_bus=lambda number: bus)
    assert gone.status == FAIL and 'found nothing' in gone.message
    # The real bus of this machine (none): the actuator's own error, one line.
    real = checks.check_pca9685(1, 0x40)
    if not Path('/dev/i2c-1').exists():
        assert real.status == FAIL and 'i2c-1' in real.message
    assert checks.check_pca9685(1, 0x40, backend='dry_run').status == SKIP


def test_camera(tmp_path):
    missing = checks.check_camera(CAMERA)
    assert missing.status == FAIL and '/dev/video99' in missing.message
    assert 'v4l2-ctl' in missing.fix
    assert checks.check_camera(CAMERA, in_use=True).status == SKIP
    frames = tmp_path / 'frames'
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((240, 320, 3), i * 50, np.uint8)).save(frames / f'{i}.png')
    files = checks.check_camera({**CAMERA, 'backend': 'file', 'path': str(frames)}, frames=5)
    assert files.status == PASS and '5 frames of 320x240' in files.message
    assert 'resizes' in files.message
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert checks.check_camera({**CAMERA, 'backend': 'file', 'path': str(empty)}).status == FAIL


def tiny_tflite(height: int = 120, width: int = 160) -> bytes:
    """A LiteRT model shaped like a DonkeyCar linear export (one HxWx3 float input, two 1x1
    outputs: the mean pixel and half of it), written with the TFLite schema: no TensorFlow."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    def tensor(shape, kind, buffer, name):
        item = schema.TensorT()
        item.shape, item.type, item.buffer, item.name = list(shape), kind, buffer, name
        return item

    def operator(code, inputs, outputs, options_type, options):
        item = schema.OperatorT()
        item.opcodeIndex, item.inputs, item.outputs = code, inputs, outputs
        item.builtinOptionsType, item.builtinOptions = options_type, options
        return item

    buffers = [schema.BufferT() for _ in range(5)]
    buffers[2].data = list(np.array([1, 2, 3], np.int32).tobytes())
    buffers[3].data = list(np.array([1, 1], np.int32).tobytes())
    buffers[4].data = list(np.array([0.5], np.float32).tobytes())
    f32, i32 = schema.TensorType.FLOAT32, schema.TensorType.INT32
    graph = schema.SubGraphT()
    graph.tensors = [tensor([1, height, width, 3], f32, 0, 'img_in'),
                     tensor([1, 1, 1, 1], f32, 0, 'mean'), tensor([3], i32, 2, 'axes'),
                     tensor([2], i32, 3, 'shape'), tensor([1, 1], f32, 0, 'n_outputs0'),
                     tensor([1], f32, 4, 'half'), tensor([1, 1], f32, 0, 'n_outputs1')]
    graph.inputs, graph.outputs = [0], [4, 6]
    reducer, reshape = schema.ReducerOptionsT(), schema.ReshapeOptionsT()
    reducer.keepDims, reshape.newShape = True, [1, 1]
    options = schema.BuiltinOptions
    graph.operators = [operator(0, [0, 2], [1], options.ReducerOptions, reducer),
                       operator(1, [1, 3], [4], options.ReshapeOptions, reshape),
                       operator(2, [4, 5], [6], options.MulOptions, schema.MulOptionsT())]
    codes = []
    for op in (schema.BuiltinOperator.MEAN, schema.BuiltinOperator.RESHAPE,
               schema.BuiltinOperator.MUL):
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = op
        code.version = 1
        codes.append(code)
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, codes, [graph], buffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    return bytes(builder.Output())


@pytest.fixture
def donkeycar_model(tmp_path):
    path = tmp_path / 'pilot.tflite'
    path.write_bytes(tiny_tflite())
    return path


def test_model(donkeycar_model, tmp_path):
    from donkey_ros.learning.pilot_node import PARAMS
    pilot = {spec.name: spec.default for spec in PARAMS}
    fits = checks.check_model({**pilot, 'model_path': str(donkeycar_model)}, CAMERA)
    assert fits.status == PASS and '160x120' in fits.message and 'donkeycar' in fits.message
    big = checks.check_model({**pilot, 'model_path': str(donkeycar_model)},
                             {**CAMERA, 'width': 320, 'height': 240})
    assert big.status == FAIL and 'takes 160x120 frames, the camera publishes 320x240' in \
        big.message and 'width/height' in big.fix
    cropped = checks.check_model({**pilot, 'model_path': str(donkeycar_model)},
                                 {**CAMERA, 'crop_top': 40})
    assert cropped.status == FAIL and 'publishes 160x80' in cropped.message
    resized = checks.check_model({**pilot, 'model_path': str(donkeycar_model),
                                  'resize_mismatched': True}, {**CAMERA, 'width': 320})
    assert resized.status == WARN
    missing = checks.check_model({**pilot, 'model_path': str(tmp_path / 'none.tflite')}, CAMERA)
    assert missing.status == FAIL and 'does not exist' in missing.message
    (tmp_path / 'junk.tflite').write_bytes(b'\0' * 64)
    junk = checks.check_model({**pilot, 'model_path': str(tmp_path / 'junk.tflite')}, CAMERA)
    assert junk.status == FAIL and 'TFLite' in junk.message


def test_disk(tmp_path):
    rate = checks.recording_rate(CAMERA, {'compress_images': False})
    assert rate == pytest.approx((160 * 120 * 3 + 200) * 20 + checks.COMMAND_BYTES_PER_SECOND)
    assert checks.recording_rate(CAMERA, {'compress_images': True}) < rate / 5
    fine = checks.check_disk(tmp_path / 'data' / 'bags', 1, rate)   # not created yet: its parent
    assert fine.status == PASS and 'min of recording' in fine.message
    full = checks.check_disk(tmp_path, 1e9, rate)
    assert full.status == FAIL and 'compress_images' in full.fix


def test_topics_of_a_running_car_stack(graph):
    from geometry_msgs.msg import TwistStamped
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image as ImageMsg

    from donkey_ros.actuation.actuator_node import ActuatorNode
    from donkey_ros.common import qos
    from donkey_ros.control.mux_node import MuxNode

    namespace = graph.namespace
    nothing = checks.check_topics(namespace, wait=0.3)
    assert nothing.status == FAIL and 'camera/image_raw has no publisher' in nothing.message
    assert 'cmd has no subscription (actuator)' in nothing.message and 'car.launch.py' in \
        nothing.fix
    graph.add(MuxNode)
    graph.add(ActuatorNode, parameter_overrides=[Parameter('backend', value='emulated')])
    probe = graph.node('stack')
    probe.create_publisher(ImageMsg, f'{namespace}/camera/image_raw', qos.IMAGE_PUBLISH)
    partial = checks.check_topics(namespace, wait=4.0)   # waits it all: user/cmd is missing
    assert partial.status == FAIL and 'user/cmd has no publisher' in partial.message
    assert 'camera/image_raw' not in partial.message
    probe.create_publisher(TwistStamped, f'{namespace}/user/cmd', qos.COMMAND)
    ready = checks.check_topics(namespace, wait=5.0)
    assert ready.status == PASS, ready.message
    # Another namespace is another car: nothing there.
    assert checks.check_topics(namespace + '_other', wait=0.2).status == FAIL


def test_parameter_file_values_are_checked_like_the_nodes_do(tmp_path):
    path = tmp_path / 'car.yaml'
    path.write_text(yaml.safe_dump({
        '/**/actuator': {'ros__parameters': {'i2c_bus': 3, 'steering_left_pwm': 9000,
                                             'steer_left': 1}},
        'camera': {'ros__parameters': {'width': 320}}}))
    config = load_car_config(str(path))
    assert config.values['actuator']['i2c_bus'] == 3 and config.values['camera']['width'] == 320
    assert config.values['camera']['height'] == 120                   # node default
    result = check_config(config)
    assert result.status == FAIL and 'steering_left_pwm' in result.message
    path.write_text(yaml.safe_dump({'actuator': {'ros__parameters': {'steer_left': 1}}}))
    unknown = check_config(load_car_config(str(path)))
    assert unknown.status == WARN and 'actuator.steer_left' in unknown.message
    assert check_config(load_car_config(str(ROOT / 'config' / 'car.yaml'))).status == PASS


def test_checklist_on_this_machine(tmp_path):
    """The whole command here: checklist printed, failing checks named, exit status 1."""
    config = tmp_path / 'car.yaml'
    (tmp_path / 'pilot.tflite').write_bytes(tiny_tflite())
    config.write_text(yaml.safe_dump({
        '/**/pilot': {'ros__parameters': {'model_path': str(tmp_path / 'pilot.tflite')}},
        '/**/camera': {'ros__parameters': {'device': '/dev/video99'}},
        '/**/recorder': {'ros__parameters': {'folder': str(tmp_path / 'bags')}}}))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'doctor', '--config',
                           str(config), '--wait', '0.5', '--minutes', '5'],
                          capture_output=True, text=True, env=env, timeout=120)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    lines = [line for line in out.splitlines() if line.startswith('  ') and line[2:6].strip()]
    statuses = {line.split(':')[0][8:]: line[2:6] for line in lines if not line.startswith(
        '        ')}
    assert statuses['ROS 2'] == PASS and statuses['System clock'] in (PASS, WARN)
    assert statuses[f'Disk space ({tmp_path / "bags"})'] == PASS
    assert statuses['Camera (opencv, device /dev/video99)'] == FAIL
    assert statuses['Car stack topics'] == FAIL
    assert statuses['Pilot model'] == PASS
    assert out.count('fix: ') >= 3
    summary = out.strip().splitlines()[-1]
    assert 'checks failed:' in summary and 'camera' in summary and 'topics' in summary
    assert 'model' not in summary
    if not Path('/dev/i2c-1').exists():
        assert statuses['I2C bus 1'] == FAIL and 'i2c' in summary and 'pca9685' in summary
    assert 'Traceback' not in out + done.stderr
    # --skip-ros: no ROS checks; the rest still runs.
    skipped = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', 'doctor', '--config',
                              str(config), '--skip-ros'], capture_output=True, text=True,
                             env=env, timeout=120)
    assert 'SKIP  ROS 2' in skipped.stdout and 'SKIP  Car stack topics' in skipped.stdout
    assert skipped.returncode == 1


def test_run_checks_reports_each_result_as_it_comes(tmp_path):
    config = load_car_config(None)
    config.values['camera'] = {**CAMERA}
    config.values['recorder'] = {**config.values['recorder'], 'folder': str(tmp_path)}
    config.values['actuator'] = {**config.values['actuator'], 'backend': 'dry_run'}
    seen = []
    results = run_checks(config, minutes=1, skip_ros=True, report=seen.append)
    assert seen == results
    assert [r.name for r in results] == ['config', 'ros', 'distro', 'packages', 'rosdep', 'pip',
                                         'numpy', 'clock', 'disk', 'groups', 'pca9685', 'model',
                                         'topics', 'camera']
    assert {r.name: r.status for r in results}['pca9685'] == SKIP


# --- the install (scripts/pi_install.sh, docs/pi.md) ---------------------------------------------
SYSTEM_PYTHON = getattr(sys, '_base_executable', sys.executable)   # no ROS, no LiteRT
SITE = Path(np.__file__).resolve().parents[1]                      # this venv's site-packages


def run_in_system_python(code: str) -> str:
    """Runs doctor code in a python without rclpy (as on a machine with nothing sourced)."""
    done = subprocess.run([SYSTEM_PYTHON, '-c', code], capture_output=True, text=True,
                          env={'PATH': os.environ['PATH'], 'PYTHONPATH': str(ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_distro(tmp_path):
    from donkey_ros.doctor import install
    here = install.check_distro()                      # this machine: the PyPI wheels venv
    assert here.status == PASS and 'PyPI wheels' in here.message
    apt = install.check_distro({'ROS_DISTRO': 'jazzy', 'AMENT_PREFIX_PATH': '/opt/ros/jazzy'})
    assert apt.status == PASS and 'ROS 2 jazzy (apt, /opt/ros/jazzy)' in apt.message
    assert install.check_distro({'ROS_DISTRO': 'humble'}).status == WARN
    (tmp_path / 'opt' / 'kilted').mkdir(parents=True)
    (tmp_path / 'opt' / 'kilted' / 'setup.bash').touch()
    out = run_in_system_python(
        'from pathlib import Path; from donkey_ros.doctor import install; '
        f'r = install.check_distro({{}}, Path({str(tmp_path / "opt")!r})); '
        'print(r.status, r.message, "|", r.fix)')
    assert out.startswith('FAIL ROS_DISTRO is not set') and '(installed: kilted)' in out
    assert '| source /opt/ros/kilted/setup.bash && source ~/ros2_ws/install/setup.bash' in out


def test_packages(tmp_path):
    from donkey_ros.doctor import install
    dev = install.check_packages({})
    assert dev.status == PASS and 'development venv' in dev.message
    venv = str(Path(sys.prefix))       # build_interfaces.sh indexed donkey_ros_interfaces here
    alone = install.check_packages({'ROS_DISTRO': 'kilted', 'AMENT_PREFIX_PATH': venv})
    assert alone.status == FAIL and 'donkey_ros (packages)' in alone.message
    assert 'donkey_ros_interfaces' not in alone.message
    assert 'colcon build && source install/setup.bash' in alone.fix
    index = tmp_path / 'install' / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    (index / 'donkey_ros').touch()
    both = install.check_packages({'ROS_DISTRO': 'kilted',
                                   'AMENT_PREFIX_PATH': f'{tmp_path / "install"}:{venv}'})
    assert both.status == PASS and str(tmp_path / 'install') in both.message
    empty = install.check_packages({'ROS_DISTRO': 'kilted'})
    assert empty.status == FAIL and 'source ~/ros2_ws/install/setup.bash' in empty.fix


def rosdep_database(tmp_path: Path, missing: str = '') -> dict:
    """A real rosdep set-up (file:// sources, a one-distro index) whose rules map every key of
    package.xml to a package this machine has installed (bash), except ``missing``."""
    from catkin_pkg.package import parse_package

    package = parse_package(str(ROOT / 'package.xml'))
    keys = {d.name for kind in ('buildtool_depends', 'build_depends', 'exec_depends',
                                'test_depends') for d in getattr(package, kind)}
    os_id = subprocess.run(['sh', '-c', '. /etc/os-release && echo $ID'], capture_output=True,
                           text=True).stdout.strip()
    rules = {key: {os_id: [missing if key == 'python3-aiohttp' and missing else 'bash']}
             for key in sorted(keys)}
    tmp_path.mkdir(parents=True)
    (tmp_path / 'rules.yaml').write_text(yaml.safe_dump(rules))
    (tmp_path / 'sources').mkdir()
    (tmp_path / 'sources' / '20-test.list').write_text(f'yaml file://{tmp_path}/rules.yaml\n')
    (tmp_path / 'jazzy').mkdir()
    (tmp_path / 'jazzy' / 'distribution.yaml').write_text(
        'release_platforms: {ubuntu: [noble]}\nrepositories: {}\ntype: distribution\n'
        'version: 2\n')
    (tmp_path / 'index.yaml').write_text(
        'type: index\nversion: 4\ndistributions:\n  jazzy:\n    distribution: '
        '[jazzy/distribution.yaml]\n    distribution_status: active\n    '
        'distribution_type: ros2\n    python_version: 3\n')
    env = {'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}', 'ROS_DISTRO': 'jazzy',
           'ROSDEP_SOURCE_PATH': str(tmp_path / 'sources'), 'ROS_HOME': str(tmp_path / 'home'),
           'ROSDISTRO_INDEX_URL': f'file://{tmp_path}/index.yaml'}
    subprocess.run(['rosdep', 'update'], env=env, check=True, capture_output=True, timeout=120)
    return env


def test_rosdep(tmp_path):
    from donkey_ros.doctor import install
    assert install.check_rosdep({'PATH': os.environ['PATH']}).status == SKIP   # no ROS_DISTRO
    env = {'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}', 'ROS_DISTRO': 'jazzy',
           'ROSDEP_SOURCE_PATH': str(tmp_path / 'sources'), 'ROS_HOME': str(tmp_path / 'home')}
    assert shutil.which('rosdep', path=env['PATH']), 'rosdep is not installed (requirements-test)'
    fresh = install.check_rosdep(env)                  # the real rosdep, never initialised
    assert fresh.status == FAIL and fresh.fix == 'sudo rosdep init; rosdep update'
    satisfied = install.check_rosdep(rosdep_database(tmp_path / 'ok'))
    assert satisfied.status == PASS, satisfied.message
    assert str(ROOT / 'package.xml') in satisfied.message    # no install: the source package.xml
    lacking = install.check_rosdep(rosdep_database(tmp_path / 'lacking', 'no-such-deb-donkey'))
    assert lacking.status == FAIL and 'no-such-deb-donkey' in lacking.message
    assert lacking.fix == 'cd ~/ros2_ws && rosdep install --from-paths src --ignore-src -y'


def test_pip_only_dependencies(tmp_path):
    from donkey_ros.doctor import install
    here = install.check_pip_deps()
    assert here.status == PASS and 'all 8 import' in here.message
    bare = install.check_pip_deps({}, python=SYSTEM_PYTHON, venv=tmp_path / 'none')
    assert bare.status == FAIL and 'ai_edge_litert' in bare.message
    assert bare.fix.startswith('scripts/pi_install.sh --only pip,build (installs ')
    assert 'ai-edge-litert' in bare.fix and 'adafruit-extended-bus' in bare.fix
    # The nodes' interpreter is read from the installed `pilot` script's shebang.
    prefix = tmp_path / 'install'
    (prefix / 'lib' / 'donkey_ros').mkdir(parents=True)
    (prefix / 'lib' / 'donkey_ros' / 'pilot').write_text(f'#!{SYSTEM_PYTHON}\n')
    venv = tmp_path / 'venv'
    venv.mkdir()
    (venv / 'pyvenv.cfg').write_text('include-system-site-packages = true\n')
    stale = install.check_pip_deps({'AMENT_PREFIX_PATH': str(prefix)}, venv=venv)
    assert stale.status == FAIL and str(prefix / 'lib' / 'donkey_ros' / 'pilot') in stale.message
    assert f'not {venv}/bin/python3: rebuild' in stale.fix and 'colcon build' in stale.fix


def test_apt_numpy_not_shadowed():
    from donkey_ros.doctor import install
    assert install.check_apt_numpy({}).status == SKIP            # PyPI ROS: pip NumPy expected
    shadowed = install.check_apt_numpy({}, apt=True)              # as if ROS came from apt
    assert shadowed.status == FAIL and f'numpy from {SITE / "numpy"}' in shadowed.message
    assert '-m pip uninstall numpy opencv-python opencv-python-headless' in shadowed.fix
    assert install.check_apt_numpy({}, apt=True, apt_site=str(SITE)).status == PASS


def test_groups():
    import grp
    import pwd

    from donkey_ros.doctor import install
    me = pwd.getpwuid(os.getuid()).pw_name
    if me == 'root':
        assert install.check_groups().status == SKIP
    existing = [g for g in install.GROUPS if g in {e.gr_name for e in grp.getgrall()}]
    nobody = install.check_groups('nobody')
    assert nobody.status == FAIL and 'sudo usermod -aG' in nobody.fix and 'nobody' in nobody.fix
    for group in existing:
        assert group in nobody.message
    primary = grp.getgrgid(pwd.getpwnam('nobody').pw_gid)
    pending = install.check_groups('nobody', (primary.gr_name,), active=set())
    assert pending.status == WARN and pending.fix == 'log out and in (or reboot)'
    assert install.check_groups('nobody', (primary.gr_name,),
                                active={primary.gr_gid}).status == PASS
