"""Parameters: rclpy descriptors, whole-batch changes, unknown names, parameter files as rcl reads
them, and start-up argument errors as one line."""
import os
import subprocess
import sys
import textwrap
import threading

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from donkey_ros.common.param_file import ParamFileError, node_params, read_param_file
from donkey_ros.common.params import descriptor
from donkey_ros.control.mux_node import MuxNode
from donkey_ros.resources import config_file, node_modules


def all_params():
    return [(module.NODE_NAME, spec) for module in node_modules().values()
            for spec in module.PARAMS]


# ---- descriptors --------------------------------------------------------------------------------

def test_every_parameter_has_a_real_type_range_and_description():
    types = {'bool': ParameterType.PARAMETER_BOOL, 'int': ParameterType.PARAMETER_INTEGER,
             'float': ParameterType.PARAMETER_DOUBLE, 'str': ParameterType.PARAMETER_STRING}
    checked = 0
    for node, spec in all_params():
        d = descriptor(spec)
        assert not d.dynamic_typing, f'{node}.{spec.name}'
        assert d.description and d.read_only == spec.read_only
        kind = spec.type_name
        if kind in types:
            assert d.type == types[kind], f'{node}.{spec.name}'
        if kind in ('int', 'float') and spec.min is not None:
            bounds = (d.integer_range or d.floating_point_range)[0]
            assert bounds.from_value == spec.min, f'{node}.{spec.name}'
            if spec.max is not None:
                assert bounds.to_value == spec.max
            checked += 1
    assert checked > 50


def test_a_running_node_describes_its_ranges_and_rclpy_enforces_them(graph):
    mux = graph.add(MuxNode)
    timeout = mux.describe_parameters(['timeout'])[0]
    assert timeout.type == ParameterType.PARAMETER_DOUBLE and not timeout.dynamic_typing
    assert timeout.floating_point_range[0].from_value > 0
    result = mux.set_parameters([Parameter('timeout', value='long')])[0]
    assert not result.successful and mux.params.timeout == 0.5
    result = mux.set_parameters([Parameter('timeout', value=1)])[0]  # an int is taken as float
    assert result.successful and mux.params.timeout == 1.0 and mux.mux.timeout == 1.0


# ---- whole batches ------------------------------------------------------------------------------

def test_a_refused_batch_leaves_no_effect_behind(graph, tmp_path):
    from donkey_ros.actuation.actuator_node import ActuatorNode
    node = graph.add(ActuatorNode, parameter_overrides=[Parameter('backend', value='emulated')])
    mapping = node.controller.mapping
    result = node.set_parameters_atomically([
        Parameter('steering_left_pwm', value=400), Parameter('max_forward', value=0.5),
        Parameter('steering_right_pwm', value=5000)])          # out of range: whole batch refused
    assert not result.successful
    assert node.controller.mapping is mapping and node.params.steering_left_pwm == 460
    # A batch that is only valid as a whole (left and right swapped at once) is accepted.
    result = node.set_parameters_atomically([
        Parameter('steering_left_pwm', value=290), Parameter('steering_right_pwm', value=460)])
    assert result.successful
    assert node.controller.mapping is not mapping
    assert (node.params.steering_left_pwm, node.params.steering_right_pwm) == (290, 460)


def test_every_sim_parameter_set_at_run_time_is_applied(graph):
    from donkey_ros.sim.sim_node import SimNode
    sim = graph.add(SimNode)
    for name, value, applied in [
            ('noise', 3.0, lambda: sim.sim.renderer.noise == 3.0),
            ('fov_deg', 90.0, lambda: sim.sim.renderer.camera.fov_deg == 90.0),
            ('track', 'waveshare', lambda: sim.sim.track.name == 'waveshare'),
            ('max_speed', 2.0, lambda: sim.sim.vehicle.params.max_speed == 2.0),
            ('rate', 10.0, lambda: sim.timer.timer_period_ns == 100_000_000)]:
        assert sim.set_parameters([Parameter(name, value=value)])[0].successful, name
        assert applied(), name
    result = sim.set_parameters([Parameter('track', value='/no/such/track.yaml')])[0]
    assert not result.successful and 'track' in result.reason
    assert sim.sim.track.name == 'waveshare' and sim.params.track == 'waveshare'


def test_expert_and_mux_apply_run_time_changes(graph):
    from donkey_ros.sim.expert_node import ExpertNode
    expert = graph.add(ExpertNode)
    assert expert.set_parameters_atomically([Parameter('speed', value=2.5),
                                             Parameter('track', value='waveshare')]).successful
    assert expert.controller.target_speed == 2.5 and expert.controller.track.name == 'waveshare'
    result = expert.set_parameters([Parameter('track', value='/no/such/track.yaml')])[0]
    assert not result.successful and expert.controller.track.name == 'waveshare'
    mux = graph.add(MuxNode)
    assert mux.set_parameters([Parameter('rate', value=10.0)])[0].successful
    assert mux.timer.timer_period_ns == 100_000_000


# ---- unknown names ------------------------------------------------------------------------------

def test_a_run_time_set_of_an_unknown_name_is_refused_naming_it(graph):
    mux = graph.add(MuxNode)
    client_node = graph.node('client')
    client = client_node.create_client(SetParameters, f'{graph.namespace}/mux/set_parameters')
    assert client.wait_for_service(timeout_sec=10)
    request = SetParameters.Request(parameters=[Parameter('mdoe', value='pilot').to_parameter_msg()])
    future = client.call_async(request)
    assert graph.wait_for(future.done, 10)
    reason = future.result().results[0].reason
    assert "unknown parameter 'mdoe' (did you mean 'mode'?)" in reason, reason
    assert mux.params.mode == 'user'


def test_unknown_overrides_warn_and_diagnostics_show_them_until_restart(graph):
    statuses = []
    probe = graph.node('diag_probe')
    probe.create_subscription(DiagnosticArray, '/diagnostics',
                              lambda msg: statuses.extend(msg.status), 10)
    mux = graph.add(MuxNode, parameter_overrides=[Parameter('mdoe', value='pilot')])
    name = mux.get_fully_qualified_name()
    assert graph.wait_for(lambda: any(s.name == name for s in statuses), 10)
    status = [s for s in statuses if s.name == name][-1]
    assert status.level >= DiagnosticStatus.WARN
    assert "unknown parameter 'mdoe' (did you mean 'mode'?)" in status.message


def run_node(module, *ros_args, timeout=30):
    """Runs a node executable until it exits (or stops it): (exit code, output)."""
    code = f'from {module} import main; main()'
    process = subprocess.Popen([sys.executable, '-c', code, '--ros-args', *ros_args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    return process.returncode, output


def test_misspelled_names_on_the_command_line_and_in_files_are_named_at_start(tmp_path):
    params = tmp_path / 'pilot.yaml'
    params.write_text('/**/pilot:\n  ros__parameters:\n    thrads: 2\n')
    lines = []
    process = subprocess.Popen(
        [sys.executable, '-c', 'from donkey_ros.learning.pilot_node import main; main()',
         '--ros-args', '-r', f'__ns:=/unknown{os.getpid()}', '-p', 'model:=/my.tflite',
         '--params-file', str(params)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stopper = threading.Timer(60.0, process.terminate)  # the warnings never came: stop reading
    stopper.start()
    try:
        for line in process.stdout:
            lines.append(line)
            if 'thrads' in ''.join(lines) and "'model'" in ''.join(lines):
                break
    finally:
        stopper.cancel()
        process.terminate()
        rest, _ = process.communicate(timeout=20)
    output = ''.join(lines) + rest
    assert "unknown parameter 'model' (did you mean 'model_path'?)" in output, output
    assert "unknown parameter 'thrads' (did you mean 'threads'?)" in output, output


# ---- start-up argument errors -------------------------------------------------------------------

@pytest.mark.parametrize('case', ['missing file', 'garbage file', 'empty value', 'no rule'])
def test_bad_ros_arguments_are_one_line_naming_the_file_or_parameter(case, tmp_path):
    garbage = tmp_path / 'garbage.yaml'
    garbage.write_bytes(b'\x00\x01\xfe: [')
    args, wanted = {
        'missing file': (['--params-file', str(tmp_path / 'nope.yaml')],
                         f'{tmp_path / "nope.yaml"} does not exist'),
        'garbage file': (['--params-file', str(garbage)], f'parameter file {garbage}'),
        'empty value': (['-p', 'width:='], "parameter 'width' has no value"),
        'no rule': (['-p', 'width'], "'-p width' is not a parameter rule"),
    }[case]
    code, output = run_node('donkey_ros.sim.sim_node', *args)
    assert code == 2, output
    assert wanted in output and 'Traceback' not in output, output
    ours = [line for line in output.splitlines() if not line.startswith('[ERROR] [') or
            '[rcl]' not in line]
    assert len(ours) == 1, output  # one line of ours (rcl adds its own "Failed to parse")


# ---- parameter files as rcl reads them ----------------------------------------------------------

FILES = {
    'root then wildcard': """
        /sim:
          ros__parameters: {width: 1, noise: 1.0}
        /**/sim:
          ros__parameters: {width: 2}
        """,
    'wildcard then root': """
        /**/sim:
          ros__parameters: {width: 2, noise: 2.0}
        sim:
          ros__parameters: {width: 1}
        """,
    'all nodes last': """
        /**/sim:
          ros__parameters: {width: 2, seed: 5}
        /ns/sim:
          ros__parameters: {width: 3}
        /**:
          ros__parameters: {seed: 9}
        """,
    'nested namespaces and parameter groups': """
        ns:
          sim:
            ros__parameters:
              width: 4
              group: {a: 1, b: {c: true}}
        /*/sim:
          ros__parameters: {height: 7}
        """,
}


def rclpy_overrides(files, node, namespace):
    """The parameter overrides rclpy itself gives the node for these files (command-line order)."""
    args = ['--ros-args']
    for path in files:
        args += ['--params-file', str(path)]
    context = Context()
    rclpy.init(args=args, context=context)
    try:
        created = Node(node, namespace=namespace, context=context,
                       start_parameter_services=False)
        try:
            return {name: (list(p.value) if isinstance(p.value, (list, tuple)) or
                           hasattr(p.value, 'tolist') else p.value)
                    for name, p in created._parameter_overrides.items()}
        finally:
            created.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.parametrize('case', sorted(FILES))
@pytest.mark.parametrize('namespace', ['/', '/ns', '/a/b'])
def test_sections_merge_exactly_as_rcl_merges_them(case, namespace, tmp_path):
    path = tmp_path / 'params.yaml'
    path.write_text(textwrap.dedent(FILES[case]))
    ours = node_params(read_param_file(path), 'sim', namespace) or {}
    assert ours == rclpy_overrides([path], 'sim', namespace)


def test_several_files_merge_as_rcl_merges_them(tmp_path):
    first, second = tmp_path / 'first.yaml', tmp_path / 'second.yaml'
    first.write_text('/**/sim:\n  ros__parameters: {width: 1, height: 1}\n'
                     '/sim:\n  ros__parameters: {width: 2}\n')
    second.write_text('/**/sim:\n  ros__parameters: {width: 3, height: 3}\n')
    for files in ([first, second], [second, first]):
        ours = node_params([read_param_file(f) for f in files], 'sim') or {}
        assert ours == rclpy_overrides(files, 'sim', '/')


def test_the_loop_runs_the_simulator_the_sim_node_runs(graph):
    """The loop's simulator settings are what the sim node gets from config/sim.yaml."""
    from donkey_ros.sim.settings import sim_settings
    from donkey_ros.sim.factory import SIM_PARAMS

    overrides = rclpy_overrides([config_file('sim.yaml')], 'sim', '/')
    settings = sim_settings()
    assert settings.noise == overrides['noise'] and settings.noise > 0
    assert settings.lighting_variation == overrides['lighting_variation'] > 0
    for spec in SIM_PARAMS:
        assert getattr(settings, spec.name) == overrides.get(spec.name, spec.default), spec.name


def test_an_edit_lands_in_the_section_that_wins_and_keeps_comments(tmp_path):
    from donkey_ros.actuation.calibrate import read_actuator_params, update_actuator_params

    path = tmp_path / 'car.yaml'
    path.write_text('# my car\n/actuator:\n  ros__parameters:\n    steering_left_pwm: 1  # old\n'
                    '/**/actuator:\n  ros__parameters:\n    steering_left_pwm: 2  # wins\n')
    assert read_actuator_params(str(path)) == {'steering_left_pwm': 2}
    update_actuator_params(str(path), {'steering_left_pwm': 444})
    text = path.read_text()
    assert '# my car' in text and '# wins' in text and 'steering_left_pwm: 1  # old' in text
    assert read_actuator_params(str(path)) == {'steering_left_pwm': 444}
    assert rclpy_overrides([path], 'actuator', '/')['steering_left_pwm'] == 444


def test_a_garbage_parameter_file_is_one_line_naming_it(tmp_path):
    from donkey_ros.actuation.calibrate import read_actuator_params

    garbage = tmp_path / 'car.yaml'
    garbage.write_bytes(b'\xff\xfe\x00garbage')
    with pytest.raises(ParamFileError, match=str(garbage)):
        read_actuator_params(str(garbage))


def test_doctor_names_the_parameter_a_misspelled_one_was_meant_to_be(tmp_path):
    from donkey_ros.doctor.doctor import check_config, load_car_config

    path = tmp_path / 'car.yaml'
    path.write_text('/**/actuator:\n  ros__parameters:\n    steering_left_pmw: 400\n')
    result = check_config(load_car_config(str(path)))
    assert "actuator.steering_left_pmw (did you mean 'steering_left_pwm'?)" in result.message


# ---- every run-time parameter is applied or refused ---------------------------------------------

# Start-up values a node needs here (no hardware, no fixed port), and valid new values for free
# strings; every other new value is derived from the parameter's type, range and choices.
NEEDS = {'actuator': {'backend': 'emulated'}, 'web': {'port': 0},
         'style_transfer': {'warmup_sizes': []}}
NEW_STRINGS = {'track': 'waveshare', 'folder': '{tmp}/bags'}


def new_value(spec, current, tmp):
    if spec.name in NEW_STRINGS:
        return NEW_STRINGS[spec.name].format(tmp=tmp)
    if spec.choices:
        return next(c for c in spec.choices if c != current)
    if isinstance(current, bool):
        return not current
    if isinstance(current, int):  # a few steps away (a layout's default is often current + 1)
        return next(v for v in (current + 3, current + 1, current - 1)
                    if (spec.min is None or v >= spec.min) and (spec.max is None or v <= spec.max))
    if isinstance(current, float):
        top = spec.max if spec.max is not None else current * 2 + 1.0
        return current + (top - current) / 2 if top > current else (current + spec.min) / 2
    if isinstance(current, str):
        return current + '2' if current else 'x'
    return None  # lists: none is run-time settable today


def read_per_use(module, cls) -> set:
    """Parameter names the node class reads as ``self.params.NAME`` (or through an alias of
    ``self.params``) outside ``__init__`` and validation: read where they are used, so a change
    applies by itself."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(cls))
    names = set()
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef) or function.name in ('__init__',
                                                                        '_check_param'):
            continue
        aliases = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and \
                    node.value.attr == 'params':
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(function):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Attribute) and owner.attr == 'params') or (
                    isinstance(owner, ast.Name) and owner.id in aliases):
                names.add(node.attr)
    return names


def fingerprint(value, skip, seen, depth=0):
    """What a node holds, deeply (its own objects, and which ones: a rebuilt object is a change),
    leaving out rclpy's internals."""
    import collections

    import numpy as np
    from rclpy.timer import Timer

    if isinstance(value, (bool, int, float, str, bytes, type(None))):
        return value
    if isinstance(value, np.ndarray):  # derived data (buffers may be uninitialised)
        return ('array', value.shape, str(value.dtype))
    if id(value) in seen or depth > 8:
        return '...'
    seen.add(id(value))
    if isinstance(value, Timer):
        return ('timer', value.timer_period_ns)
    if isinstance(value, (list, tuple, set, frozenset, collections.deque)):
        return tuple(fingerprint(v, (), seen, depth + 1) for v in list(value)[:100])
    if isinstance(value, dict):
        return tuple((str(k), fingerprint(v, (), seen, depth + 1))
                     for k, v in list(value.items())[:200])
    if type(value).__module__.startswith(('donkey_ros', 'types')) and hasattr(value, '__dict__'):
        return (type(value).__name__, id(value), tuple(
            (k, fingerprint(v, (), seen, depth + 1)) for k, v in sorted(vars(value).items())
            if k not in skip))
    if hasattr(value, '__dataclass_fields__'):
        return fingerprint(dict(vars(value)), (), seen, depth)
    return type(value).__name__


def test_every_run_time_parameter_is_applied_or_refused(tmp_path):
    """For every node and every parameter that is not read_only: a valid new value set at run time
    is refused, or it changes what the node holds, or the node reads it where it uses it."""
    import inspect

    context = Context()
    rclpy.init(context=context)
    bare = Node('bare', context=context, start_parameter_services=False)
    rclpy_attributes = set(vars(bare)) | {'params', '_staged', '_staged_sim', '_staged_runner'}
    ignored = []
    try:
        for script, module in sorted(node_modules().items()):
            settable = [s for s in module.PARAMS if not s.read_only]
            if not settable:
                continue
            cls = next(c for _, c in inspect.getmembers(module, inspect.isclass)
                       if issubclass(c, Node) and getattr(c, 'NODE_NAME', '') == module.NODE_NAME)
            per_use = read_per_use(module, cls)
            overrides = [Parameter(k, value=v) for k, v in NEEDS.get(script, {}).items()]
            if script == 'recorder':
                overrides.append(Parameter('folder', value=str(tmp_path / 'rec')))
            node = cls(context=context, namespace=f'/audit{os.getpid()}',
                       parameter_overrides=overrides)
            try:
                for spec in settable:
                    current = node.get_parameter(spec.name).value
                    value = new_value(spec, current, tmp_path)
                    if value is None:
                        continue
                    before = fingerprint(node, rclpy_attributes, set())
                    result = node.set_parameters([Parameter(spec.name, value=value)])[0]
                    if not result.successful or spec.name in per_use:
                        continue
                    if fingerprint(node, rclpy_attributes, set()) == before:
                        ignored.append(f'{script}.{spec.name} = {value!r}')
            finally:
                if hasattr(node, 'on_shutdown'):
                    node.on_shutdown()
                node.destroy_node()
    finally:
        bare.destroy_node()
        rclpy.shutdown(context=context)
    assert not ignored, 'accepted but not applied: ' + ', '.join(ignored)


@pytest.mark.parametrize('tool', ['calibrate', 'import-config'])
def test_tools_given_a_broken_parameter_file_say_so_in_one_line(tool, tmp_path):
    broken = tmp_path / 'car.yaml'
    broken.write_bytes(b'\xff\xfe\x00garbage' if tool == 'calibrate' else b'/**/actuator: [\n')
    myconfig = tmp_path / 'myconfig.py'
    myconfig.write_text('STEERING_LEFT_PWM = 460\nSTEERING_RIGHT_PWM = 290\n')
    args = {'calibrate': ['--config', str(broken), '--backend', 'emulated'],
            'import-config': [str(myconfig), '-o', str(broken)]}[tool]
    result = subprocess.run([sys.executable, '-m', 'donkey_ros.cli', tool, *args],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert 'Traceback' not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(broken) in lines[0], result.stderr
