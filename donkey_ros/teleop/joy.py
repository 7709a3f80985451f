"""Gamepad -> drive command: pad layouts, deadzone, scaling, button edges (no ROS in here).

Indices are those of ``sensor_msgs/Joy`` from the standard ROS 2 ``joy`` package, whose sticks
read +1 pushed left / up (the contract's + = left / forward, so no sign flips are needed):

- ``ps4``: DualShock 4 with ``joy_node`` on Linux (hid-playstation / hid-sony).
- ``xbox``: Xbox 360/One pads and the Logitech F710 in XInput mode (switch on X) with ``joy_node``
  on Linux (xpad).
- ``gamepad``: any pad SDL knows, with ``game_controller_node`` (standard layout).

Like DonkeyCar's controller: left stick X steers, right stick Y throttles, one button cycles the
drive mode, one toggles the emergency stop, one toggles recording, and the d-pad raises/lowers the
throttle scale (the largest throttle the stick can ask for).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from donkey_ros.common.command import DriveCommand, clamp
from donkey_ros.common.errors import DonkeyRosError


class JoyError(DonkeyRosError):
    """A Joy message does not fit the configured pad layout or carries NaN/inf."""


@dataclass(frozen=True)
class PadLayout:
    """Which axis / button does what; -1 = not used."""

    steering_axis: int
    throttle_axis: int
    mode_button: int
    estop_button: int
    record_button: int
    scale_up_button: int = -1
    scale_down_button: int = -1
    scale_axis: int = -1
    """An axis (the d-pad's vertical one) that raises the scale when pushed up, lowers it down."""


PADS = {
    # axes: 0 LX, 1 LY, 2 L2, 3 RX, 4 RY, 5 R2, 6 dpad X, 7 dpad Y
    # buttons: 0 cross, 1 circle, 2 triangle, 3 square, 4 L1, 5 R1, ... 8 share, 9 options
    'ps4': PadLayout(steering_axis=0, throttle_axis=4, mode_button=2, estop_button=0,
                     record_button=1, scale_axis=7),
    # axes: 0 LX, 1 LY, 2 LT, 3 RX, 4 RY, 5 RT, 6 dpad X, 7 dpad Y
    # buttons: 0 A, 1 B, 2 X, 3 Y, 4 LB, 5 RB, 6 back, 7 start, 8 guide, 9 L3, 10 R3
    'xbox': PadLayout(steering_axis=0, throttle_axis=4, mode_button=3, estop_button=0,
                      record_button=1, scale_axis=7),
    # game_controller_node: axes 0 LX, 1 LY, 2 RX, 3 RY, 4 LT, 5 RT; buttons 0 A/cross,
    # 1 B/circle, 2 X/square, 3 Y/triangle, ... 11 dpad up, 12 dpad down
    'gamepad': PadLayout(steering_axis=0, throttle_axis=3, mode_button=3, estop_button=0,
                         record_button=1, scale_up_button=11, scale_down_button=12),
}
EVENTS = ('mode', 'estop', 'record', 'scale_up', 'scale_down')


def apply_deadzone(value: float, deadzone: float) -> float:
    """0 inside the deadzone, then rising smoothly from 0 to 1 (no jump at its edge)."""
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    return math.copysign(min(1.0, (magnitude - deadzone) / (1.0 - deadzone)), value)


class JoyMapper:
    """Turns Joy axes/buttons into a DriveCommand and button events (on press, not on hold).

    Args:
        layout: the pad layout.
        deadzone: stick travel around the centre read as zero (0..0.9).
        steering_scale: steering at full stick (negative flips direction).
        throttle_scale: throttle at full stick at start (DonkeyCar JOYSTICK_MAX_THROTTLE);
            the scale buttons change it by ``scale_step`` within [scale_step, 1].
        throttle_sign: +1, or -1 to flip the throttle stick.
    """

    def __init__(self, layout: PadLayout, deadzone: float = 0.05, steering_scale: float = 1.0,
                 throttle_scale: float = 0.5, throttle_sign: float = 1.0,
                 scale_step: float = 0.05) -> None:
        self.layout = layout
        self.deadzone = deadzone
        self.steering_scale = steering_scale
        self.throttle_scale = throttle_scale
        self.throttle_sign = throttle_sign
        self.scale_step = scale_step
        self._pressed: set[str] = set()

    def update(self, axes, buttons) -> tuple[DriveCommand, list[str]]:
        """Returns the command and the events of newly pressed buttons.

        Raises:
            JoyError: a configured index is beyond the message's arrays, or an axis is NaN/inf.
        """
        lay = self.layout
        steering = self._axis(axes, lay.steering_axis, 'steering_axis')
        throttle = self._axis(axes, lay.throttle_axis, 'throttle_axis')
        held = set()
        for event, index in (('mode', lay.mode_button), ('estop', lay.estop_button),
                             ('record', lay.record_button), ('scale_up', lay.scale_up_button),
                             ('scale_down', lay.scale_down_button)):
            if index >= 0 and self._button(buttons, index, f'{event}_button'):
                held.add(event)
        if lay.scale_axis >= 0:
            value = self._axis(axes, lay.scale_axis, 'scale_axis')
            if value > 0.5:
                held.add('scale_up')
            elif value < -0.5:
                held.add('scale_down')
        events = [event for event in EVENTS if event in held and event not in self._pressed]
        self._pressed = held
        for event in events:
            if event == 'scale_up':
                self.throttle_scale = min(1.0, round(self.throttle_scale + self.scale_step, 6))
            elif event == 'scale_down':
                self.throttle_scale = max(self.scale_step,
                                          round(self.throttle_scale - self.scale_step, 6))
        command = DriveCommand(
            clamp(apply_deadzone(steering, self.deadzone) * self.steering_scale),
            clamp(apply_deadzone(throttle, self.deadzone) * self.throttle_sign
                  * self.throttle_scale))
        return command, events

    @staticmethod
    def _axis(axes, index: int, name: str) -> float:
        if index >= len(axes):
            raise JoyError(f'{name} {index} is beyond the {len(axes)} axes of this pad; '
                           'check the pad parameter')
        value = float(axes[index])
        if not math.isfinite(value):
            raise JoyError(f'axis {index} is {value}')
        return clamp(value)

    @staticmethod
    def _button(buttons, index: int, name: str) -> bool:
        if index >= len(buttons):
            raise JoyError(f'{name} {index} is beyond the {len(buttons)} buttons of this pad; '
                           'check the pad parameter')
        return bool(buttons[index])


def layout_with(pad: str, overrides: dict) -> PadLayout:
    """The named pad's layout with the non-negative ``overrides`` (field -> index) applied."""
    if pad not in PADS:
        raise JoyError(f"unknown pad '{pad}' (valid: {', '.join(PADS)})")
    return replace(PADS[pad], **{k: v for k, v in overrides.items() if v >= 0})


def twist_to_command(linear_x: float, angular_z: float, max_linear: float,
                     max_angular: float) -> DriveCommand:
    """geometry_msgs/Twist (m/s, rad/s) -> normalized command: full scale at the maxima.

    Raises:
        CommandError: NaN or infinite values, or more than ``command.LIMIT`` times a maximum.
    """
    return DriveCommand.checked(angular_z / max_angular, linear_x / max_linear)
