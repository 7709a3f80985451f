"""The clock of every safety timeout: steady time, which always advances.

A ROS node's own clock follows ``/clock`` when ``use_sim_time`` is true: it stands still while no
``/clock`` arrives and jumps when it does. A failsafe on that clock never fires (measured: with
``use_sim_time:=true`` and no ``/clock`` the actuator held 1828 us of throttle until killed). So
every safety timer (actuator watchdog, mux heartbeat and source timeout, web deadman, teleop
repeat, the sim car's cmd timeout) runs on steady time, whatever ``use_sim_time`` says, and every
age those timers compare with a timeout is measured on the same clock:

- ``steady_now()``: seconds of steady time (``time.monotonic()``, CLOCK_MONOTONIC);
- ``create_steady_timer(node, period, callback)``: a node timer on rclpy's STEADY_TIME clock,
  which is the same CLOCK_MONOTONIC.

Message stamps and ``node.get_clock()`` stay ROS time; they are never used to age a command.
"""
from __future__ import annotations

import time
from typing import Callable

from rclpy.clock import Clock, ClockType


def steady_now() -> float:
    """Seconds on the steady clock (the clock every safety timeout is measured on)."""
    return time.monotonic()


def steady_clock() -> Clock:
    """An rclpy clock on steady time; unaffected by ``use_sim_time`` and ``/clock``."""
    return Clock(clock_type=ClockType.STEADY_TIME)


def create_steady_timer(node, period: float, callback: Callable[[], None]):
    """``node.create_timer`` on steady time: fires every ``period`` s whatever ``/clock`` does."""
    return node.create_timer(period, callback, clock=steady_clock())
