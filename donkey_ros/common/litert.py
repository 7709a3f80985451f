"""The TFLite runtime: LiteRT's interpreter.

One place that finds it, for the pilot's models (donkey_ros/learning) and the style networks
(donkey_ros/style).
"""
from __future__ import annotations

from donkey_ros.common.errors import DonkeyRosError


class RuntimeMissingError(DonkeyRosError):
    """No TFLite runtime is installed."""


def interpreter_class():
    """LiteRT's ``Interpreter`` (ai-edge-litert; it has wheels for the Pi's Python 3.12 on aarch64).

    Raises:
        RuntimeMissingError: it is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise RuntimeMissingError('no TFLite runtime: ai-edge-litert is not installed (on the car: '
                                  'scripts/pi_install.sh; elsewhere: pip install ai-edge-litert)'
                                  ) from None
    return Interpreter
