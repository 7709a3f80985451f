"""car.launch.py without a gamepad package: the decision (a plain function the launch file calls),
the real ament-index lookup, and that the launch file takes its joy nodes from that decision."""
import ast
from pathlib import Path

from donkey_ros.launch_support import JOY_PACKAGE, joystick_plan, package_installed

ROOT = Path(__file__).resolve().parent.parent
VENV_PREFIX = Path(__import__('sys').prefix)


def test_missing_joy_turns_the_gamepad_off_with_one_warning():
    start, warning = joystick_plan(True, joy_installed=False)
    assert start is False
    assert warning.count('\n') == 0 and 'joy' in warning and 'web' in warning
    assert 'joystick:=false' in warning and 'apt install' in warning


def test_installed_joy_starts_and_joystick_false_stays_quiet():
    assert joystick_plan(True, joy_installed=True) == (True, '')
    assert joystick_plan(False, joy_installed=False) == (False, '')
    assert joystick_plan(False, joy_installed=True) == (False, '')


def test_package_lookup_uses_the_ament_index(monkeypatch):
    # The venv's ROS wheels are an ament prefix: std_msgs is in its index, joy is not.
    assert (VENV_PREFIX / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'std_msgs').exists()
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(VENV_PREFIX))
    assert package_installed('std_msgs')
    assert not package_installed(JOY_PACKAGE)
    monkeypatch.delenv('AMENT_PREFIX_PATH')
    assert not package_installed('std_msgs')   # ROS not sourced: nothing is found, no traceback


def test_car_launch_starts_joy_nodes_only_through_the_decision():
    tree = ast.parse((ROOT / 'launch' / 'car.launch.py').read_text())
    functions = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    joystick = functions['joystick_nodes']
    calls = {getattr(c.func, 'id', None) for c in ast.walk(joystick) if isinstance(c, ast.Call)}
    assert {'joystick_plan', 'package_installed'} <= calls

    def executables(node):
        return {k.value.value for c in ast.walk(node) if isinstance(c, ast.Call)
                and getattr(c.func, 'id', None) == 'Node' for k in c.keywords
                if k.arg == 'executable' and isinstance(k.value, ast.Constant)}
    assert executables(joystick) == {'joy_node', 'joy_teleop'}
    others = executables(functions['generate_launch_description'])
    assert not others & {'joy_node', 'joy_teleop'}
    assert {'camera', 'actuator', 'mux', 'pilot', 'web'} <= others
