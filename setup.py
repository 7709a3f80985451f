from glob import glob

from setuptools import find_packages, setup

package_name = 'donkey_ros'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'bench']),
    package_data={'donkey_ros': ['sim/tracks/*.yaml', 'web/static/*', 'models/*.tflite',
                                  'models/*.json']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
        ('share/' + package_name + '/config', glob('config/*.yaml') + glob('config/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='donkey_ros developers',
    maintainer_email='donkey_ros@example.com',
    description='DonkeyCar-style self-driving RC car as ROS 2 nodes, with a built-in simulator.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            # The command-line tool (drive, tracks, params, ...).
            'donkey-ros = donkey_ros.cli:main',
            # ROS 2 nodes (executables for `ros2 run donkey_ros X` and launch files).
            'sim = donkey_ros.sim.sim_node:main',
            'expert = donkey_ros.sim.expert_node:main',
            'mux = donkey_ros.control.mux_node:main',
            'web = donkey_ros.web.web_node:main',
            'overlay = donkey_ros.monitor.overlay_node:main',
            'recorder = donkey_ros.recording.recorder_node:main',
            'actuator = donkey_ros.actuation.actuator_node:main',
            'camera = donkey_ros.camera.camera_node:main',
            'joy_teleop = donkey_ros.teleop.joy_teleop_node:main',
            'keyboard_teleop = donkey_ros.teleop.keyboard_teleop:main',
            'style_transfer = donkey_ros.style.style_node:main',
            'pilot = donkey_ros.learning.pilot_node:main',
            # The car's camera, pilot, mux and actuator in one process (car.launch.py
            # single_process:=true; the same as `donkey-ros car`).
            'car = donkey_ros.apps.car:console_main',
        ],
    },
)
