"""`keyboard_teleop`: drive from a terminal. Publishes ``user/cmd`` at ``rate`` Hz.

Run it in a terminal of its own (``ros2 run donkey_ros keyboard_teleop``); keys are read one by
one without Enter. Quitting (q, Ctrl-C, closing the terminal, SIGTERM) sends a neutral command.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import termios
import tty

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node

from donkey_ros.common import qos
from donkey_ros.common.clock import create_steady_timer
from donkey_ros.common.command import NEUTRAL, command_to_msg
from donkey_ros.common.diagnostics import OK, WARN, DiagnosticsPublisher
from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.common.params import Param, declare_parameters
from donkey_ros.common.runner import run_nodes
from donkey_ros.teleop.controls import CarControls
from donkey_ros.teleop.keyboard import HELP, KeyboardMapper, split_keys

NODE_NAME = 'keyboard_teleop'
PARAMS = (
    Param('rate', 20.0, 'Rate (Hz) at which the held command is published on user/cmd.',
          min=1.0, max=100.0, read_only=True),
    Param('throttle_step', 0.05, 'Throttle change per w/s key press.', min=0.01, max=1.0),
    Param('steering_step', 0.25, 'Steering change per a/d key press.', min=0.01, max=1.0),
    Param('max_throttle', 0.5, 'Largest throttle the keys can set (forward and reverse).',
          min=0.0, max=1.0),
)


class TerminalError(DonkeyRosError):
    """Standard input is not an interactive terminal."""


class Terminal:
    """Standard input in cbreak mode (keys without Enter, no echo), restored on exit."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdin
        if not self.stream.isatty():
            raise TerminalError('keyboard_teleop needs an interactive terminal: run it in a '
                                'terminal of its own, not from a launch file or a pipe')
        self.fd = self.stream.fileno()
        self._saved = None

    def __enter__(self) -> 'Terminal':
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def read(self) -> str | None:
        """Whatever was typed since the last call ('' if nothing); None once input has closed."""
        text = b''
        while select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 64)
            except OSError:  # the terminal went away (EIO on a closed pty)
                return None
            if not chunk:
                return None
            text += chunk
        return text.decode('utf-8', errors='ignore')


class KeyboardTeleopNode(Node):
    NODE_NAME = NODE_NAME

    def __init__(self, **kwargs) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.params = p = declare_parameters(self, PARAMS, on_change=self._on_param)
        self.mapper = KeyboardMapper(p.throttle_step, p.steering_step, p.max_throttle)
        self.controls = CarControls(self)
        self.cmd_pub = self.create_publisher(TwistStamped, 'user/cmd', qos.COMMAND)
        create_steady_timer(self, 1.0 / p.rate, self.publish)
        self.quit = False
        self.diagnostics = DiagnosticsPublisher(self, self._report)

    def _report(self):
        command = self.mapper.command
        level = WARN if self.controls.estop else OK
        return level, 'e-stop engaged' if self.controls.estop else 'listening to the keyboard', {
            'steering': command.steering, 'throttle': command.throttle,
            'estop': self.controls.estop, 'failed_calls': self.controls.failed_calls}

    def _on_param(self, name, value) -> None:
        setattr(self.mapper, name, value)

    def keys(self, text: str | None) -> bool:
        """Applies typed text; returns True when the user quit (or input closed)."""
        if text is None:
            self.quit = True
            return True
        before = self.mapper.command
        for key in split_keys(text):
            event = self.mapper.key(key)
            if event == 'quit':
                self.quit = True
            elif event:
                self.controls.handle(event)
        if self.mapper.command != before:
            command = self.mapper.command
            print(f'\rsteering {command.steering:+.2f}  throttle {command.throttle:+.2f}   ',
                  end='', flush=True)
            self.publish()
        return self.quit

    def publish(self) -> None:
        command = NEUTRAL if self.controls.estop or self.quit else self.mapper.command
        self.cmd_pub.publish(command_to_msg(command, self.get_clock().now().to_msg()))

    def on_shutdown(self) -> None:
        self.quit = True
        self.publish()
        print()


def main(argv: list[str] | None = None) -> None:
    try:
        terminal = Terminal()
    except TerminalError as error:
        print(f'keyboard_teleop: {error}', file=sys.stderr)
        sys.exit(2)
    nodes = []

    def factory(**kwargs):
        nodes.append(KeyboardTeleopNode(**kwargs))
        return nodes[-1]

    hung_up = []
    signal.signal(signal.SIGHUP, lambda *_: hung_up.append(True))  # terminal closed: stop

    def tick() -> bool:
        if hung_up:
            return True
        return bool(nodes) and nodes[0].keys(terminal.read())

    print(HELP)
    with terminal:
        code = run_nodes([factory], args=argv, tick=tick, tick_period=0.02)
    sys.exit(code)


if __name__ == '__main__':
    main()
