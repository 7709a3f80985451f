"""ROS glue for the actuator: ``cmd`` -> steering servo + ESC pulses on a PCA9685, with failsafe.

Subscribes ``cmd`` (TwistStamped), publishes ``cmd_applied`` (the command after limits and
failsafe, TwistStamped) and ``/diagnostics``. If no valid ``cmd`` arrives for ``timeout`` s, on
SIGINT/SIGTERM, on node shutdown or on any error in the control path, the throttle goes to the
stopped pulse and the steering to centre.
"""
from __future__ import annotations

import atexit
import threading
import weakref

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node

from donkey_ros.actuation.backends import BACKENDS, ActuatorError, open_output
from donkey_ros.actuation.controller import ActuatorController, Applied, ReverseSequence
from donkey_ros.actuation.pwm import Calibration, PwmMapping, us_to_ticks
from donkey_ros.common import intra, qos
from donkey_ros.common.clock import create_steady_timer, steady_now
from donkey_ros.common.command import CommandError, command_from_msg, command_to_msg
from donkey_ros.common.diagnostics import ERROR, OK, WARN, DiagnosticsPublisher
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import node_main

NODE_NAME = 'actuator'
CALIBRATION_KEYS = ('steering_left_pwm', 'steering_right_pwm', 'throttle_forward_pwm',
                    'throttle_stopped_pwm', 'throttle_reverse_pwm')
PARAMS = (
    Param('backend', 'pca9685', 'Where pulses go: pca9685 (the real board), dry_run (log only), '
          'emulated (the real driver on an emulated board; for tests and simulation).',
          choices=BACKENDS, read_only=True),
    Param('i2c_bus', 1, 'I2C bus number of the PCA9685 (/dev/i2c-N; 1 on a Raspberry Pi).',
          min=0, max=255, read_only=True),
    Param('i2c_address', 0x40, 'I2C address of the PCA9685 (64 = 0x40).', min=0x03, max=0x77,
          read_only=True),
    Param('frequency', 60, 'PWM frequency in Hz (DonkeyCar uses 60).', min=40, max=400,
          read_only=True),
    Param('reference_clock', 25_000_000, 'PCA9685 oscillator frequency in Hz (25 MHz nominal; '
          'measure it for exact pulse widths).', min=20_000_000, max=30_000_000, read_only=True),
    Param('steering_channel', 1, 'PCA9685 channel of the steering servo.', min=0, max=15,
          read_only=True),
    Param('throttle_channel', 0, 'PCA9685 channel of the ESC.', min=0, max=15, read_only=True),
    Param('units', 'ticks', 'Units of the five *_pwm calibration values: ticks (DonkeyCar '
          '12-bit counts at ticks_frequency) or us (pulse width in microseconds).',
          choices=('ticks', 'us')),
    Param('ticks_frequency', 60, 'PWM frequency the tick values were calibrated at (DonkeyCar: '
          '60; with DonkeyCar PWM_*_SCALE s at frequency f use f / s).', min=40, max=400),
    Param('steering_left_pwm', 460, 'Full-left steering pulse (DonkeyCar STEERING_LEFT_PWM).',
          min=1, max=4095),
    Param('steering_right_pwm', 290, 'Full-right steering pulse (DonkeyCar STEERING_RIGHT_PWM).',
          min=1, max=4095),
    Param('throttle_forward_pwm', 500, 'Full-forward throttle pulse '
          '(DonkeyCar THROTTLE_FORWARD_PWM).', min=1, max=4095),
    Param('throttle_stopped_pwm', 370, 'Stopped throttle pulse (DonkeyCar THROTTLE_STOPPED_PWM).',
          min=1, max=4095),
    Param('throttle_reverse_pwm', 220, 'Full-reverse throttle pulse '
          '(DonkeyCar THROTTLE_REVERSE_PWM).', min=1, max=4095),
    Param('steering_inverted', False, 'Swap left and right.'),
    Param('throttle_inverted', False, 'Swap forward and reverse.'),
    Param('max_forward', 1.0, 'Largest forward throttle sent, fraction of full forward.',
          min=0.0, max=1.0),
    Param('max_reverse', 1.0, 'Largest reverse throttle sent, fraction of full reverse '
          '(0 = never reverse).', min=0.0, max=1.0),
    Param('timeout', 0.5, 'Seconds without a valid cmd after which the throttle is stopped and '
          'the steering centred.', min=0.05, max=5.0),
    Param('rate', 50.0, 'Control rate (Hz): the watchdog acts within timeout + 1/rate of the '
          'last valid cmd (it fires timeout + 1/(2 rate) after it), and the reverse sequence is '
          'evaluated this often while enabled.', min=5.0, max=500.0, read_only=True),
    Param('reverse_sequence', False, 'Enter reverse through brake then neutral (ESCs that brake '
          'on the first reverse pulse).'),
    Param('reverse_brake_time', 0.1, 'Seconds of braking (reverse pulse) before neutral.',
          min=0.0, max=2.0),
    Param('reverse_neutral_time', 0.1, 'Seconds of neutral between braking and reverse.',
          min=0.0, max=2.0),
    Param('emulated_log', '', 'emulated backend only: append every output change of the '
          'emulated board to this file (JSON lines).', read_only=True),
    Param('emulated_board_address', 0x40, 'emulated backend only: address the emulated board '
          'answers at.', min=0x03, max=0x77, read_only=True),
)

MAPPING_KEYS = set(CALIBRATION_KEYS) | {'units', 'ticks_frequency', 'steering_inverted',
                                        'throttle_inverted', 'max_forward', 'max_reverse'}


def calibration_from(values: dict) -> Calibration:
    """The calibration the parameter values describe (raises ConfigError)."""
    pulses = [values[key] for key in CALIBRATION_KEYS]
    if values['units'] == 'us':
        return Calibration(*map(float, pulses)).validated()
    return Calibration.from_ticks(*pulses, nominal_hz=values['ticks_frequency'],
                                  oscillator_hz=values['reference_clock'])


def mapping_from(values: dict, period_us: float | None = None) -> PwmMapping:
    calibration = calibration_from(values).validated(period_us)
    return PwmMapping(calibration, values['steering_inverted'], values['throttle_inverted'],
                      values['max_forward'], values['max_reverse'])


def reverse_sequence_from(values: dict) -> ReverseSequence | None:
    if not values['reverse_sequence']:
        return None
    return ReverseSequence(values['reverse_brake_time'], values['reverse_neutral_time'])


class ActuatorNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = declare_parameters(self, PARAMS, on_change=self._on_param,
                                         check=self._check_param)
        p = self.params
        self._finished = True  # until the board is open and the controller exists
        # Commands from the in-process mux (fast path) arrive in its thread: every control step
        # and board check holds this, so they never interleave with the watchdog's.
        self._lock = threading.RLock()
        values = vars(p)
        self.rejected = 0
        self.write_errors = 0
        self.last_error = ''
        self._last_state = None
        mapping = mapping_from(values)
        if p.steering_channel == p.throttle_channel:
            raise ActuatorError(f'steering and throttle are both on channel {p.throttle_channel}')
        self.output = open_output(
            p.backend, bus=p.i2c_bus, address=p.i2c_address, frequency=p.frequency,
            oscillator_hz=p.reference_clock, report=self._dry_run_report,
            emulated_log=p.emulated_log, emulated_board_address=p.emulated_board_address)
        mapping_from(values, 1e6 / self.output.frequency_hz)  # pulses fit in the period
        self.controller = ActuatorController(
            mapping, self.output, p.steering_channel, p.throttle_channel, p.timeout,
            reverse_sequence_from(values))
        self.applied_pub = intra.create_publisher(self, TwistStamped, 'cmd_applied',
                                                  qos.COMMAND)
        self._finished = False
        self._run(self.controller.start)
        intra.create_subscription(self, TwistStamped, 'cmd', self._on_cmd, qos.COMMAND,
                                  thread_safe=True)
        self._watchdog = self._sequencer = None
        self._set_timers()
        create_steady_timer(self, 1.0, self._check_board)
        self.diagnostics = DiagnosticsPublisher(self, self._report,
                                                hardware_id=self.output.description)
        atexit.register(_exit_failsafe, weakref.ref(self.controller))
        cal = mapping.calibration
        self.get_logger().info(
            f'{self.output.description} at {self.output.frequency_hz:.2f} Hz; steering ch '
            f'{p.steering_channel} left {cal.steering_left_us:.0f} us / right '
            f'{cal.steering_right_us:.0f} us; throttle ch {p.throttle_channel} forward '
            f'{cal.throttle_forward_us:.0f} / stopped {cal.throttle_stopped_us:.0f} / reverse '
            f'{cal.throttle_reverse_us:.0f} us; timeout {p.timeout} s')

    def _check_param(self, proposed, changed) -> None:
        """The batch's calibration must give a valid mapping (ConfigError refuses the batch)."""
        if MAPPING_KEYS & set(changed):
            mapping_from(vars(proposed), 1e6 / self.output.frequency_hz)

    def _on_param(self, name, value) -> None:
        values = vars(self.params)  # the whole accepted batch is in already
        if name in MAPPING_KEYS:
            self.controller.mapping = mapping_from(values, 1e6 / self.output.frequency_hz)
            self.get_logger().info(f'{name} = {value}: mapping updated')
            self._run(lambda: self.controller.tick(steady_now()), force=True)
        elif name == 'timeout':
            self.controller.timeout = value
            self._set_timers()
        elif name in ('reverse_sequence', 'reverse_brake_time', 'reverse_neutral_time'):
            self.controller.reverse = reverse_sequence_from(values)
            self._set_timers()

    def _set_timers(self) -> None:
        """The watchdog: a steady timer reset by every valid command, so it fires only when
        commands stop (and then every period), ``timeout`` + half a control period after the last
        one: the command has surely timed out by then (timers never fire early), and the stopped
        pulse still comes within ``timeout`` + one period, as with a timer ticking at ``rate``
        (which cost a wake-up of the executor 50 times a second). The reverse sequence, which
        changes the output between commands, gets a timer at ``rate`` while it is enabled."""
        p = self.params
        with self._lock:
            if self._watchdog is not None:
                self.destroy_timer(self._watchdog)
            self._watchdog = create_steady_timer(self, p.timeout + 0.5 / p.rate, self._tick)
            if p.reverse_sequence and self._sequencer is None:
                self._sequencer = create_steady_timer(self, 1.0 / p.rate, self._tick)
            elif not p.reverse_sequence and self._sequencer is not None:
                self.destroy_timer(self._sequencer)
                self._sequencer = None

    def _dry_run_report(self, text: str) -> None:
        self.get_logger().info(text)

    def _on_cmd(self, msg) -> None:
        try:
            command = command_from_msg(msg)
        except CommandError as error:
            self.rejected += 1
            self.get_logger().error(f'cmd rejected: {error}', throttle_duration_sec=1.0)
            return
        except Exception as error:  # a malformed message must not stop the node
            self.rejected += 1
            self.get_logger().error(f'cmd unreadable: {error}', throttle_duration_sec=1.0)
            return
        self._run(lambda: self._command(command), force=True)

    def _command(self, command) -> Applied:
        applied = self.controller.command(command, steady_now())
        self._watchdog.reset()  # after the command took: a failed write leaves the deadline
        return applied

    def _tick(self) -> None:
        self._run(lambda: self.controller.tick(steady_now()))

    def _run(self, action, force: bool = False) -> None:
        """Runs a control step; any failure ends in the stopped pulse, logged, never raised."""
        with self._lock:
            self._run_locked(action, force)

    def _run_locked(self, action, force: bool) -> None:
        if self._finished:
            return
        try:
            applied = action()
        except ActuatorError as error:
            self.write_errors += 1
            self.last_error = str(error)
            self.get_logger().error(str(error), throttle_duration_sec=1.0)
            return
        except Exception as error:
            self.last_error = f'control path failed: {error!r}'
            self.get_logger().error(f'{self.last_error}; stopping', throttle_duration_sec=1.0)
            try:
                applied = self.controller.failsafe()
            except Exception as failure:
                self.get_logger().error(f'failsafe write failed: {failure}',
                                        throttle_duration_sec=1.0)
                return
        self.last_error = ''
        self._publish(applied, force)

    def _publish(self, applied: Applied, force: bool) -> None:
        if applied.state != self._last_state:
            if applied.state == 'timeout' and self._last_state is not None:
                self.get_logger().warning(f'no valid cmd for {self.params.timeout} s: '
                                          'throttle stopped, steering centred')
            elif self._last_state == 'timeout' and applied.state != 'stopped':
                self.get_logger().info('cmd received: driving')
            self._last_state = applied.state
            force = True
        if force and self.applied_pub.get_subscription_count():  # nobody listening: not built
            msg = command_to_msg(applied.command, self.get_clock().now().to_msg())
            msg.header.frame_id = applied.state
            self.applied_pub.publish(msg)

    def _check_board(self) -> None:
        with self._lock:
            self._check_board_locked()

    def _check_board_locked(self) -> None:
        if self._finished:
            return
        try:
            if self.output.check():
                self.get_logger().warning(f'{self.output.description} had reset; re-initialised')
                self.controller.rewrite()
        except ActuatorError as error:
            self.write_errors += 1
            self.last_error = str(error)
            self.get_logger().error(str(error), throttle_duration_sec=5.0)

    def _report(self):
        applied = self.controller.applied
        now = steady_now()
        values = {'backend': self.params.backend, 'board': self.output.description,
                  'frequency_hz': self.output.frequency_hz, 'cmd_age': self.controller.age(now),
                  'rejected': self.rejected, 'write_errors': self.write_errors}
        if applied is not None:
            frequency = self.output.frequency_hz
            values.update({
                'state': applied.state, 'steering': applied.command.steering,
                'throttle': applied.command.throttle, 'steering_us': applied.steering_us,
                'throttle_us': applied.throttle_us,
                'steering_ticks': us_to_ticks(applied.steering_us, frequency),
                'throttle_ticks': us_to_ticks(applied.throttle_us, frequency)})
        if self.last_error:
            return ERROR, self.last_error, values
        if applied is None or applied.state in ('timeout', 'stopped'):
            return WARN, 'stopped: no valid cmd' if applied else 'not started', values
        return OK, f'driving ({applied.state})', values

    def on_shutdown(self) -> None:
        """SIGINT/SIGTERM/shutdown: stopped pulse and centred steering, then no more writes."""
        if getattr(self, '_finished', True):
            return  # already done, or the node never got as far as opening the board
        with self._lock:
            self._stop_for_good()

    def _stop_for_good(self) -> None:
        if self._finished:
            return
        self._finished = True
        try:
            applied = self.controller.stop()
            self.get_logger().info('shutdown: throttle stopped, steering centred')
            self._publish(applied, force=True)
        except Exception as error:
            self.get_logger().error(f'shutdown: could not write the stopped pulse: {error}')
        finally:
            self.output.close()

    def destroy_node(self):
        self.on_shutdown()
        return super().destroy_node()


def _exit_failsafe(controller_ref) -> None:
    """At interpreter exit (even after an unhandled exception): stopped pulse, centred steering."""
    controller = controller_ref()
    if controller is not None and not controller.stopped:
        try:
            controller.stop()
        except Exception:
            pass


def main() -> None:
    node_main(ActuatorNode)


if __name__ == '__main__':
    main()
