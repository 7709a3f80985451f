"""The actuator: the real Adafruit PCA9685 driver on an emulated bus, the control core, the node.

Nothing replaces the driver: ``adafruit_pca9685.PCA9685`` runs unmodified and the emulated chip
decodes the pulse each channel really outputs from the registers the driver wrote.
"""
import math
import os
import random
import time

import adafruit_pca9685
import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter

from donkey_ros.actuation.actuator_node import ActuatorNode, calibration_from
from donkey_ros.actuation.backends import ActuatorError, Pca9685Output, open_output
from donkey_ros.actuation.controller import ActuatorController, ReverseSequence
from donkey_ros.actuation.emulated_pca9685 import (AI, MODE1, PRE_SCALE, SLEEP, EmulatedI2C,
                                                   EmulatedPCA9685)
from donkey_ros.actuation.pwm import (Calibration, PwmMapping, realized_frequency, ticks_to_us,
                                      us_to_ticks)
from donkey_ros.common import qos
from donkey_ros.common.command import CommandError, DriveCommand, command_to_msg
from donkey_ros.common.errors import ConfigError

STEER, THROTTLE = 1, 0
# DonkeyCar's template calibration (templates/cfg_complete.py, PWM_STEERING_THROTTLE).
LEFT, RIGHT, FORWARD, STOPPED, REVERSE = 460, 290, 500, 370, 220


def emulated(frequency=60):
    board = EmulatedPCA9685()
    output = Pca9685Output(EmulatedI2C({0x40: board}), 0x40, frequency)
    return board, output


def controller(output, timeout=0.5, reverse=None, **mapping):
    calibration = Calibration.from_ticks(LEFT, RIGHT, FORWARD, STOPPED, REVERSE)
    return ActuatorController(PwmMapping(calibration, **mapping), output, STEER, THROTTLE,
                              timeout, reverse)


def ticks(board):
    return board.output(STEER).ticks, board.output(THROTTLE).ticks


# ---- the emulated chip under the real driver --------------------------------------------------

def test_driver_configures_the_emulated_chip_like_the_datasheet_says():
    board = EmulatedPCA9685()
    assert board.sleeping and board.registers[PRE_SCALE] == 0x1E  # power-on state
    pca = adafruit_pca9685.PCA9685(EmulatedI2C({0x40: board}), address=0x40)
    pca.frequency = 60
    assert board.registers[PRE_SCALE] == 101  # round(25e6 / 4096 / 60) - 1
    assert not board.sleeping and board.registers[MODE1] & AI
    assert board.frequency_hz == pytest.approx(59.838, abs=1e-3) == pca.frequency
    pca.channels[3].duty_cycle = 370 << 4
    assert board.output(3).ticks == 370
    assert board.output(3).pulse_us == pytest.approx(370 / 4096 / 59.838e-6, rel=1e-4)
    assert board.output(4).ticks == 0  # untouched channels stay full-off


def test_emulated_chip_models_the_traps_a_wrong_driver_would_fall_into():
    board = EmulatedPCA9685()
    bus = EmulatedI2C({0x40: board})
    bus.writeto(0x40, bytes([MODE1, AI]))  # awake, auto-increment
    bus.writeto(0x40, bytes([PRE_SCALE, 50]))
    assert board.registers[PRE_SCALE] == 0x1E, 'PRE_SCALE is write-protected while awake'
    bus.writeto(0x40, bytes([MODE1, 0x00]))  # auto-increment off
    bus.writeto(0x40, bytes([0x06, 0, 0, 0x72, 0x01]))  # LED0: on=0, off=0x172
    assert board.output(0).ticks == 0, 'without AI all bytes land on LED0_ON_L'
    bus.writeto(0x40, bytes([MODE1, AI]))
    bus.writeto(0x40, bytes([0x06, 0, 0, 0x72, 0x01]))
    assert board.output(0).ticks == 0x172
    bus.writeto(0x40, bytes([MODE1, AI | SLEEP]))
    assert board.output(0).pulse_us == 0.0, 'a sleeping chip outputs nothing'
    bus.writeto(0x00, bytes([0x06]))  # general-call software reset
    assert board.sleeping and board.output(0).ticks == 0
    with pytest.raises(OSError):
        bus.writeto(0x41, b'')
    assert bus.scan() == [0x40]


def test_missing_board_is_one_clear_error_naming_bus_and_address():
    bus = EmulatedI2C({0x40: EmulatedPCA9685()})
    with pytest.raises(ActuatorError, match=r'no PCA9685 answers at address 0x41 on test bus'):
        Pca9685Output(bus, 0x41, 60, bus_name='test bus')
    with pytest.raises(ActuatorError, match=r'I2C bus 97 not found \(/dev/i2c-97'):
        open_output('pca9685', bus=97)


# ---- calibration: DonkeyCar ticks carry over --------------------------------------------------

def test_donkeycar_ticks_reach_the_board_unchanged_at_60_hz():
    _, output = emulated()
    assert output.frequency_hz == realized_frequency(60)
    for value in range(100, 700):
        assert us_to_ticks(ticks_to_us(value), output.frequency_hz) == value


def test_calibration_end_points_and_centre_on_the_board():
    board, output = emulated()
    control = controller(output)
    expected = {(1.0, 0.0): (LEFT, STOPPED), (-1.0, 0.0): (RIGHT, STOPPED),
                (0.0, 0.0): ((LEFT + RIGHT) // 2, STOPPED), (0.0, 1.0): (375, FORWARD),
                (0.0, -1.0): (375, REVERSE), (0.5, 0.5): (418, 435)}
    for (steering, throttle), want in expected.items():
        control.command(DriveCommand(steering, throttle), now=1.0)
        assert ticks(board) == want, (steering, throttle)


def test_other_frequency_keeps_pulse_widths():
    board, output = emulated(frequency=50)
    control = controller(output)
    control.command(DriveCommand(1.0, 1.0), now=1.0)
    assert board.frequency_hz == pytest.approx(50, rel=0.01)
    assert board.pulse_us(STEER) == pytest.approx(ticks_to_us(LEFT), abs=5.0)  # 1 count = 4.9 us
    assert board.pulse_us(THROTTLE) == pytest.approx(ticks_to_us(FORWARD), abs=5.0)


def test_microsecond_calibration_and_parameter_checks():
    values = {'units': 'us', 'steering_left_pwm': 2000, 'steering_right_pwm': 1000,
              'throttle_forward_pwm': 1900, 'throttle_stopped_pwm': 1500,
              'throttle_reverse_pwm': 1100, 'ticks_frequency': 60, 'reference_clock': 25_000_000}
    assert calibration_from(values).steering_center_us == 1500
    with pytest.raises(ConfigError, match='steering_left pulse 460 us is outside'):
        calibration_from(dict(values, steering_left_pwm=460))  # ticks given as microseconds
    with pytest.raises(ConfigError, match='reverse pulse is on the forward side'):
        calibration_from(dict(values, throttle_reverse_pwm=1700))
    with pytest.raises(ConfigError, match='does not fit in the PWM period'):
        calibration_from(values).validated(period_us=1e6 / 500)


def test_clamping_limits_and_inversion():
    board, output = emulated()
    control = controller(output, max_forward=0.5, max_reverse=0.0, steering_inverted=True)
    control.command(DriveCommand.checked(1.2, 1.4), now=1.0)  # clamped to 1, then limited
    assert ticks(board) == (RIGHT, 435)
    assert control.applied.command == DriveCommand(1.0, 0.5)
    control.command(DriveCommand(0.0, -1.0), now=1.0)
    assert ticks(board)[1] == STOPPED  # max_reverse 0: never reverses
    flipped = controller(emulated()[1], throttle_inverted=True)
    assert flipped.mapping.throttle_us(1.0) == pytest.approx(ticks_to_us(REVERSE))


def test_non_finite_and_huge_commands_never_leave_the_calibrated_range():
    board, output = emulated()
    control = controller(output)
    rng = random.Random(9)
    specials = [math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0, 1.0, -1.0]
    for _ in range(400):
        steering = rng.choice(specials + [rng.uniform(-1e6, 1e6)])
        throttle = rng.choice(specials + [rng.uniform(-3, 3)])
        try:
            command = DriveCommand.checked(steering, throttle)
        except CommandError:
            command = DriveCommand(steering, throttle)  # what a broken caller might still pass
        control.command(command, now=1.0)
        steer_ticks, throttle_ticks = ticks(board)
        assert RIGHT <= steer_ticks <= LEFT and REVERSE <= throttle_ticks <= FORWARD


# ---- failsafe and reverse sequence (time passed in explicitly) ----------------------------------

def test_watchdog_stops_the_throttle_and_centres_the_steering():
    board, output = emulated()
    control = controller(output, timeout=0.5)
    control.start()
    assert ticks(board) == (375, STOPPED)
    control.command(DriveCommand(1.0, 1.0), now=10.0)
    control.tick(now=10.5)
    assert ticks(board) == (LEFT, FORWARD), 'still within the timeout'
    control.tick(now=10.51)
    assert ticks(board) == (375, STOPPED)
    assert control.applied.state == 'timeout'
    control.command(DriveCommand(0.0, 0.5), now=11.0)
    assert ticks(board) == (375, 435), 'a new command drives again'
    control.stop()
    control.command(DriveCommand(0.0, 1.0), now=11.1)
    assert ticks(board) == (375, STOPPED), 'nothing drives after stop()'


def test_reverse_sequence_brakes_then_neutral_then_reverses():
    board, output = emulated()
    control = controller(output, reverse=ReverseSequence(brake_time=0.1, neutral_time=0.2))
    control.command(DriveCommand(0.0, 1.0), now=0.0)
    timeline = []
    for step in range(0, 50):
        now = 1.0 + step * 0.01 + (0.003 if step else 0.0)  # never exactly on a boundary
        if step == 0:
            control.command(DriveCommand(0.0, -1.0), now=now)
        else:
            control.tick(now)
            control.command(DriveCommand(0.0, -1.0), now=now)
        timeline.append((now - 1.0, ticks(board)[1], control.applied.state))
    phases = [(t, state) for t, _, state in timeline]
    assert all(value == REVERSE for t, value, _ in timeline if t < 0.1)  # brake
    assert all(value == STOPPED for t, value, _ in timeline if 0.1 <= t < 0.3)  # neutral
    assert all(value == REVERSE for t, value, _ in timeline if t >= 0.3)  # reverse
    assert phases[0] == (0.0, 'brake') and phases[-1][1] == 'reverse'
    control.command(DriveCommand(0.0, 0.2), now=2.0)
    control.command(DriveCommand(0.0, -0.5), now=2.01)
    assert control.applied.state == 'brake', 'every new reverse starts with the brake'


def test_exception_in_the_control_path_writes_the_stopped_pulse():
    board, output = emulated()
    control = controller(output)
    control.command(DriveCommand(0.0, 1.0), now=1.0)

    class Broken(PwmMapping):
        def limit(self, command):
            raise RuntimeError('bug')

    control.mapping = Broken(control.mapping.calibration)
    with pytest.raises(RuntimeError):
        control.command(DriveCommand(0.0, 1.0), now=1.1)
    assert ticks(board) == (375, STOPPED)


def test_board_reset_is_detected_and_outputs_restored():
    board, output = emulated()
    control = controller(output)
    control.command(DriveCommand(1.0, 0.5), now=1.0)
    assert output.check() is False
    board.power_cycle()  # brown-out: asleep, default prescaler, outputs off
    assert board.output(THROTTLE).pulse_us == 0.0
    assert output.check() is True
    control.rewrite()
    assert ticks(board) == (LEFT, 435) and board.frequency_hz == output.frequency_hz


def test_unplugged_board_raises_actuator_error_and_recovers():
    board, output = emulated()
    control = controller(output)
    board.connected = False
    with pytest.raises(ActuatorError, match='channel 0 of the PCA9685 at address 0x40'):
        control.command(DriveCommand(0.0, 0.5), now=1.0)
    board.connected = True
    control.tick(now=1.1)  # the write that failed is retried
    assert ticks(board)[1] == 435


# ---- the node in a real rclpy graph ------------------------------------------------------------

class ActuatorHarness:
    def __init__(self, graph, **params):
        params.setdefault('backend', 'emulated')
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = graph.add(ActuatorNode, parameter_overrides=overrides)
        self.board = self.node.output.board
        probe = graph.node('probe')
        ns = graph.namespace
        self.cmd = probe.create_publisher(TwistStamped, f'{ns}/cmd', qos.COMMAND)
        self.applied = graph.collect(TwistStamped, f'{ns}/cmd_applied', qos.COMMAND, node=probe)
        self.graph = graph
        assert graph.wait_for(lambda: self.cmd.get_subscription_count() == 1)

    def send(self, steering, throttle):
        msg = command_to_msg(DriveCommand(steering, throttle))
        self.cmd.publish(msg)

    def send_raw(self, steering, throttle):
        msg = TwistStamped()
        msg.twist.angular.z, msg.twist.linear.x = steering, throttle
        self.cmd.publish(msg)

    def ticks(self):
        return ticks(self.board)


def test_node_drives_then_stops_within_timeout_plus_one_period(graph):
    car = ActuatorHarness(graph, timeout=0.3, rate=50.0)
    assert car.ticks() == (375, STOPPED)
    for _ in range(5):
        car.send(-1.0, 1.0)
        time.sleep(0.02)
    assert graph.wait_for(lambda: car.ticks() == (RIGHT, FORWARD), 2.0)
    assert graph.wait_for(lambda: car.ticks() == (375, STOPPED), 2.0)
    last_command = car.node.controller._last_time
    stopped = [o.t for o in car.board.history if o.channel == THROTTLE and o.ticks == STOPPED][-1]
    delay = stopped - last_command
    # Measured from the node receiving the last cmd; 20 ms of executor jitter allowed.
    assert 0.3 <= delay <= 0.3 + 1 / 50 + 0.02, delay
    assert graph.wait_for(lambda: any(m.header.frame_id == 'timeout' for m in car.applied))
    assert car.applied[-1].twist.linear.x == 0.0


def test_watchdog_follows_a_timeout_changed_at_run_time(graph):
    """The watchdog is a timer reset by each command, firing timeout + half a period after the
    last; a shorter timeout set at run time must shorten it too (the old timer would stop the
    car only after the old timeout)."""
    car = ActuatorHarness(graph, timeout=1.0, rate=50.0)
    assert car.node.set_parameters([Parameter('timeout', value=0.2)])[0].successful
    for _ in range(5):
        car.send(0.0, 1.0)
        time.sleep(0.02)
    assert graph.wait_for(lambda: car.ticks()[1] == FORWARD, 2.0)
    assert graph.wait_for(lambda: car.ticks()[1] == STOPPED, 2.0)
    last_command = car.node.controller._last_time
    stopped = [o.t for o in car.board.history if o.channel == THROTTLE and o.ticks == STOPPED][-1]
    assert 0.2 <= stopped - last_command <= 0.2 + 1 / 50 + 0.02, stopped - last_command


def test_reverse_sequence_runs_on_after_a_single_command(graph):
    """Brake, neutral, reverse from one command: the phases change between commands, on the
    reverse sequence's own timer (the watchdog alone would not fire before the timeout)."""
    car = ActuatorHarness(graph, reverse_sequence=True, reverse_brake_time=0.1,
                          reverse_neutral_time=0.1, timeout=2.0)
    car.send(0.0, -1.0)
    assert graph.wait_for(lambda: car.node.controller._last_time is not None, 2.0)
    sent = car.node.controller._last_time
    assert graph.wait_for(lambda: [o.ticks for o in car.board.history
                                   if o.channel == THROTTLE][-3:] == [REVERSE, STOPPED, REVERSE],
                          1.5), [o.ticks for o in car.board.history if o.channel == THROTTLE]
    reversed_at = [o.t for o in car.board.history if o.channel == THROTTLE][-1]
    assert reversed_at - sent < 1.0, 'the sequence waited for something else than its timer'


def test_node_survives_fuzzed_commands_and_keeps_pulses_in_range(graph):
    car = ActuatorHarness(graph, timeout=1.0)
    rng = random.Random(3)
    values = [math.nan, math.inf, -math.inf, 1e308, -1e308, 7.0, -7.0]
    for _ in range(60):
        car.send_raw(rng.choice(values + [rng.uniform(-2, 2)]),
                     rng.choice(values + [rng.uniform(-2, 2)]))
    assert graph.wait_for(lambda: car.node.rejected > 0, 2.0)
    car.send(0.0, 0.5)
    assert graph.wait_for(lambda: car.ticks() == (375, 435), 2.0), 'node still responds'
    for output in car.board.history:
        if output.channel == STEER and output.ticks:
            assert RIGHT <= output.ticks <= LEFT
        if output.channel == THROTTLE and output.ticks:
            assert REVERSE <= output.ticks <= FORWARD


def test_node_reverse_sequence_and_runtime_calibration(graph):
    car = ActuatorHarness(graph, reverse_sequence=True, reverse_brake_time=0.15,
                          reverse_neutral_time=0.15, timeout=1.0)
    seen = []
    start = time.monotonic()
    while time.monotonic() - start < 0.6:
        car.send(0.0, -1.0)
        seen.append(car.ticks()[1])
        time.sleep(0.02)
    order = [value for i, value in enumerate(seen) if i == 0 or value != seen[i - 1]]
    assert order[-3:] == [REVERSE, STOPPED, REVERSE], order
    car.node.set_parameters([Parameter('throttle_reverse_pwm', value=250)])
    car.send(0.0, -1.0)
    assert graph.wait_for(lambda: car.ticks()[1] == 250, 2.0)
    result = car.node.set_parameters([Parameter('throttle_reverse_pwm', value=450)])
    assert not result[0].successful and 'forward side' in result[0].reason


def test_node_logs_board_failures_keeps_running_and_stops_on_shutdown(graph):
    car = ActuatorHarness(graph, timeout=1.0)
    car.board.connected = False
    car.send(0.0, 0.5)
    assert graph.wait_for(lambda: car.node.write_errors > 0, 2.0)
    assert 'address 0x40' in car.node.last_error
    car.board.connected = True
    car.send(0.0, 0.5)
    assert graph.wait_for(lambda: car.ticks() == (375, 435), 2.0)
    car.node.on_shutdown()
    assert car.ticks() == (375, STOPPED)
    car.send(1.0, 1.0)
    time.sleep(0.1)
    assert car.ticks() == (375, STOPPED), 'no writes after shutdown'


# ---- shipped configuration and the timeline picture --------------------------------------------

def test_car_yaml_sections_only_use_declared_parameters_and_valid_values():
    import yaml

    from donkey_ros.actuation import actuator_node
    from donkey_ros.camera import camera_node
    from donkey_ros.teleop import joy_teleop_node

    path = os.path.join(os.path.dirname(__file__), '..', 'config', 'car.yaml')
    with open(path, encoding='utf-8') as stream:
        document = yaml.safe_load(stream)
    for module in (actuator_node, camera_node, joy_teleop_node):
        section = document[f'/**/{module.NODE_NAME}']['ros__parameters']
        specs = {spec.name: spec for spec in module.PARAMS}
        for name, value in section.items():
            assert name in specs, f'{module.NODE_NAME}: {name} is not a parameter'
            specs[name].validate(value)
    values = {spec.name: spec.default for spec in actuator_node.PARAMS}
    values.update(document['/**/actuator']['ros__parameters'])
    assert actuator_node.mapping_from(values).calibration.throttle_stopped_us == \
        pytest.approx(ticks_to_us(STOPPED))


def test_timeline_picture_of_an_emulated_log(tmp_path):
    from donkey_ros.actuation.emulated_pca9685 import read_log
    from donkey_ros.actuation.timeline import main as timeline_main

    log = tmp_path / 'board.jsonl'
    board = EmulatedPCA9685(str(log))
    output = Pca9685Output(EmulatedI2C({0x40: board}), 0x40, 60)
    control = controller(output)
    control.command(DriveCommand(1.0, 0.5), now=1.0)
    control.tick(now=2.0)
    board.close()
    assert [o.ticks for o in read_log(str(log)) if o.channel == THROTTLE][-2:] == [435, STOPPED]
    picture = tmp_path / 'board.png'
    assert timeline_main([str(log), str(picture), '--mark', '1.0:kill']) == 0
    assert picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and picture.stat().st_size > 10_000
    empty = tmp_path / 'empty.jsonl'
    empty.write_text('')
    assert timeline_main([str(empty), str(tmp_path / 'e.png')]) == 1
