"""The simulator, expert and mux nodes in real rclpy graphs, and as processes."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.image import image_to_array
from donkey_ros.control.mux_node import MuxNode
from donkey_ros.sim.expert_node import ExpertNode
from donkey_ros.sim.sim_node import SimNode
from donkey_ros.sim.track import shipped_tracks


def params(**values):
    return [Parameter(k, value=v) for k, v in values.items()]


@pytest.mark.parametrize('width, height, rate', [(160, 120, 20.0), (320, 240, 30.0)])
def test_sim_publishes_images_of_the_declared_size_and_rate(graph, width, height, rate):
    graph.add(SimNode, parameter_overrides=params(width=width, height=height, rate=rate))
    ns = graph.namespace
    images = graph.collect(Image, f'{ns}/camera/image_raw', qos.IMAGE_RELIABLE)
    infos = graph.collect(CameraInfo, f'{ns}/camera/camera_info', qos.SENSOR)
    assert graph.wait_for(lambda: len(images) >= 3)
    start_count, start = len(images), time.monotonic()
    time.sleep(2.0)
    measured = (len(images) - start_count) / (time.monotonic() - start)
    assert measured == pytest.approx(rate, rel=0.15)
    frame = image_to_array(images[-1])
    assert frame.shape == (height, width, 3) and images[-1].encoding == 'rgb8'
    assert frame.std() > 5, 'the camera view should show a road, not a flat colour'
    assert infos and (infos[-1].width, infos[-1].height) == (width, height)
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))


def test_sim_car_obeys_cmd_and_stops_when_cmd_stops(graph):
    graph.add(SimNode, parameter_overrides=params(rate=50.0, cmd_timeout=0.3))
    ns = graph.namespace
    odoms = graph.collect(Odometry, f'{ns}/sim/odom', qos.SENSOR)
    probe = graph.node()
    cmd = probe.create_publisher(TwistStamped, f'{ns}/cmd', qos.COMMAND)
    assert graph.wait_for(lambda: odoms and cmd.get_subscription_count() == 1)
    for _ in range(50):  # 1 s of throttle
        cmd.publish(command_to_msg(DriveCommand(steering=0.0, throttle=0.5)))
        time.sleep(0.02)
    moving = odoms[-1].twist.twist.linear.x
    assert moving > 0.5
    assert graph.wait_for(lambda: odoms[-1].twist.twist.linear.x < 0.05, timeout=20.0), \
        'the car must coast to a stop once cmd goes silent'


def test_bad_cmd_values_never_move_the_car(graph):
    sim = graph.add(SimNode, parameter_overrides=params(rate=50.0))
    probe = graph.node()
    cmd = probe.create_publisher(TwistStamped, f'{graph.namespace}/cmd', qos.COMMAND)
    assert graph.wait_for(lambda: cmd.get_subscription_count() == 1)
    for _ in range(30):
        msg = command_to_msg(DriveCommand())
        msg.twist.linear.x, msg.twist.angular.z = float('nan'), float('inf')
        cmd.publish(msg)
        time.sleep(0.01)
    assert graph.wait_for(lambda: sim.rejected >= 30)
    assert sim.sim.status.speed == 0.0


@pytest.mark.slow
@pytest.mark.parametrize('track', shipped_tracks())
def test_expert_completes_a_lap_through_the_mux(graph, track):
    """sim -> odom -> expert -> user/cmd -> mux -> cmd -> sim, faster than real time."""
    sim = graph.add(SimNode, parameter_overrides=params(
        track=track, rate=100.0, time_scale=5.0, physics_substeps=2, width=80, height=60))
    graph.add(ExpertNode, parameter_overrides=params(track=track))
    graph.add(MuxNode)
    # Normally a lap takes a fifth of its real time; the limit allows for a machine so loaded
    # that the simulator only manages real time.
    lap_seconds = sim.sim.track.length / 1.5 * 1.3
    assert graph.wait_for(lambda: sim.sim.status.laps >= 1, timeout=lap_seconds + 15.0), \
        f'no lap after {sim.sim.status.progress:.1f} m of {sim.sim.track.length:.1f} m'
    assert sim.sim.status.off_track_count == 0


def ros_env():
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


def start_node(executable, *ros_args):
    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), executable), '--ros-args', *ros_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ros_env())


# Every node executable, with what it needs to start here (no hardware).
NODES = {
    'sim': [], 'expert': [], 'mux': [], 'pilot': [], 'overlay': [], 'joy_teleop': [],
    'actuator': ['-p', 'backend:=dry_run'],
    'camera': ['-p', 'device:=/nonexistent/video0'],  # keeps retrying; must still stop cleanly
    'web': ['-p', 'port:=0'],
    'recorder': ['-p', 'autostart:=true', '-p', 'folder:={tmp}'],
    'style_transfer': ['-p', 'warmup_sizes:=["16x16"]'],
}


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_every_node_exits_cleanly_on_signals(signum, tmp_path, graph):
    ns = f'/sig{os.getpid()}_{int(signum)}'
    processes = {name: start_node(name, '-r', f'__ns:={ns}', *[a.format(tmp=tmp_path) for a in args])
                 for name, args in NODES.items()}
    probe = graph.node()

    def missing():  # node name = executable name
        return set(NODES) - {n for n, space in probe.get_node_names_and_namespaces() if space == ns}
    # All of them up: each node in the graph (a loaded machine can take many seconds to import).
    assert graph.wait_for(lambda: not missing() or any(p.poll() is not None for p in processes.values()),
                          timeout=120.0, period=0.2), f'not up: {missing()}'
    for name, process in processes.items():
        assert process.poll() is None, f'{name} died: {process.stdout.read()}'
        process.send_signal(signum)
    for name, process in processes.items():
        output, _ = process.communicate(timeout=20)
        assert process.returncode == 0, f'{name}: exit {process.returncode}\n{output}'
        assert 'Traceback' not in output, f'{name}:\n{output}'


@pytest.mark.parametrize('ros_args, message', [
    (['-p', 'track:=no_such_track'], "parameter 'track'"),
    (['-p', 'rate:=-5.0'], "parameter 'rate' = -5.0 is out of range"),
    (['-p', 'width:=wide'], "parameter 'width' must be int"),
])
def test_bad_parameters_give_one_clear_error_and_no_traceback(ros_args, message):
    process = start_node('sim', *ros_args)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2, output
    assert message in output
    assert 'Traceback' not in output
    if 'no_such_track' in ros_args[1]:
        assert 'oval' in output, 'the error should list the shipped tracks'
