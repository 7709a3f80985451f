"""Publishing a node's health on /diagnostics at 1 Hz (diagnostic_msgs/DiagnosticArray)."""
from __future__ import annotations

from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from donkey_ros.common.clock import create_steady_timer
from donkey_ros.common.params import unknown_parameters

OK = DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR
STALE = DiagnosticStatus.STALE

Report = tuple[int, str, dict]
"""(level, message, values): what a node says about itself."""


class DiagnosticsPublisher:
    """Calls ``report()`` every ``period`` s and publishes it as one DiagnosticStatus.

    The status name is the node's fully qualified name, so two cars in two namespaces differ.
    """

    def __init__(self, node, report: Callable[[], Report], period: float = 1.0,
                 hardware_id: str = '') -> None:
        self._node = node
        self._report = report
        self._hardware_id = hardware_id
        self._publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = create_steady_timer(node, period, self.publish)

    def publish(self) -> None:
        try:
            level, message, values = self._report()
        except Exception as error:  # reporting must never take the node down
            level, message, values = ERROR, f'diagnostics failed: {error}', {}
        unknown = unknown_parameters(self._node)
        if unknown:  # given at start and ignored: not fine until the node restarts without them
            level = max(level, WARN)
            message = '; '.join([message] + unknown)
        status = DiagnosticStatus(
            level=level, name=self._node.get_fully_qualified_name(), message=message,
            hardware_id=self._hardware_id,
            values=[KeyValue(key=str(k), value=_text(v)) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array)


def _text(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else str(value)
