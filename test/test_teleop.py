"""Teleop: pad mapping, the joy_teleop node against the real mux, Twist input, keyboard in a pty."""
import math
import os
import pty
import random
import subprocess
import sys
import time

import pytest
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import Joy
from std_srvs.srv import SetBool

from donkey_ros.common import qos
from donkey_ros.common.command import CommandError, DriveCommand
from donkey_ros.control.mux_node import MuxNode
from donkey_ros.teleop.joy import PADS, JoyError, JoyMapper, apply_deadzone, twist_to_command
from donkey_ros.teleop.joy_teleop_node import JoyTeleopNode
from donkey_ros.teleop.keyboard import KeyboardMapper, split_keys


def joy(axes=None, pressed=(), n_axes=8, n_buttons=13):
    axes_list = [0.0] * n_axes
    for index, value in (axes or {}).items():
        axes_list[index] = value
    return axes_list, [1 if i in pressed else 0 for i in range(n_buttons)]


# ---- mapping cores ---------------------------------------------------------------------------

def test_deadzone_is_smooth():
    assert apply_deadzone(0.04, 0.05) == 0.0
    assert apply_deadzone(0.05 + 0.95 / 2, 0.05) == pytest.approx(0.5)
    assert apply_deadzone(-1.0, 0.05) == -1.0
    assert apply_deadzone(0.051, 0.05) == pytest.approx(0.001 / 0.95)


@pytest.mark.parametrize('pad', sorted(PADS))
def test_each_pad_steers_left_stick_throttles_right_stick(pad):
    layout = PADS[pad]
    mapper = JoyMapper(layout, deadzone=0.0, throttle_scale=0.5)
    command, _ = mapper.update(*joy({layout.steering_axis: 1.0, layout.throttle_axis: 1.0}))
    assert command == DriveCommand(1.0, 0.5), 'stick left/up = left/forward'
    command, _ = mapper.update(*joy({layout.steering_axis: -0.5, layout.throttle_axis: -1.0}))
    assert command == DriveCommand(-0.5, -0.5)


def test_buttons_fire_once_per_press_and_dpad_changes_the_throttle_scale():
    layout = PADS['ps4']
    mapper = JoyMapper(layout, throttle_scale=0.5, scale_step=0.1)
    assert mapper.update(*joy(pressed={layout.estop_button}))[1] == ['estop']
    assert mapper.update(*joy(pressed={layout.estop_button}))[1] == [], 'held: no repeat'
    assert mapper.update(*joy())[1] == []
    assert mapper.update(*joy(pressed={layout.mode_button, layout.record_button}))[1] == [
        'mode', 'record']
    for _ in range(3):
        mapper.update(*joy({layout.scale_axis: 1.0}))
        mapper.update(*joy())
    assert mapper.throttle_scale == pytest.approx(0.8)
    for _ in range(20):
        mapper.update(*joy({layout.scale_axis: -1.0}))
        mapper.update(*joy())
    assert mapper.throttle_scale == pytest.approx(0.1), 'never down to zero'
    command, _ = mapper.update(*joy({layout.throttle_axis: 1.0}))
    assert command.throttle == pytest.approx(0.1)
    gamepad = PADS['gamepad']
    mapper = JoyMapper(gamepad, throttle_scale=0.5)
    assert mapper.update(*joy(pressed={gamepad.scale_up_button}, n_axes=6, n_buttons=16))[1] == [
        'scale_up']


def test_bad_joy_messages_raise_joy_error():
    mapper = JoyMapper(PADS['xbox'])
    with pytest.raises(JoyError, match='throttle_axis 4 is beyond the 2 axes'):
        mapper.update([0.0, 0.0], [0] * 11)
    with pytest.raises(JoyError, match='mode_button 3 is beyond the 1 buttons'):
        mapper.update([0.0] * 8, [0])
    with pytest.raises(JoyError, match='axis 0 is nan'):
        mapper.update([math.nan] + [0.0] * 7, [0] * 11)
    command, _ = mapper.update([1e30, 0, 0, 0, -1e30, 0, 0, 0], [0] * 11)
    assert command == DriveCommand(1.0, -0.5)


def test_twist_and_keyboard_mapping():
    assert twist_to_command(1.0, -0.5, 2.0, 1.0) == DriveCommand(-0.5, 0.5)
    assert twist_to_command(2.9, 1.4, 2.0, 1.0) == DriveCommand(1.0, 1.0)  # slightly over
    for linear in (math.inf, 100.0):  # 50x the maximum is garbage, not full throttle
        with pytest.raises(CommandError):
            twist_to_command(linear, 0.0, 2.0, 1.0)
    keys = KeyboardMapper(throttle_step=0.1, steering_step=0.5, max_throttle=0.3)
    for key in split_keys('ww\x1b[A\x1b[Aa'):
        keys.key(key)
    assert keys.command == DriveCommand(0.5, 0.3)
    assert keys.key('m') == 'mode' and keys.key('e') == 'estop'
    assert keys.command == DriveCommand(0.0, 0.0), 'e-stop zeroes the held command'
    for key in split_keys('s\x1b[C'):
        keys.key(key)
    assert keys.command == DriveCommand(-0.5, -0.1)
    keys.key(' ')
    assert keys.command == DriveCommand(0.0, 0.0)
    assert keys.key('q') == 'quit'


# ---- joy_teleop node with the real mux --------------------------------------------------------

class TeleopHarness:
    def __init__(self, graph, **params):
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.mux = graph.add(MuxNode)
        self.teleop = graph.add(JoyTeleopNode, parameter_overrides=overrides)
        self.probe = graph.node('probe')
        ns = graph.namespace
        self.joy = self.probe.create_publisher(Joy, f'{ns}/joy', 10)
        self.twist = self.probe.create_publisher(Twist, f'{ns}/user/cmd_vel', 10)
        self.user = graph.collect(TwistStamped, f'{ns}/user/cmd', qos.COMMAND, node=self.probe)
        self.cmd = graph.collect(TwistStamped, f'{ns}/cmd', qos.COMMAND, node=self.probe)
        self.record_requests = []

        def record(request, response):
            self.record_requests.append(request.data)
            response.success = True
            return response

        self.probe.create_service(SetBool, f'{ns}/recorder/record', record)
        self.graph = graph
        assert graph.wait_for(lambda: self.joy.get_subscription_count() == 1
                              and self.teleop.controls._estop.service_is_ready()
                              and self.teleop.controls._record.service_is_ready()
                              and self.teleop.controls.mode_known)

    def press(self, axes=None, pressed=()):
        axes_list, buttons = joy(axes, pressed)
        msg = Joy(axes=axes_list, buttons=buttons)
        self.joy.publish(msg)

    def latest_user(self):
        msg = self.user[-1]
        return msg.twist.angular.z, msg.twist.linear.x


def test_joy_drives_through_the_mux_and_buttons_reach_mux_and_recorder(graph):
    car = TeleopHarness(graph, pad='ps4', throttle_scale=0.5, deadzone=0.0)
    ps4 = PADS['ps4']
    car.press({ps4.steering_axis: 0.5, ps4.throttle_axis: 1.0})
    assert graph.wait_for(lambda: car.cmd and (car.cmd[-1].twist.angular.z,
                                               car.cmd[-1].twist.linear.x) == (0.5, 0.5))
    car.press(pressed={ps4.mode_button})
    assert graph.wait_for(lambda: car.mux.mux.mode == 'pilot_steer')
    car.press()
    assert graph.wait_for(lambda: car.teleop.controls.mode == 'pilot_steer')
    car.press(pressed={ps4.mode_button})
    assert graph.wait_for(lambda: car.mux.mux.mode == 'pilot')
    car.press(pressed={ps4.record_button})
    assert graph.wait_for(lambda: car.record_requests == [True])
    car.press()
    car.press(pressed={ps4.record_button})
    assert graph.wait_for(lambda: car.record_requests == [True, False])
    car.press(pressed={ps4.estop_button})
    assert graph.wait_for(lambda: car.mux.mux.estop)
    car.press({ps4.throttle_axis: 1.0})
    time.sleep(0.1)
    assert car.latest_user() == (0.0, 0.0), 'own output neutral while e-stopped'
    car.press(pressed={ps4.estop_button})
    assert graph.wait_for(lambda: not car.mux.mux.estop)
    car.press({ps4.throttle_axis: 1.0})
    assert graph.wait_for(lambda: car.latest_user() == (0.0, 0.5))


def test_twist_input_is_forwarded_normalized(graph):
    car = TeleopHarness(graph, twist_max_linear=2.0, twist_max_angular=0.5)
    msg = Twist()
    msg.linear.x, msg.angular.z = 1.0, -0.25
    car.twist.publish(msg)
    assert graph.wait_for(lambda: car.user and car.latest_user() == (-0.5, 0.5))


def test_fuzzed_joy_messages_give_finite_bounded_commands_and_node_survives(graph):
    car = TeleopHarness(graph, pad='xbox', throttle_scale=1.0)
    rng = random.Random(5)
    specials = [math.nan, math.inf, -math.inf, 1e30, -1e30, 3.0]
    for _ in range(80):
        n_axes, n_buttons = rng.choice([0, 1, 3, 5, 8, 12]), rng.choice([0, 2, 11, 20])
        axes = [rng.choice(specials + [rng.uniform(-2, 2)]) for _ in range(n_axes)]
        buttons = [rng.choice([0, 1, -5, 2**31 - 1]) for _ in range(n_buttons)]
        car.joy.publish(Joy(axes=axes, buttons=buttons))
        time.sleep(0.004)  # the subscription keeps the last 10: let the node read each one
    assert graph.wait_for(lambda: car.teleop.rejected > 10, 3.0)
    # Random buttons may have left the e-stop engaged: a clean press releases it.
    idle = joy(n_buttons=11)
    car.joy.publish(Joy(axes=idle[0], buttons=idle[1]))
    time.sleep(0.1)
    if car.teleop.controls.estop:
        press = joy(pressed={PADS['xbox'].estop_button}, n_buttons=11)
        car.joy.publish(Joy(axes=press[0], buttons=press[1]))
        assert graph.wait_for(lambda: not car.teleop.controls.estop)
    good = joy({0: -1.0, 4: 0.5}, n_buttons=11)
    car.joy.publish(Joy(axes=good[0], buttons=good[1]))
    expected = apply_deadzone(0.5, 0.05) * car.teleop.mapper.throttle_scale
    assert graph.wait_for(lambda: car.latest_user() == (-1.0, pytest.approx(expected))), \
        'the node still drives after the fuzzing'
    for msg in list(car.user):
        values = (msg.twist.angular.z, msg.twist.linear.x)
        assert all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in values)


# ---- keyboard teleop in a pseudo-terminal ------------------------------------------------------

def test_keyboard_teleop_in_a_terminal_publishes_and_quits_neutral(graph):
    user = graph.collect(TwistStamped, f'{graph.namespace}/user/cmd', qos.COMMAND)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, '-m', 'donkey_ros.teleop.keyboard_teleop', '--ros-args',
         '-r', f'__ns:={graph.namespace}', '-p', 'throttle_step:=0.1'],
        stdin=slave, stdout=slave, stderr=subprocess.PIPE, text=True)
    os.close(slave)
    try:
        assert graph.wait_for(lambda: len(user) > 0, 20.0), 'nothing published'
        os.write(master, b'www\x1b[D')
        assert graph.wait_for(lambda: (user[-1].twist.angular.z, user[-1].twist.linear.x)
                              == (0.25, pytest.approx(0.3)), 5.0)
        count = len(user)
        time.sleep(0.3)
        assert len(user) - count >= 3, 'the held command is repeated at the rate'
        os.write(master, b'q')
        process.wait(timeout=10)
        assert process.returncode == 0, process.stderr.read()
        assert (user[-1].twist.angular.z, user[-1].twist.linear.x) == (0.0, 0.0)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)


def test_keyboard_teleop_refuses_a_pipe():
    result = subprocess.run([sys.executable, '-m', 'donkey_ros.teleop.keyboard_teleop'],
                            input='w', capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert 'needs an interactive terminal' in result.stderr and 'Traceback' not in result.stderr


def test_pad_to_pulses_through_mux_and_emulated_actuator(graph):
    from donkey_ros.actuation.actuator_node import ActuatorNode

    car = TeleopHarness(graph, pad='xbox', throttle_scale=0.5, deadzone=0.0)
    actuator = graph.add(ActuatorNode, parameter_overrides=[
        Parameter('backend', value='emulated')])
    board = actuator.output.board
    xbox = PADS['xbox']

    def pulses():
        return board.output(1).ticks, board.output(0).ticks  # steering, throttle

    assert pulses() == (375, 370)
    car.press({xbox.steering_axis: -1.0, xbox.throttle_axis: 1.0})
    assert graph.wait_for(lambda: pulses() == (290, 435)), 'full right, half throttle'
    car.press(pressed={xbox.estop_button})
    assert graph.wait_for(lambda: pulses() == (375, 370)), 'pad e-stop -> stopped pulse'
