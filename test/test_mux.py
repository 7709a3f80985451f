"""The drive-mode mux: plain logic, then the node in a real rclpy graph."""
import math
import time

import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter
from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.control.mux import DriveModeMux, MuxError
from donkey_ros.control.mux_node import MuxNode

USER = DriveCommand(steering=0.5, throttle=0.3)
PILOT = DriveCommand(steering=-0.25, throttle=0.7)


def fed_mux(mode):
    mux = DriveModeMux(timeout=0.5, mode=mode)
    mux.update('user', USER, now=10.0)
    mux.update('pilot', PILOT, now=10.0)
    return mux


@pytest.mark.parametrize('mode, expected', [
    ('user', (0.5, 0.3)), ('pilot_steer', (-0.25, 0.3)), ('pilot', (-0.25, 0.7))])
def test_each_mode_takes_steering_and_throttle_from_its_sources(mode, expected):
    command, reason = fed_mux(mode).output(now=10.1)
    assert (command.steering, command.throttle) == expected
    assert reason == 'ok'


def test_stale_source_gives_neutral_and_names_the_source():
    mux = fed_mux('pilot_steer')
    mux.update('user', USER, now=10.4)
    command, reason = mux.output(now=10.6)  # pilot 0.6 s old, user 0.2 s old
    assert command == DriveCommand(0.0, 0.0)
    assert reason == 'stale pilot'


def test_estop_overrides_everything_until_released():
    mux = fed_mux('user')
    mux.estop = True
    assert mux.output(now=10.1) == (DriveCommand(0.0, 0.0), 'estop')
    mux.estop = False
    assert mux.output(now=10.1)[0] == USER


def test_unknown_mode_is_rejected():
    with pytest.raises(MuxError, match="unknown drive mode 'autopilot'"):
        DriveModeMux(mode='autopilot')


def twist(steering, throttle):
    return command_to_msg(DriveCommand(steering, throttle))


class MuxHarness:
    def __init__(self, graph, **params):
        self.graph = graph
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.mux = graph.add(MuxNode, parameter_overrides=overrides)
        probe = graph.node('probe')
        ns = graph.namespace
        self.user = probe.create_publisher(TwistStamped, f'{ns}/user/cmd', qos.COMMAND)
        self.pilot = probe.create_publisher(TwistStamped, f'{ns}/pilot/cmd', qos.COMMAND)
        self.mode_set = probe.create_publisher(String, f'{ns}/drive_mode/set', 10)
        self.estop = probe.create_client(SetBool, f'{ns}/estop')
        self.cmds = graph.collect(TwistStamped, f'{ns}/cmd', qos.COMMAND, node=probe)
        self.modes = graph.collect(String, f'{ns}/drive_mode', qos.LATCHED, node=probe)
        assert graph.wait_for(lambda: self.user.get_subscription_count() == 1
                              and self.pilot.get_subscription_count() == 1
                              and len(self.cmds) > 0)

    def latest(self):
        msg = self.cmds[-1]
        return msg.twist.angular.z, msg.twist.linear.x

    def drive_until(self, expected, user=None, pilot=None, timeout=3.0):
        """Keeps publishing the inputs until cmd shows ``expected`` (steering, throttle)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if user:
                self.user.publish(twist(*user))
            if pilot:
                self.pilot.publish(twist(*pilot))
            time.sleep(0.02)
            if self.cmds and self.latest() == pytest.approx(expected):
                return True
        return False


def test_node_obeys_mode_changes_by_parameter_and_topic(graph):
    h = MuxHarness(graph)
    assert graph.wait_for(lambda: h.modes and h.modes[-1].data == 'user')
    assert h.drive_until((0.5, 0.3), user=(0.5, 0.3), pilot=(-0.25, 0.7))

    h.mux.set_parameters([Parameter('mode', value='pilot')])
    assert graph.wait_for(lambda: h.modes[-1].data == 'pilot')
    assert h.drive_until((-0.25, 0.7), user=(0.5, 0.3), pilot=(-0.25, 0.7))

    h.mode_set.publish(String(data='pilot_steer'))
    assert graph.wait_for(lambda: h.modes[-1].data == 'pilot_steer')
    assert h.drive_until((-0.25, 0.3), user=(0.5, 0.3), pilot=(-0.25, 0.7))

    h.mode_set.publish(String(data='warp_drive'))  # refused, mode unchanged
    h.mode_set.publish(String(data='user'))  # same publisher, same order: warp_drive came first
    assert graph.wait_for(lambda: h.modes[-1].data == 'user')
    assert [m.data for m in h.modes][-2:] == ['pilot_steer', 'user']
    assert 'warp_drive' not in [m.data for m in h.modes]


def test_node_rejects_invalid_mode_parameter(graph):
    h = MuxHarness(graph)
    result = h.mux.set_parameters([Parameter('mode', value='warp_drive')])[0]
    assert not result.successful
    assert 'unknown' in result.reason or 'not valid' in result.reason
    assert h.mux.get_parameter('mode').value == 'user'


def test_node_estop_forces_neutral_until_released(graph):
    h = MuxHarness(graph)
    assert h.drive_until((0.5, 0.3), user=(0.5, 0.3))
    assert h.estop.wait_for_service(timeout_sec=3.0)
    future = h.estop.call_async(SetBool.Request(data=True))
    assert graph.wait_for(future.done) and future.result().success
    assert h.drive_until((0.0, 0.0), user=(0.5, 0.3))
    # Held neutral while input keeps coming.
    h.drive_until((9, 9), user=(0.5, 0.3), timeout=0.3)
    assert h.latest() == (0.0, 0.0)
    future = h.estop.call_async(SetBool.Request(data=False))
    assert graph.wait_for(future.done)
    assert h.drive_until((0.5, 0.3), user=(0.5, 0.3))


def test_node_stale_input_becomes_neutral_within_timeout(graph):
    timeout, rate = 0.3, 50.0
    h = MuxHarness(graph, timeout=timeout, rate=rate)
    assert h.drive_until((0.5, 0.3), user=(0.5, 0.3))
    last = Time(sec=4242)  # the last input, recognisable: the mux stamps its output with it
    h.user.publish(command_to_msg(DriveCommand(0.5, 0.3), stamp=last))
    assert graph.wait_for(lambda: h.latest() == (0.0, 0.0), timeout=10.0)
    # Counted in the mux's own heartbeats, not in wall time: after the last input it repeats it
    # for at most `timeout` worth of heartbeats (a loaded machine gives fewer, never more).
    repeats = [m for m in h.cmds if m.header.stamp == last]
    assert 1 <= len(repeats) <= timeout * rate + 3  # + the input's own output, timer jitter
    assert h.cmds[-1].header.stamp != last


def test_node_never_passes_nan_inf_or_out_of_range(graph):
    h = MuxHarness(graph)
    assert h.drive_until((0.5, 0.3), user=(0.5, 0.3))
    bad = [(math.nan, 0.2), (0.1, math.inf), (-math.inf, math.nan), (1e9, -1e9), (5.0, 0.5)]
    for steering, throttle in bad * 5:
        h.user.publish(twist(steering, throttle))
        time.sleep(0.01)
    time.sleep(0.3)
    for msg in h.cmds:
        for value in (msg.twist.angular.z, msg.twist.linear.x):
            assert math.isfinite(value) and -1.0 <= value <= 1.0
    assert h.mux.rejected >= 15
    assert any(msg.twist.angular.z == 1.0 and msg.twist.linear.x == -1.0 for msg in h.cmds)
