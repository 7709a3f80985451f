"""The actuator as separate processes: kill -9 of the command source, SIGTERM, missing board, and
the calibration tool. The emulated board logs the pulses it outputs to a file that this test reads.
"""
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from donkey_ros.actuation.calibrate import (import_donkeycar, main as calibrate_main,
                                            read_actuator_params, update_actuator_params)
from donkey_ros.actuation.emulated_pca9685 import latest, read_log
from donkey_ros.apps.failsafe_check import SOURCE
from rosgraph import wait_for

STEER, THROTTLE = 1, 0
TIMEOUT, RATE = 0.5, 50.0
def namespace():
    return f'/proc{os.getpid()}_{time.monotonic_ns() % 10**8}'


def start_actuator(ns, log, *params):
    args = [sys.executable, '-m', 'donkey_ros.actuation.actuator_node', '--ros-args',
            '-r', f'__ns:={ns}', '-p', 'backend:=emulated', '-p', f'emulated_log:={log}',
            '-p', f'timeout:={TIMEOUT}', '-p', f'rate:={RATE}']
    for param in params:
        args += ['-p', param]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def start_source(ns):
    return subprocess.Popen([sys.executable, '-c', SOURCE, ns])



def driving(log):
    last = latest(read_log(log))
    return last.get(THROTTLE) and last[THROTTLE].ticks == 435 and last[STEER].ticks == 460


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def test_kill_9_of_the_command_source_stops_the_car_within_timeout_plus_one_period(
        tmp_path, processes):
    ns, log = namespace(), str(tmp_path / 'board.jsonl')
    processes.append(start_actuator(ns, log))
    source = start_source(ns)
    processes.append(source)
    assert wait_for(lambda: driving(log), 30), 'the car never drove'
    source.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    source.wait()

    def stopped():  # stopped pulses after the car last drove
        throttle = [o for o in read_log(log) if o.channel == THROTTLE]
        last_drive = max(i for i, o in enumerate(throttle) if o.ticks == 435)
        return [o for o in throttle[last_drive:] if o.ticks == 370]

    assert wait_for(stopped, 5), 'the throttle never went back to stopped'
    delay = stopped()[0].t - killed
    # The last cmd left at most 20 ms before the kill; the node stops TIMEOUT after it, checked
    # every 1/RATE s. 50 ms are allowed for scheduling on a loaded machine.
    assert TIMEOUT - 0.05 <= delay <= TIMEOUT + 1 / RATE + 0.05, delay
    assert latest(read_log(log))[STEER].ticks == 375, 'steering centred'
    print(f'kill -9 of the source -> stopped pulse after {delay * 1000:.0f} ms')


def test_sigterm_of_the_actuator_writes_the_stopped_pulse(tmp_path, processes):
    ns, log = namespace(), str(tmp_path / 'board.jsonl')
    actuator = start_actuator(ns, log)
    processes.append(actuator)
    processes.append(start_source(ns))  # keeps commanding forward until the end
    assert wait_for(lambda: driving(log), 30), 'the car never drove'
    terminated = time.monotonic()
    actuator.send_signal(signal.SIGTERM)
    output, _ = actuator.communicate(timeout=10)
    assert actuator.returncode == 0, output
    last = latest(read_log(log))
    assert last[THROTTLE].ticks == 370 and last[THROTTLE].t >= terminated
    assert last[STEER].ticks == 375
    assert 'shutdown: throttle stopped, steering centred' in output
    assert 'Traceback' not in output


CLOCK = """
import sys, time, rclpy
from rosgraph_msgs.msg import Clock
rclpy.init()
node = rclpy.create_node('clock_source')
pub = node.create_publisher(Clock, '/clock', 10)
msg, sim, jump = Clock(), 1000.0, sys.argv[1] == 'jump'
while True:
    sim += 0.01
    if jump and 1001.0 < sim < 1001.02:
        sim = 10.0  # back by ~16 minutes, then on
        open(sys.argv[2], 'w').close()
    msg.clock.sec, msg.clock.nanosec = int(sim), int(sim % 1 * 1e9)
    pub.publish(msg)
    time.sleep(0.01)
"""


@pytest.mark.parametrize('clock', ['no /clock', '/clock that stops', '/clock that jumps back'])
def test_failsafe_runs_on_steady_time_whatever_use_sim_time_says(tmp_path, processes, clock):
    """use_sim_time:=true with no /clock, a /clock that stops or one that jumps back: sim time
    stands still or goes back, the watchdog must not. Before the fix, with no /clock or a stopped
    one, the throttle stayed forward until the node was killed (a jump back rclpy's timers
    survived already; kept as a guard)."""
    ns, log = namespace(), str(tmp_path / 'board.jsonl')
    clock_source = None
    if clock != 'no /clock':
        mode = 'jump' if 'jumps' in clock else 'run'
        clock_source = subprocess.Popen([sys.executable, '-c', CLOCK, mode,
                                         str(tmp_path / 'jumped')])
        processes.append(clock_source)
    processes.append(start_actuator(ns, log, 'use_sim_time:=true'))
    source = start_source(ns)
    processes.append(source)
    assert wait_for(lambda: driving(log), 30), 'the car never drove'
    if clock == '/clock that stops':
        clock_source.send_signal(signal.SIGKILL)
        clock_source.wait()
    elif clock_source is not None:
        assert wait_for((tmp_path / 'jumped').exists, 10), 'the clock never jumped'
    source.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    source.wait()

    def stopped():
        throttle = [o for o in read_log(log) if o.channel == THROTTLE]
        last_drive = max(i for i, o in enumerate(throttle) if o.ticks == 435)
        return [o for o in throttle[last_drive:] if o.ticks == 370]

    assert wait_for(stopped, 5), f'{clock}: the throttle never went back to stopped'
    delay = stopped()[0].t - killed
    assert delay <= TIMEOUT + 1 / RATE + 0.05, delay
    assert latest(read_log(log))[STEER].ticks == 375, 'steering centred'
    print(f'use_sim_time, {clock}: kill -9 of the source -> stopped after {delay * 1000:.0f} ms')


@pytest.mark.parametrize('params, message', [
    (['i2c_address:=65'], 'no PCA9685 answers at address 0x41 on the emulated I2C bus'),
    (['backend:=pca9685', 'i2c_bus:=97'], 'I2C bus 97 not found (/dev/i2c-97 does not exist)'),
])
def test_missing_board_is_one_line_and_exit_code_2(tmp_path, params, message):
    actuator = start_actuator(namespace(), str(tmp_path / 'board.jsonl'), *params)
    output, _ = actuator.communicate(timeout=30)
    assert actuator.returncode == 2, output
    assert message in output
    assert 'Traceback' not in output
    assert len([line for line in output.splitlines() if '[ERROR]' in line]) == 1, output


CONFIG = """# Car parameters (comments survive calibration).
/**/camera:
  ros__parameters:
    width: 160

/**/actuator:
  ros__parameters:
    backend: pca9685  # the real board
    steering_left_pwm: 460   # full left
    throttle_stopped_pwm: 370
"""


def test_calibrate_tool_drives_the_board_and_saves_values(tmp_path):
    config, log = tmp_path / 'car.yaml', str(tmp_path / 'board.jsonl')
    config.write_text(CONFIG)
    keys = ('steering\n480\nleft\n270\nright\nthrottle\n9999\n520\nforward\n365\nstopped\n'
            '230\nreverse\nsave\nq\n')
    result = subprocess.run(
        [sys.executable, '-m', 'donkey_ros.cli', 'calibrate', '--backend', 'emulated',
         '--emulated-log', log, '--config', str(config)],
        input=keys, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'not sent' in result.stdout  # 9999 ticks is no servo pulse
    params = read_actuator_params(str(config))
    assert params['steering_left_pwm'] == 480 and params['steering_right_pwm'] == 270
    assert params['throttle_forward_pwm'] == 520 and params['throttle_stopped_pwm'] == 365
    assert params['throttle_reverse_pwm'] == 230
    text = config.read_text()
    assert '# the real board' in text and '# full left' in text and 'width: 160' in text
    assert yaml.safe_load(text)['/**/camera']['ros__parameters'] == {'width': 160}
    steering = [o.ticks for o in read_log(log) if o.channel == STEER]
    throttle = [o.ticks for o in read_log(log) if o.channel == THROTTLE]
    assert {480, 270} <= set(steering) and {520, 365, 230} <= set(throttle)
    assert 9999 not in throttle and max(throttle) == 520
    assert throttle[-1] == 365 and steering[-1] == 375, 'ends stopped and centred'


def test_import_of_a_donkeycar_myconfig(tmp_path, capsys):
    myconfig = tmp_path / 'myconfig.py'
    myconfig.write_text(
        'import os\nDRIVE_TRAIN_TYPE = "PWM_STEERING_THROTTLE"\n'
        'PWM_STEERING_THROTTLE = {\n  "PWM_STEERING_PIN": "PCA9685.1:41.3",\n'
        '  "PWM_THROTTLE_PIN": "PCA9685.1:41.2",\n  "STEERING_LEFT_PWM": 455,\n'
        '  "STEERING_RIGHT_PWM": 295,\n  "THROTTLE_FORWARD_PWM": 480,\n'
        '  "THROTTLE_STOPPED_PWM": 372,\n  "THROTTLE_REVERSE_PWM": 250,\n}\n'
        'os.system("echo this file is never executed")\n')
    config = tmp_path / 'new' / 'car.yaml'
    assert calibrate_main(['--import', str(myconfig), '--config', str(config)]) == 0
    params = read_actuator_params(str(config))
    assert params == {'steering_left_pwm': 455, 'steering_right_pwm': 295,
                      'throttle_forward_pwm': 480, 'throttle_stopped_pwm': 372,
                      'throttle_reverse_pwm': 250, 'i2c_bus': 1, 'i2c_address': 0x41,
                      'steering_channel': 3, 'throttle_channel': 2, 'units': 'ticks',
                      'ticks_frequency': 60}
    assert import_donkeycar(str(myconfig))['i2c_address'] == 65


def test_update_keeps_plain_node_name_sections(tmp_path):
    config = tmp_path / 'car.yaml'
    config.write_text('actuator:\n    ros__parameters:\n        frequency: 60\n')
    update_actuator_params(str(config), {'steering_left_pwm': 444, 'frequency': 50})
    assert yaml.safe_load(config.read_text()) == {'actuator': {'ros__parameters': {
        'steering_left_pwm': 444, 'frequency': 50}}}
