"""The car's switches, as teleop nodes use them: drive mode, emergency stop, recording.

- drive mode: reads ``drive_mode`` (latched, from the mux) and publishes the next mode on
  ``drive_mode/set`` (user -> pilot_steer -> pilot -> user).
- e-stop: calls the mux's ``estop`` (std_srvs/SetBool) asynchronously; toggles.
- recording: calls ``recorder/record`` (std_srvs/SetBool) asynchronously; toggles, following
  ``recorder/status`` (donkey_ros_interfaces/RecorderStatus) when that interface is built.

Service calls never block the caller; a missing service is one logged error, not a hang.
"""
from __future__ import annotations

from std_msgs.msg import String
from std_srvs.srv import SetBool

from donkey_ros.common import qos
from donkey_ros.control.mux import MODES


class CarControls:
    """Drive-mode, e-stop and record switches for ``node``."""

    def __init__(self, node) -> None:
        self.node = node
        self.mode = MODES[0]
        self.mode_known = False
        self.estop = False
        self.recording = False
        self.failed_calls = 0
        self._mode_pub = node.create_publisher(String, 'drive_mode/set', 10)
        node.create_subscription(String, 'drive_mode', self._on_mode, qos.LATCHED)
        self._estop = node.create_client(SetBool, 'estop')
        self._record = node.create_client(SetBool, 'recorder/record')
        try:  # follow the recorder's own state (it may autostart) when the interfaces are built
            from donkey_ros_interfaces.msg import RecorderStatus
        except ImportError:
            pass
        else:
            node.create_subscription(RecorderStatus, 'recorder/status', self._on_recorder, 10)

    def _on_recorder(self, msg) -> None:
        self.recording = bool(msg.recording)

    def _on_mode(self, msg: String) -> None:
        self.mode, self.mode_known = msg.data, True

    def cycle_mode(self) -> str:
        """Asks the mux for the next drive mode; returns it."""
        index = MODES.index(self.mode) if self.mode in MODES else -1
        wanted = MODES[(index + 1) % len(MODES)]
        self._mode_pub.publish(String(data=wanted))
        self.node.get_logger().info(f'drive mode -> {wanted}')
        return wanted

    def toggle_estop(self) -> bool:
        """Requests the opposite of the e-stop state we know; returns the requested state."""
        wanted = not self.estop
        self.estop = wanted  # held locally at once: the teleop sends neutral while engaged
        self._call(self._estop, wanted, 'estop', self._estop_done)
        return wanted

    def toggle_record(self) -> bool:
        wanted = not self.recording
        self._call(self._record, wanted, 'recorder/record', self._record_done)
        return wanted

    def handle(self, event: str, source: str = '') -> bool:
        """Acts on a teleop event ('mode', 'estop', 'record'); False for any other event."""
        if event == 'mode':
            self.cycle_mode()
        elif event == 'estop':
            engaged = self.toggle_estop()
            where = f' ({source})' if source else ''
            self.node.get_logger().warning(f"e-stop {'engaged' if engaged else 'released'}{where}")
        elif event == 'record':
            self.toggle_record()
        else:
            return False
        return True

    def _call(self, client, value: bool, name: str, done) -> None:
        if not client.service_is_ready():
            self.failed_calls += 1
            self.node.get_logger().error(
                f'{self.node.resolve_service_name(name)} is not available '
                f"({'is the mux running?' if name == 'estop' else 'is the recorder running?'})")
            return
        future = client.call_async(SetBool.Request(data=value))
        future.add_done_callback(lambda f: done(value, f))

    def _estop_done(self, value: bool, future) -> None:
        response = self._result(future, 'estop')
        if response is not None and response.success:
            self.node.get_logger().warning(response.message or f'estop {value}')

    def _record_done(self, value: bool, future) -> None:
        response = self._result(future, 'recorder/record')
        if response is not None and response.success:
            self.recording = value
            self.node.get_logger().info(f"recording {'on' if value else 'off'}")

    def _result(self, future, name: str):
        try:
            response = future.result()
        except Exception as error:
            self.failed_calls += 1
            self.node.get_logger().error(f'{name} call failed: {error}')
            return None
        if not response.success:
            self.node.get_logger().error(f'{name} refused: {response.message}')
        return response
