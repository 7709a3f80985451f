"""The TFLite runtime: LiteRT's interpreter, or tflite_runtime's (older Raspberry Pi OS).

One place that finds it, for the pilot's models (donkey_ros/learning) and the style networks
(donkey_ros/style).
"""
from __future__ import annotations

from donkey_ros.common.errors import DonkeyRosError


class RuntimeMissingError(DonkeyRosError):
    """No TFLite runtime is installed."""


def interpreter_class():
    """LiteRT's ``Interpreter``, or tflite_runtime's where that is what is installed.

    Raises:
        RuntimeMissingError: neither is installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise RuntimeMissingError('no TFLite runtime: pip install ai-edge-litert '
                                      '(or tflite-runtime on older Raspberry Pi OS)') from None
    return Interpreter
