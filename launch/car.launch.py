"""The car on the Pi: camera, actuator (PCA9685), drive-mode mux, pilot, recorder, joystick.

    ros2 launch donkey_ros car.launch.py model:=/home/pi/models/pilot.tflite mode:=user

Start in `user` mode and switch to `pilot_steer` / `pilot` from the joystick or the web page.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.logging import get_logger
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from donkey_ros.launch_support import JOY_PACKAGE, joystick_plan, package_installed


def joystick_nodes(context, config, namespace):
    """joy_node and joy_teleop when asked for and the joy package is installed; else one warning."""
    start, warning = joystick_plan(IfCondition(LaunchConfiguration('joystick')).evaluate(context),
                                   package_installed(JOY_PACKAGE))
    if warning:
        get_logger('car.launch').warning(warning)
    if not start:
        return []
    return [
        Node(package='joy', executable='joy_node', name='joy', namespace=namespace),
        Node(package='donkey_ros', executable='joy_teleop', name='joy_teleop',
             namespace=namespace, parameters=[config], output='screen'),
    ]


def generate_launch_description():
    config = LaunchConfiguration('config')
    namespace = LaunchConfiguration('namespace')
    arguments = [
        DeclareLaunchArgument(
            'config', description='ROS 2 parameter file for all nodes',
            default_value=PathJoinSubstitution([FindPackageShare('donkey_ros'), 'config', 'car.yaml'])),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the car'),
        DeclareLaunchArgument('mode', default_value='user',
                              description='drive mode at start: user, pilot_steer or pilot'),
        DeclareLaunchArgument('model', default_value='',
                              description='pilot model (.tflite); empty = the shipped default'),
        DeclareLaunchArgument('joystick', default_value='true',
                              description='start the joy driver and joy_teleop (off, with a '
                              'warning, when the joy package is not installed)'),
        DeclareLaunchArgument('web', default_value='true', description='start the web controller'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='start rviz2 and the overlay node'),
        DeclareLaunchArgument('single_process', default_value='false',
                              description='camera, pilot, mux and actuator in one process '
                                          '(the car executable; docs/hardware.md)'),
        DeclareLaunchArgument('intra_process', default_value='false',
                              description='with single_process: frames and commands go from '
                                          'node to node inside the process, not through DDS'),
    ]
    single_process = LaunchConfiguration('single_process')
    # Nodes of other packages first: if one is not installed, launch stops before ours start.
    nodes = [
        OpaqueFunction(function=joystick_nodes, args=[config, namespace]),
        Node(package='rviz2', executable='rviz2', name='rviz', namespace=namespace,
             condition=IfCondition(LaunchConfiguration('rviz')),
             arguments=['-d', PathJoinSubstitution(
                 [FindPackageShare('donkey_ros'), 'config', 'donkey.rviz'])]),
        GroupAction(condition=UnlessCondition(single_process), actions=[
            Node(package='donkey_ros', executable='camera', name='camera', namespace=namespace,
                 parameters=[config], output='screen'),
            Node(package='donkey_ros', executable='actuator', name='actuator',
                 namespace=namespace, parameters=[config], output='screen'),
            Node(package='donkey_ros', executable='mux', name='mux', namespace=namespace,
                 parameters=[config, {'mode': LaunchConfiguration('mode')}], output='screen'),
            Node(package='donkey_ros', executable='pilot', name='pilot', namespace=namespace,
                 parameters=[config, {'model_path': LaunchConfiguration('model')}],
                 output='screen'),
        ]),
        # The same four nodes in one process (no name=: it would rename all four).
        Node(package='donkey_ros', executable='car', namespace=namespace, parameters=[config],
             arguments=['--mode', LaunchConfiguration('mode'),
                        '--model', LaunchConfiguration('model'),
                        '--intra-process', LaunchConfiguration('intra_process')],
             output='screen', condition=IfCondition(single_process)),
        Node(package='donkey_ros', executable='recorder', name='recorder', namespace=namespace,
             parameters=[config], output='screen'),
        Node(package='donkey_ros', executable='web', name='web', namespace=namespace,
             parameters=[config], output='screen', condition=IfCondition(LaunchConfiguration('web'))),
        Node(package='donkey_ros', executable='overlay', name='overlay', namespace=namespace,
             parameters=[config], condition=IfCondition(LaunchConfiguration('rviz'))),
    ]
    return LaunchDescription(arguments + nodes)
