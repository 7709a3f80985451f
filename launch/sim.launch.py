"""The simulator stack: sim (camera + car), expert driver (as the user), drive-mode mux.

    ros2 launch donkey_ros sim.launch.py track:=waveshare mode:=user namespace:=car1

Optional nodes follow their flags: pilot (pilot:=true, with model:=...), recorder (record:=true),
web controller (web:=true, the default), rviz with the overlay node (rviz:=true).
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    config = LaunchConfiguration('config')
    namespace = LaunchConfiguration('namespace')
    track = LaunchConfiguration('track')
    arguments = [
        DeclareLaunchArgument(
            'config', description='ROS 2 parameter file for all nodes',
            default_value=PathJoinSubstitution([FindPackageShare('donkey_ros'), 'config', 'sim.yaml'])),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the car'),
        DeclareLaunchArgument('track', default_value='oval',
                              description='shipped track name or track YAML path'),
        DeclareLaunchArgument('mode', default_value='user',
                              description='drive mode: user, pilot_steer or pilot'),
        DeclareLaunchArgument('pilot', default_value='false',
                              description='start the CNN pilot (drives in mode pilot/pilot_steer)'),
        DeclareLaunchArgument('model', default_value='',
                              description='pilot model (.tflite); empty = the shipped default'),
        DeclareLaunchArgument('record', default_value='false', description='record a bag'),
        DeclareLaunchArgument('web', default_value='true', description='start the web controller'),
        DeclareLaunchArgument('rviz', default_value='false',
                              description='start rviz2 and the overlay node'),
    ]
    # Nodes of other packages first: if one is not installed, launch stops before ours start.
    nodes = [
        Node(package='rviz2', executable='rviz2', name='rviz', namespace=namespace,
             condition=IfCondition(LaunchConfiguration('rviz')),
             arguments=['-d', PathJoinSubstitution(
                 [FindPackageShare('donkey_ros'), 'config', 'donkey.rviz'])]),
        Node(package='donkey_ros', executable='sim', name='sim', namespace=namespace,
             parameters=[config, {'track': track}], output='screen'),
        Node(package='donkey_ros', executable='expert', name='expert', namespace=namespace,
             parameters=[config, {'track': track}], output='screen'),
        Node(package='donkey_ros', executable='mux', name='mux', namespace=namespace,
             parameters=[config, {'mode': LaunchConfiguration('mode')}], output='screen'),
        Node(package='donkey_ros', executable='pilot', name='pilot', namespace=namespace,
             parameters=[config, {'model_path': LaunchConfiguration('model')}], output='screen',
             condition=IfCondition(LaunchConfiguration('pilot'))),
        Node(package='donkey_ros', executable='recorder', name='recorder', namespace=namespace,
             parameters=[config, {'autostart': True}], output='screen',
             condition=IfCondition(LaunchConfiguration('record'))),
        Node(package='donkey_ros', executable='web', name='web', namespace=namespace,
             parameters=[config], output='screen', condition=IfCondition(LaunchConfiguration('web'))),
        Node(package='donkey_ros', executable='overlay', name='overlay', namespace=namespace,
             parameters=[config], condition=IfCondition(LaunchConfiguration('rviz'))),
    ]
    return LaunchDescription(arguments + nodes)
