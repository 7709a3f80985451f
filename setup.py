"""donkey_ros: the ament_python package at the root of this repository.

The custom interfaces live in the nested rosidl package ``donkey_ros_interfaces/`` (CMake). colcon
and rosdep stop looking for packages at this directory's package.xml, so a workspace holding a
plain clone would never build them: when colcon installs this package (``colcon build``, with or
without ``--symlink-install``), the install command below also configures, builds and installs
``donkey_ros_interfaces`` with CMake into the same install prefix (install/donkey_ros), so
``source install/setup.bash`` finds both. package.xml declares the rosidl build dependencies, so
``rosdep install --from-paths src --ignore-src -y`` installs what that build needs.
See docs/interfaces.md ("Why the root package builds the interfaces").

Not done for wheel builds (pip install, pip install -e): the development virtualenv builds the
interfaces with scripts/build_interfaces.sh. DONKEY_ROS_BUILD_INTERFACES=1/0 forces it on/off.

The nodes' interpreter: when the venv of the pip-only dependencies exists at build time
(``~/.local/share/donkey_ros/venv``, made by scripts/pi_install.sh; DONKEY_ROS_PIP_VENV overrides),
the installed console scripts start with its python, which sees apt's packages too
(--system-site-packages). Otherwise they use the python that runs the build.
"""
import os
import shutil
import subprocess
import sys
from glob import glob

from setuptools import find_packages, setup
from setuptools.command.develop import develop
from setuptools.command.install import install

package_name = 'donkey_ros'
HERE = os.path.dirname(os.path.realpath(__file__))
INTERFACES = os.path.join(HERE, 'donkey_ros_interfaces')
PIP_VENV = os.environ.get('DONKEY_ROS_PIP_VENV') or os.path.join(
    os.path.expanduser('~'), '.local', 'share', 'donkey_ros', 'venv')
HINT = ('install the build dependencies first: rosdep install --from-paths src --ignore-src -y '
        '(or scripts/pi_install.sh)')


NODES_PYTHON = os.path.join(PIP_VENV, 'bin', 'python3')
if not (os.path.isfile(os.path.join(PIP_VENV, 'pyvenv.cfg')) and os.access(NODES_PYTHON, os.X_OK)):
    NODES_PYTHON = None
options = {'build_scripts': {'executable': NODES_PYTHON}} if NODES_PYTHON else {}


def interfaces_wanted(default: bool) -> bool:
    flag = os.environ.get('DONKEY_ROS_BUILD_INTERFACES', '')
    return flag == '1' if flag in ('0', '1') else default


def _split(value):
    return [p for p in (value or '').split(os.pathsep) if p]


def build_interfaces(prefix: str, build_base: str) -> None:
    """cmake configure/build/install of donkey_ros_interfaces into ``prefix``."""
    prefix = os.path.abspath(prefix)
    build_dir = os.path.join(os.path.abspath(build_base), 'donkey_ros_interfaces')
    cmake = shutil.which('cmake')
    if cmake is None:
        sys.exit(f'donkey_ros: cannot build donkey_ros_interfaces: cmake not found; {HINT}')
    env = dict(os.environ)
    # colcon runs setup.py with its sitecustomize (sys.prefix := install prefix) on PYTHONPATH;
    # the rosidl generators and CMake's FindPython must see the real interpreter.
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in _split(env.get('PYTHONPATH'))
        if not os.path.isfile(os.path.join(p, 'sitecustomize.py'))
        and os.path.basename(p) != 'colcon_distutils_commands')
    # ament_cmake packages are found through AMENT_PREFIX_PATH (colcon's ament_cmake build does
    # the same).
    prefixes = []
    for p in _split(env.get('AMENT_PREFIX_PATH')) + _split(env.get('CMAKE_PREFIX_PATH')):
        if p not in prefixes:
            prefixes.append(p)
    env['CMAKE_PREFIX_PATH'] = os.pathsep.join(prefixes)
    generator = ['-G', 'Ninja'] if shutil.which('ninja') else []
    cache = os.path.join(build_dir, 'CMakeCache.txt')
    if os.path.isfile(cache):
        with open(cache) as f:
            text = f.read()
        wanted_gen = 'Ninja' if generator else 'Unix Makefiles'
        if (f'CMAKE_HOME_DIRECTORY:INTERNAL={INTERFACES}\n' not in text
                or f'CMAKE_GENERATOR:INTERNAL={wanted_gen}\n' not in text):
            shutil.rmtree(build_dir)    # configured for another source dir or generator
    jobs = env.get('CMAKE_BUILD_PARALLEL_LEVEL') or str(min(os.cpu_count() or 1, 4))
    print(f'donkey_ros: building the nested package donkey_ros_interfaces (rosidl) into {prefix}',
          flush=True)
    steps = [
        ('configure', [cmake, '-S', INTERFACES, '-B', build_dir, *generator,
                       f'-DCMAKE_INSTALL_PREFIX={prefix}', '-DCMAKE_BUILD_TYPE=Release',
                       '-DBUILD_TESTING=OFF', f'-DPython3_EXECUTABLE={sys.executable}',
                       f'-DCMAKE_INSTALL_RPATH={os.path.join(prefix, "lib")}']),
        ('build', [cmake, '--build', build_dir, '--parallel', jobs]),
        ('install', [cmake, '--install', build_dir]),
    ]
    for step, command in steps:
        if subprocess.run(command, env=env).returncode != 0:
            sys.exit(f'donkey_ros: donkey_ros_interfaces {step} failed (output above); '
                     f'if a package was not found, {HINT}')


class Install(install):
    """setup.py install; colcon always passes --record: then the interfaces are built too."""

    def run(self):
        super().run()
        if interfaces_wanted(bool(self.record)):
            build_interfaces(self.install_data, self.get_finalized_command('build').build_base)


class Develop(develop):
    """setup.py develop --editable --build-directory DIR: colcon build --symlink-install."""

    def install_wrapper_scripts(self, dist):
        # develop writes its scripts itself (not through build_scripts): same interpreter rule.
        if NODES_PYTHON is None or self.exclude_scripts:
            return super().install_wrapper_scripts(dist)
        from setuptools.command.develop import VersionlessRequirement
        from setuptools.command.easy_install import ScriptWriter
        writer = ScriptWriter.best()
        for args in writer.get_args(VersionlessRequirement(dist),
                                    writer.get_header(executable=NODES_PYTHON)):
            self.write_script(*args)

    def run(self):
        super().run()
        colcon = bool(getattr(self, 'editable', False) and getattr(self, 'build_directory', None))
        if not self.uninstall and interfaces_wanted(colcon):
            build_interfaces(sys.prefix, self.build_directory or os.path.join(HERE, 'build'))



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
    cmdclass={'install': Install, 'develop': Develop},
    options=options,
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
