"""The style-transfer node: `stylize` and `list_styles` services, optionally a stylized stream.

    ros2 launch donkey_ros style.launch.py
    ros2 launch donkey_ros style.launch.py stream:=true stream_style:=style19 namespace:=car1

Parameters come from config/style.yaml (every one is documented in docs/style.md); the launch
arguments override the stream settings.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description():
    arguments = [
        DeclareLaunchArgument(
            'config', description='ROS 2 parameter file of the style_transfer node',
            default_value=PathJoinSubstitution(
                [FindPackageShare('donkey_ros'), 'config', 'style.yaml'])),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the car'),
        DeclareLaunchArgument('stream', default_value='false',
                              description='publish stylized camera frames on style/image'),
        DeclareLaunchArgument('stream_style', default_value='style7',
                              description='style of the stream (see donkey-ros stylize --list)'),
    ]
    node = Node(package='donkey_ros', executable='style_transfer', name='style_transfer',
                namespace=LaunchConfiguration('namespace'), output='screen',
                parameters=[LaunchConfiguration('config'),
                            {'stream': LaunchConfiguration('stream'),
                             'stream_style': LaunchConfiguration('stream_style')}])
    return LaunchDescription(arguments + [node])
