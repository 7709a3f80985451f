"""Every node publishes its health on /diagnostics at 1 Hz, named after its fully qualified name.

Each node class that exists is started in one real rclpy graph (each in its own namespace, so
they do not feed each other) and an independent subscriber reads /diagnostics. Node modules that
do not exist yet are skipped with the reason; a node that exists but publishes nothing, publishes
under another name, or reports none of the values people need (rates, latency, drops, errors,
hardware state) fails.
"""
from __future__ import annotations

import importlib
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter

# What a key must look like to count as each kind of value people need.
KINDS = {
    'rate': r'fps|rate|_hz|per_second|frames',
    'latency': r'latency|_ms|age|seconds',
    'drops': r'drop|skipped|rejected',
    'errors': r'error|rejected|fail',
    'hardware': r'board|backend|state|source|model|recording|track|pad|url|odom|stream|styles',
}


@dataclass
class Spec:
    module: str
    cls: str
    kinds: tuple[str, ...]
    params: dict = field(default_factory=dict)
    keys: tuple[str, ...] = ()  # exact keys that must be there


def camera_folder(tmp_path_factory) -> str:
    from PIL import Image

    folder = tmp_path_factory.mktemp('frames')
    for i in range(3):
        Image.fromarray(np.full((120, 160, 3), i * 60, np.uint8)).save(folder / f'{i}.png')
    return str(folder)


SPECS = {
    'sim': Spec('donkey_ros.sim.sim_node', 'SimNode', ('rate', 'errors', 'hardware'),
                keys=('laps', 'off_track_count')),
    'expert': Spec('donkey_ros.sim.expert_node', 'ExpertNode', ('hardware',)),
    'mux': Spec('donkey_ros.control.mux_node', 'MuxNode', ('latency', 'errors'),
                keys=('mode', 'estop')),
    'actuator': Spec('donkey_ros.actuation.actuator_node', 'ActuatorNode',
                     ('latency', 'errors', 'hardware'), {'backend': 'dry_run'}),
    'camera': Spec('donkey_ros.camera.camera_node', 'CameraNode', ('rate', 'errors', 'hardware'),
                   {'backend': 'file', 'path': '<frames>'}),
    'recorder': Spec('donkey_ros.recording.recorder_node', 'RecorderNode',
                     ('rate', 'drops', 'errors', 'hardware'), {'folder': '<tmp>'},
                     keys=('recording',)),
    'pilot': Spec('donkey_ros.learning.pilot_node', 'PilotNode',
                  ('latency', 'drops', 'errors', 'hardware')),
    'joy_teleop': Spec('donkey_ros.teleop.joy_teleop_node', 'JoyTeleopNode',
                       ('errors', 'hardware')),
    'keyboard_teleop': Spec('donkey_ros.teleop.keyboard_teleop', 'KeyboardTeleopNode',
                            ('errors',)),
    'style_transfer': Spec('donkey_ros.style.style_node', 'StyleNode', ('errors', 'hardware'),
                           {'warmup_sizes': ['16x16']}),
    'web': Spec('donkey_ros.web.web_node', 'WebNode', ('rate', 'drops', 'errors', 'hardware'),
                {'port': 0}, keys=('clients', 'refused_requests')),
    'overlay': Spec('donkey_ros.monitor.overlay_node', 'OverlayNode',
                    ('rate', 'latency', 'drops', 'hardware')),
}


def load(name: str, spec: Spec):
    """The node class, or None (with the reason) when its module does not exist yet.

    The class is ``spec.cls`` or else the module's class whose ``NODE_NAME`` is ``name``.
    """
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as error:
        if error.name and (spec.module == error.name or spec.module.startswith(error.name + '.')):
            return None, f'{spec.module} does not exist yet'
        return None, f'FAILED: {spec.module} cannot be imported: {error}'
    cls = getattr(module, spec.cls, None) or next(
        (value for value in vars(module).values() if isinstance(value, type)
         and getattr(value, 'NODE_NAME', None) == name and value.__module__ == spec.module), None)
    if cls is None:
        return None, f'FAILED: {spec.module} has no node class with NODE_NAME {name!r}'
    return cls, ''


@pytest.fixture(scope='module')
def running(tmp_path_factory):
    """All existing nodes in one graph for ~2.5 s; {name: (node, statuses, start error)}."""
    from rosgraph import RosGraph

    frames = camera_folder(tmp_path_factory)
    tmp = str(tmp_path_factory.mktemp('bags'))
    with RosGraph() as graph:
        statuses: dict[str, list] = {}

        def on_array(array: DiagnosticArray) -> None:
            for status in array.status:
                statuses.setdefault(status.name, []).append((time.monotonic(), status))

        graph.node('diag_reader').create_subscription(
            DiagnosticArray, '/diagnostics', on_array, 50)
        nodes = {}
        for name, spec in SPECS.items():
            cls, reason = load(name, spec)
            if cls is None:
                nodes[name] = (None, reason)
                continue
            overrides = [Parameter(k, value=frames if v == '<frames>' else tmp if v == '<tmp>'
                                   else v) for k, v in spec.params.items()]
            try:
                node = graph.add(cls, namespace=f'{graph.namespace}/{name}',
                                 parameter_overrides=overrides)
            except Exception as error:  # reported by the node's own test
                nodes[name] = (None, f'FAILED: {type(error).__name__}: {error}')
                continue
            nodes[name] = (node, '')
        started = time.monotonic()
        expected = [n.get_fully_qualified_name() for n, _ in nodes.values() if n is not None]
        # Three reports each (1 Hz; the rate is judged over two gaps, so one callback that a busy
        # executor ran late does not decide it), or give up after 6 s.
        graph.wait_for(lambda: all(len(statuses.get(name, [])) >= 3 for name in expected), 6.0)
        yield {name: (node, reason, statuses.get(node.get_fully_qualified_name(), [])
                      if node is not None else [], started)
               for name, (node, reason) in nodes.items()}


@pytest.mark.parametrize('name', list(SPECS))
def test_node_publishes_diagnostics(running, name):
    node, reason, statuses, started = running[name]
    if node is None:
        if reason.startswith('FAILED'):
            pytest.fail(f'{name} did not start: {reason}')
        pytest.skip(reason)
    fqn = node.get_fully_qualified_name()
    assert statuses, f'{name}: nothing on /diagnostics named {fqn}'
    assert len(statuses) >= 2, f'{name}: one report in 6 s; expected 1 Hz'
    times = [t for t, _ in statuses]
    gaps = np.diff(times)
    # 1 Hz, with room for a busy 2-core machine.
    assert 0.7 < gaps.mean() < 1.5 and gaps.max() < 2.5, f'{name}: not 1 Hz: gaps {gaps}'
    status: DiagnosticStatus = statuses[-1][1]
    assert status.name == fqn
    assert status.level in (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR)
    assert status.message
    keys = {kv.key for kv in status.values}
    spec = SPECS[name]
    for kind in spec.kinds:
        assert any(re.search(KINDS[kind], key) for key in keys), \
            f'{name}: no {kind} value among {sorted(keys)}'
    for key in spec.keys:
        assert key in keys, f'{name}: {key!r} missing from {sorted(keys)}'


def test_diagnostics_names_differ_between_namespaces(running):
    names = [node.get_fully_qualified_name() for node, *_ in running.values() if node]
    assert len(names) == len(set(names)) >= 3
