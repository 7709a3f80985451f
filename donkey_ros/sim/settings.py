"""The simulator as configured: the sim node's settings from ``config/sim.yaml``, and its timing.

One place for what every tool that builds a simulator outside the node (the loop's recording and
drives, the style experiment) must agree on with the sim node.
"""
from __future__ import annotations

from types import SimpleNamespace

from donkey_ros.common.errors import ConfigError
from donkey_ros.sim.factory import SIM_PARAMS, simulator_from_params
from donkey_ros.sim.simulator import Simulator

FRAME_RATE = 20.0        # camera frames per second: the sim node's default `rate`
PHYSICS_SUBSTEPS = 4     # physics steps per frame: the sim node's default `physics_substeps`


def sim_settings(**overrides) -> SimpleNamespace:
    """The sim node's parameter values: SIM_PARAMS defaults, then ``config/sim.yaml``, then
    ``overrides`` (``None`` values are skipped) - so a tool's simulator is the one
    ``donkey-ros drive`` runs.

    Raises:
        ConfigError: an override is not a simulator setting.
        ParamFileError: config/sim.yaml is unreadable.
    """
    from donkey_ros.common.param_file import node_params, read_param_file
    from donkey_ros.resources import config_file

    values = {p.name: p.default for p in SIM_PARAMS}
    # The sim node's section as rcl gives it to the node.
    configured = node_params(read_param_file(config_file('sim.yaml')), 'sim') or {}
    values.update({k: v for k, v in configured.items() if k in values})
    unknown = set(overrides) - set(values)
    if unknown:
        raise ConfigError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SimpleNamespace(**values)


def configured_simulator(**overrides) -> Simulator:
    """A Simulator built from ``sim_settings(**overrides)``.

    Raises:
        ConfigError: an unknown setting, or a track that cannot be loaded.
    """
    return simulator_from_params(sim_settings(**overrides))
