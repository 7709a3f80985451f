"""The doctor's checks: each a small function returning a ``CheckResult`` (never raising).

Every check looks at the real thing (the clock, ``/dev``, the I2C bus through the Adafruit driver
stack, the camera through OpenCV/Picamera2, the model through LiteRT, the disk, the ROS graph);
arguments only say where to look, so each runs on any machine and reports what it found there.
A failure carries a ``fix``: what to do about it, in one or two sentences.
"""
from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from donkey_ros.common.paths import bags_folder

PASS, WARN, FAIL, SKIP = 'PASS', 'WARN', 'FAIL', 'SKIP'
MIN_YEAR = 2024
PCA9685_MODE1, PCA9685_PRESCALE, PCA9685_SLEEP = 0x00, 0xFE, 0x10
PCA9685_OSCILLATOR_HZ = 25_000_000
JPEG_RATIO = 0.1
"""Recorded JPEG size / raw size, roughly, for camera frames at quality 90."""
COMMAND_BYTES_PER_SECOND = 4 * 50 * 120
"""user/cmd, pilot/cmd, cmd at ~50 Hz and drive_mode: a few kB/s, next to the images."""


@dataclass(frozen=True)
class CheckResult:
    """One line of the checklist.

    Attributes:
        name: short identifier ('clock', 'i2c'...), used to name failing checks.
        title: what was checked, for people.
        status: PASS, WARN (works, but look), FAIL or SKIP (not applicable / not asked).
        message: what was found.
        fix: what to do (failures and warnings).
    """

    name: str
    title: str
    status: str
    message: str
    fix: str = ''

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def first_line(error: BaseException) -> str:
    """The first line of an error's text (drivers raise multi-line messages)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --- ROS 2 ---------------------------------------------------------------------------------------
def check_ros() -> CheckResult:
    """rclpy importable, which RMW implementation, domain and discovery settings."""
    title = 'ROS 2'
    try:
        import rclpy  # noqa: F401
        from rclpy.utilities import get_rmw_implementation_identifier
        rmw = get_rmw_implementation_identifier()
    except Exception as error:  # ImportError, or a broken install failing at load
        return CheckResult('ros', title, FAIL, f'rclpy cannot be imported: {first_line(error)}',
                           'activate the environment donkey_ros was installed in (the venv of '
                           'scripts/setup_env.sh, or `source /opt/ros/<distro>/setup.bash` and '
                           'your workspace install/setup.bash)')
    domain = os.environ.get('ROS_DOMAIN_ID', '') or '0 (default)'
    scope = os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '') or (
        'LOCALHOST' if os.environ.get('ROS_LOCALHOST_ONLY') == '1' else 'SUBNET (default)')
    requested = os.environ.get('RMW_IMPLEMENTATION')
    if requested and requested != rmw:
        return CheckResult('ros', title, FAIL,
                           f'RMW_IMPLEMENTATION={requested} but rclpy loaded {rmw}',
                           f'install {requested} or unset RMW_IMPLEMENTATION; every machine of '
                           'the car must use the same RMW')
    return CheckResult('ros', title, PASS, f'rclpy imports, RMW {rmw}, ROS_DOMAIN_ID {domain}, '
                       f'discovery {scope}')


# --- clock ---------------------------------------------------------------------------------------
def newest_mtime(paths: Iterable[Path]) -> float:
    """The newest modification time among ``paths`` (0 if none)."""
    newest = 0.0
    for path in paths:
        try:
            newest = max(newest, path.stat().st_mtime)
        except OSError:
            continue
    return newest


def package_reference_time() -> tuple[float, str]:
    """(time, what): the newest file of the installed donkey_ros package; the clock cannot be
    earlier than the moment these files were written."""
    root = Path(__file__).resolve().parents[1]
    return newest_mtime(root.rglob('*.py')), f'the newest file of {root}'


def ntp_synchronized() -> bool | None:
    """True/False from ``timedatectl``; None where that cannot be asked (no systemd)."""
    try:
        result = subprocess.run(['timedatectl', 'show', '-p', 'NTPSynchronized', '--value'],
                                capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return None
    value = result.stdout.strip().lower()
    return {'yes': True, 'no': False}.get(value) if result.returncode == 0 else None


def check_clock(now: float | None = None, reference: tuple[float, str] | None = None,
                synchronized: Callable[[], bool | None] = ntp_synchronized) -> CheckResult:
    """The wall clock is plausible: year >= 2024 and not before ``reference`` (a file's mtime).

    A Raspberry Pi has no battery clock: without network time it boots at an old date, and then
    TLS (pip, git, apt) fails and bags get wrong timestamps.
    """
    title = 'System clock'
    now = time.time() if now is None else now
    shown = datetime.datetime.fromtimestamp(now).strftime('%Y-%m-%d %H:%M')
    fix = ('connect the car to a network with internet and run `sudo timedatectl set-ntp true` '
           '(`timedatectl` shows "System clock synchronized: yes" when done); offline, set it by '
           "hand: sudo date -s '2025-06-01 12:00' (today's date), or fit an RTC board")
    if datetime.datetime.fromtimestamp(now).year < MIN_YEAR:
        return CheckResult('clock', title, FAIL,
                           f'the clock says {shown}: the Pi booted without network time (TLS, '
                           'git and pip fail; bag timestamps are wrong)', fix)
    when, what = reference if reference is not None else package_reference_time()
    if when and now < when - 3600:
        return CheckResult('clock', title, FAIL,
                           f'the clock says {shown}, earlier than {what} '
                           f'({datetime.datetime.fromtimestamp(when):%Y-%m-%d %H:%M}): it is '
                           'behind (bag timestamps will be wrong, TLS may fail)', fix)
    if synchronized() is False:
        return CheckResult('clock', title, WARN,
                           f'{shown}, but not synchronized by NTP: when it syncs the time jumps '
                           '(a recording across the jump gets a gap)',
                           'connect to a network before driving, or ignore if the date is right')
    return CheckResult('clock', title, PASS, f'{shown} (plausible)')


# --- I2C and the PCA9685 -------------------------------------------------------------------------
def check_i2c(bus: int, dev: str | Path = '/dev') -> CheckResult:
    """``/dev/i2c-<bus>`` exists and this user may open it."""
    title = f'I2C bus {bus}'
    device = Path(dev) / f'i2c-{bus}'
    if not device.exists():
        others = sorted(p.name for p in Path(dev).glob('i2c-*')) if Path(dev).is_dir() else []
        found = f'; found {", ".join(others)}' if others else '; no I2C bus at all'
        return CheckResult(
            'i2c', title, FAIL, f'{device} does not exist (I2C disabled, or another bus){found}',
            'enable I2C: Raspberry Pi OS: `sudo raspi-config nonint do_i2c 0` (or raspi-config '
            '> Interface Options > I2C); Ubuntu: add dtparam=i2c_arm=on to '
            '/boot/firmware/config.txt; then reboot' + (f'; or set actuator i2c_bus to the bus the PCA9685 '
                                           f'is on ({", ".join(others)})' if others else ''))
    if not os.access(device, os.R_OK | os.W_OK):
        return CheckResult('i2c', title, FAIL, f'{device} exists but this user may not open it',
                           'add yourself to the i2c group: `sudo adduser $USER i2c`, then log '
                           'out and in')
    return CheckResult('i2c', title, PASS, f'{device} present and accessible')


def read_registers(i2c, address: int, registers: Iterable[int]) -> dict[int, int]:
    """Reads single PCA9685 registers through adafruit_bus_device (reads only, nothing written
    to the outputs: a running actuator is not disturbed)."""
    from adafruit_bus_device.i2c_device import I2CDevice

    device = I2CDevice(i2c, address, probe=False)
    values = {}
    buffer = bytearray(1)
    for register in registers:
        with device:
            device.write_then_readinto(bytes([register]), buffer)
        values[register] = buffer[0]
    return values


def check_pca9685(bus: int, address: int, backend: str = 'pca9685',
                  open_bus: Callable[[int], object] | None = None) -> CheckResult:
    """A PCA9685 answers at ``address`` on ``bus``: I2C scan, then MODE1/PRESCALE read back.

    Args:
        open_bus: returns a busio.I2C-like bus for a bus number (default: the actuator's
            ``open_i2c``, i.e. adafruit_extended_bus on /dev/i2c-<bus>).
    """
    title = f'PCA9685 at 0x{address:02x}'
    if backend != 'pca9685':
        return CheckResult('pca9685', title, SKIP, f"actuator backend is '{backend}' (no board "
                           'used)', "set actuator backend: pca9685 to drive the car's servos")
    fix = (f'check the wiring (SDA, SCL, GND, VCC 3.3 V from the Pi) and the board address '
           f'jumpers; `i2cdetect -y {bus}` lists what answers; set actuator i2c_address if it '
           'is not 0x40')
    try:
        if open_bus is None:
            from donkey_ros.actuation.backends import open_i2c
            open_bus = open_i2c
        i2c = open_bus(bus)
    except Exception as error:  # ActuatorError (one line, with its fix) or a driver error
        return CheckResult('pca9685', title, FAIL, f'cannot open I2C bus {bus}: '
                           f'{first_line(error)}', 'fix the I2C bus first (line above)')
    try:
        deadline = time.monotonic() + 1.0
        while not i2c.try_lock():
            if time.monotonic() > deadline:
                return CheckResult('pca9685', title, FAIL, f'I2C bus {bus} stays locked',
                                   'another program holds the bus; retry')
            time.sleep(0.01)
        try:
            found = list(i2c.scan())
        finally:
            i2c.unlock()
        if address not in found:
            seen = ', '.join(f'0x{a:02x}' for a in found) or 'nothing'
            return CheckResult('pca9685', title, FAIL,
                               f'no device answers at 0x{address:02x} on bus {bus} (found {seen})',
                               fix)
        registers = read_registers(i2c, address, (PCA9685_MODE1, PCA9685_PRESCALE))
    except OSError as error:
        return CheckResult('pca9685', title, FAIL, f'I2C transfer failed: {first_line(error)}',
                           fix)
    finally:
        deinit = getattr(i2c, 'deinit', None)
        if deinit is not None:
            try:
                deinit()
            except Exception:
                pass
    mode1, prescale = registers[PCA9685_MODE1], registers[PCA9685_PRESCALE]
    frequency = PCA9685_OSCILLATOR_HZ / 4096 / (prescale + 1)
    if mode1 & PCA9685_SLEEP:
        state = 'asleep (not started yet: the actuator node wakes it)'
    else:
        state = f'running, PWM {frequency:.1f} Hz'
    return CheckResult('pca9685', title, PASS, f'answers on bus {bus}; {state}')


# --- camera --------------------------------------------------------------------------------------
def camera_output_size(camera: dict) -> tuple[int, int]:
    """(width, height) of the images the camera node publishes (after its crop)."""
    return (camera['width'] - camera.get('crop_left', 0) - camera.get('crop_right', 0),
            camera['height'] - camera.get('crop_top', 0) - camera.get('crop_bottom', 0))


def check_camera(camera: dict, frames: int = 10, timeout: float = 5.0,
                 in_use: bool = False) -> CheckResult:
    """The configured camera opens and delivers frames; measured size and rate.

    Args:
        camera: the camera node's parameters (backend, device, path, width, height, fps...).
        frames: how many frames to grab for the rate measurement.
        in_use: the camera node is running (its topic has a publisher): a camera that cannot
            be opened is then expected and not a failure.
    """
    from donkey_ros.camera.sources import CameraError, make_source, resolve_backend

    backend, _ = resolve_backend(camera['backend'])   # auto: what the camera node would use
    where = {'opencv': f"device {camera['device']}", 'picamera2': 'Pi camera',
             'libcamera': 'libcamera camera',
             'file': f"file {camera.get('path', '')}"}.get(backend, backend)
    title = f'Camera ({backend}, {where})'
    want = f"{camera['width']}x{camera['height']} at {camera['fps']:g} fps"
    try:
        source = make_source(backend, device=str(camera.get('device', '0')),
                             path=camera.get('path', ''), width=camera['width'],
                             height=camera['height'], fps=camera['fps'])
        source.open()
    except CameraError as error:
        if in_use:
            return CheckResult('camera', title, SKIP, f'busy ({first_line(error)}), held by the '
                               'running camera node, which publishes camera/image_raw')
        return CheckResult('camera', title, FAIL, f'cannot open it: {first_line(error)}',
                           _camera_fix(backend))
    try:
        started = time.monotonic()
        shape, count = None, 0
        while count < frames and time.monotonic() - started < timeout:
            if source.grab():
                shape = source.retrieve().shape
                count += 1
        elapsed = time.monotonic() - started
    except CameraError as error:
        return CheckResult('camera', title, FAIL, f'opened, but reading failed: '
                           f'{first_line(error)}', _camera_fix(backend))
    finally:
        source.close()
    if not count:
        return CheckResult('camera', title, FAIL, f'opened, but no frame came in {timeout:g} s',
                           _camera_fix(backend))
    size = f'{shape[1]}x{shape[0]}'
    note = '' if (shape[1], shape[0]) == (camera['width'], camera['height']) else \
        ' (the camera node resizes to the configured size)'
    if not getattr(source, 'live', True):
        return CheckResult('camera', title, PASS, f'{count} frames of {size} read{note}')
    rate = (count - 1) / elapsed if count > 1 and elapsed > 0 else 0.0
    if count > 1 and rate < 0.8 * camera['fps']:
        return CheckResult('camera', title, WARN, f'{size} at {rate:.1f} fps, configured {want}',
                           'lower camera fps, a smaller capture size, or better light (auto '
                           'exposure slows cameras down in the dark)')
    return CheckResult('camera', title, PASS, f'{count} frames of {size} at {rate:.1f} fps '
                       f'(configured {want}){note}')


def _camera_fix(backend: str) -> str:
    if backend == 'picamera2':
        return ('check the ribbon cable (contacts facing the board), `rpicam-hello --list-cameras` '
                'lists cameras; picamera2 needs `sudo apt install python3-picamera2` and a venv '
                'made with --system-site-packages')
    if backend == 'libcamera':
        return ('check the ribbon cable; `cam --list` (libcamera-tools) lists cameras; '
                '`gst-launch-1.0 libcamerasrc ! fakesink` tests the GStreamer route')
    if backend == 'opencv':
        return ('plug in the camera; `v4l2-ctl --list-devices` (or ls /dev/video*) shows the '
                'device to set as camera device; a Pi camera needs camera backend picamera2')
    return 'set camera path to a folder of images or a video file'


# --- model ---------------------------------------------------------------------------------------
def check_model(pilot: dict, camera: dict,
                load: Callable[[dict], object] | None = None) -> CheckResult:
    """The pilot's model loads with LiteRT and takes the frames the camera publishes.

    Args:
        pilot: the pilot node's parameters.
        camera: the camera node's parameters.
        load: builds the ModelRunner from the pilot parameters (default: the pilot node's own
            ``load_runner``, so the doctor loads the model exactly as the pilot will).
    """
    from types import SimpleNamespace

    title = 'Pilot model'
    if load is None:
        from donkey_ros.learning.pilot_node import load_runner

        def load(values):
            return load_runner(SimpleNamespace(**values))
    try:
        runner = load(pilot)
    except Exception as error:  # ModelError, or a runtime that refuses the file
        unset = '' if pilot.get('model_path') else 'model_path not set, and the default: '
        return CheckResult('model', title, FAIL, f'{unset}{first_line(error)}',
                           'set pilot model_path to a .tflite file (`donkey-ros train` makes one; '
                           'DonkeyCar exports work too, see docs/donkeycar.md); '
                           'on the car, scripts/pi_install.sh installs the runtime (ai-edge-litert)')
    height, width = runner.image_shape[:2]
    published = camera_output_size(camera)
    described = getattr(runner, 'describe', lambda: runner.name)()
    if published != (width, height):
        message = (f'{runner.name} takes {width}x{height} frames, the camera publishes '
                   f'{published[0]}x{published[1]}')
        if pilot.get('resize_mismatched'):
            return CheckResult('model', title, WARN, message + ' (resized per frame: slower, '
                               'and not what the model was trained on)',
                               f'set camera width/height (and crop) to give {width}x{height}')
        return CheckResult('model', title, FAIL, message + ': the pilot will refuse every frame',
                           f'set camera width/height (and crop) to give {width}x{height}, or '
                           'use a model trained at the camera size (or pilot resize_mismatched: '
                           'true)')
    return CheckResult('model', title, PASS, described)


# --- disk ----------------------------------------------------------------------------------------
def recording_rate(camera: dict, recorder: dict) -> float:
    """Bytes per second a recording takes at the configured camera size and rate."""
    width, height = camera_output_size(camera)
    frame = width * height * 3 + 200
    if recorder.get('compress_images'):
        frame = frame * JPEG_RATIO
    return frame * camera['fps'] + COMMAND_BYTES_PER_SECOND


def check_disk(folder: str | Path, minutes: float, bytes_per_second: float) -> CheckResult:
    """The file system of the recording folder ('' = the data folder's) has room for ``minutes``
    of recording."""
    folder = bags_folder(folder)
    title = f'Disk space ({folder})'
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = shutil.disk_usage(existing).free
    except OSError as error:
        return CheckResult('disk', title, FAIL, f'cannot look at {existing}: '
                           f'{first_line(error)}', 'check that the recorder folder is valid')
    need = minutes * 60 * bytes_per_second
    fits = free / bytes_per_second / 60 if bytes_per_second > 0 else float('inf')
    message = (f'{free / 1e9:.1f} GB free = {fits:.0f} min of recording at '
               f'{bytes_per_second / 1e6:.2f} MB/s (asked for {minutes:g} min: '
               f'{need / 1e9:.2f} GB)')
    if free < need:
        return CheckResult('disk', title, FAIL, message,
                           f'free space: move old bags off the car (`du -sh {folder}/*`), delete '
                           'what you do not need, or set recorder compress_images: true (JPEG, '
                           'about 10x smaller)')
    if not os.access(existing, os.W_OK):
        return CheckResult('disk', title, FAIL, f'{existing} is not writable by this user',
                           'set recorder folder to a folder you own')
    return CheckResult('disk', title, PASS, message)


# --- topics --------------------------------------------------------------------------------------
REQUIRED_TOPICS = (('camera/image_raw', 'publisher', 'camera'),
                   ('user/cmd', 'publisher', 'joy_teleop / web / keyboard'),
                   ('cmd', 'publisher', 'mux'),
                   ('cmd', 'subscription', 'actuator'),
                   ('drive_mode', 'publisher', 'mux'))


def graph_counts(namespace: str, wanted: Iterable[tuple[str, str]], wait: float) -> dict:
    """Publisher/subscription counts of topics, polling the ROS graph for up to ``wait`` s
    (discovery takes a moment) until every count is non-zero."""
    import rclpy

    wanted = list(wanted)
    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    try:
        node = rclpy.create_node('donkey_ros_doctor', namespace=namespace or '/', context=context,
                                 start_parameter_services=False)
        try:
            deadline = time.monotonic() + wait
            while True:
                counts = {(topic, kind): (node.count_publishers(topic) if kind == 'publisher'
                                          else node.count_subscribers(topic))
                          for topic, kind in wanted}
                if all(counts.values()) or time.monotonic() >= deadline:
                    return counts
                time.sleep(0.1)
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def check_topics(namespace: str = '', wait: float = 3.0,
                 required: Iterable[tuple[str, str, str]] = REQUIRED_TOPICS,
                 counts: dict | None = None) -> CheckResult:
    """The car stack is up: the contract's topics have their publishers (and the actuator
    listens on ``cmd``)."""
    title = 'Car stack topics' + (f' in /{namespace.strip("/")}' if namespace.strip('/') else '')
    required = list(required)
    try:
        counts = counts if counts is not None else graph_counts(
            namespace, [(t, k) for t, k, _ in required], wait)
    except Exception as error:  # rclpy missing or the middleware failing to start
        return CheckResult('topics', title, FAIL, f'cannot query the ROS graph: '
                           f'{first_line(error)}', 'fix the ROS 2 line above first')
    missing = [f'{topic} has no {kind} ({who})' for topic, kind, who in required
               if not counts.get((topic, kind))]
    if missing:
        domain = os.environ.get('ROS_DOMAIN_ID', '0')
        return CheckResult(
            'topics', title, FAIL, '; '.join(missing),
            'start the car: `ros2 launch donkey_ros car.launch.py config:=<your car.yaml>` '
            f'(same ROS_DOMAIN_ID, here {domain}, and namespace); if it runs on another machine, '
            'check ROS_AUTOMATIC_DISCOVERY_RANGE/firewall')
    shown = ', '.join(sorted({topic for topic, _, _ in required}))
    return CheckResult('topics', title, PASS, f'{shown} have publishers; the actuator listens '
                       'on cmd')
