"""Frame sources: a V4L2/USB camera or video path (OpenCV), a CSI camera through libcamera's
GStreamer element (OpenCV, for Ubuntu), a Pi camera (Picamera2, Raspberry Pi OS), files.

Each source has ``open()``, ``grab() -> bool``, ``retrieve() -> BGR uint8 array`` and ``close()``.
Splitting grab (the frame is captured) from retrieve (it is decoded) lets the caller take the
timestamp at capture and skip decoding frames it will not publish. ``live`` says whether frames
arrive in real time (a camera) or as fast as they are read (files), which the caller must pace.
Every failure is a ``CameraError`` with one readable line.

Backend ``auto`` picks, in order: picamera2 when it is importable (Raspberry Pi OS), libcamera
when OpenCV was built with GStreamer and GStreamer has ``libcamerasrc`` (Ubuntu with
gstreamer1.0-libcamera), else opencv (V4L2 ``device``). ``choose_backend`` is that rule on the
probes' answers; ``resolve_backend`` runs the probes and returns the reasons for each refusal.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from fractions import Fraction

import numpy as np

from donkey_ros.common.errors import DonkeyRosError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
BACKENDS = ('auto', 'opencv', 'libcamera', 'picamera2', 'file')


class CameraError(DonkeyRosError):
    """A camera or file cannot be opened or read."""


def _cv2():
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our errors say it better
    return cv2


class OpenCVSource:
    """A camera by index (``0``) or device path (``/dev/video0``) through V4L2, or any path or
    URL OpenCV can play (a video file).

    Args:
        device: camera index, device path or video path.
        width, height, fps: what to ask a camera for (it may give something else).
    """

    def __init__(self, device: str, width: int = 160, height: int = 120, fps: float = 20.0):
        self.device = device.strip()
        self.width, self.height, self.fps = width, height, fps
        self._camera_device = bool(re.fullmatch(r'\d+|/dev/video\d+', self.device))
        self.live = self._camera_device
        self.description = f'camera {self.device}' if self.live else self.device
        self._capture = None

    def open(self) -> None:
        cv2 = _cv2()
        if self._camera_device:
            target = int(self.device) if self.device.isdigit() else self.device
            if isinstance(target, str) and not os.path.exists(target):
                raise CameraError(f'{target} does not exist (camera unplugged?)')
            capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            if '://' not in self.device and not os.path.exists(self.device):
                raise CameraError(f'{self.device} does not exist')
            capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f'OpenCV cannot open {self.description}')
        if self._camera_device:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            capture.set(cv2.CAP_PROP_FPS, self.fps)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue of old ones
        self._capture = capture

    def grab(self) -> bool:
        return self._capture is not None and bool(self._capture.grab())

    def retrieve(self) -> np.ndarray:
        ok, frame = self._capture.retrieve()
        if not ok or frame is None:
            raise CameraError(f'{self.description}: frame could not be decoded')
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def libcamera_pipeline(width: int, height: int, fps: float, camera_name: str = '') -> str:
    """The GStreamer pipeline OpenCV opens for a libcamera camera: BGR frames of the asked size
    and rate, only the newest kept (a slow reader gets the latest frame, not a backlog)."""
    rate = Fraction(fps).limit_denominator(1000)
    name = f' camera-name="{camera_name}"' if camera_name else ''
    return (f'libcamerasrc{name} ! video/x-raw,width={int(width)},height={int(height)},'
            f'framerate={rate.numerator}/{rate.denominator} ! videoconvert ! '
            'video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false')


def opencv_has_gstreamer(build_information: str) -> bool:
    """Whether ``cv2.getBuildInformation()`` says OpenCV was built with GStreamer."""
    return bool(re.search(r'^\s*GStreamer:\s*YES', build_information, re.MULTILINE))


NO_GSTREAMER = ("this OpenCV was built without GStreamer (pip's opencv-python wheels are); use "
                "apt's python3-opencv")


def libcamera_refusal(opencv: bool, opencv_gstreamer: bool, gst_inspect: bool,
                      libcamerasrc: bool) -> str:
    """Why the libcamera (GStreamer) backend cannot work, from what was found; '' = it can."""
    if not opencv:
        return 'OpenCV (cv2) is not installed: sudo apt install python3-opencv'
    if not opencv_gstreamer:
        return NO_GSTREAMER
    if not gst_inspect:
        return ('gst-inspect-1.0 not found: sudo apt install gstreamer1.0-tools '
                'gstreamer1.0-libcamera')
    if not libcamerasrc:
        return 'GStreamer has no libcamerasrc element: sudo apt install gstreamer1.0-libcamera'
    return ''


def libcamera_problem() -> str:
    """Looks at this machine (OpenCV's build, ``gst-inspect-1.0 libcamerasrc``) and says why the
    libcamera backend cannot work here; '' when it can."""
    try:
        cv2 = _cv2()
    except ImportError:
        return libcamera_refusal(False, False, False, False)
    gstreamer = opencv_has_gstreamer(cv2.getBuildInformation())
    inspect = shutil.which('gst-inspect-1.0')
    found = False
    if gstreamer and inspect:
        try:
            found = subprocess.run([inspect, 'libcamerasrc'], capture_output=True,
                                   timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired) as error:
            return f'gst-inspect-1.0 libcamerasrc failed: {error}'
    return libcamera_refusal(True, gstreamer, inspect is not None, found)


def picamera2_problem() -> str:
    """Why the picamera2 backend cannot work here; '' when picamera2 is importable."""
    if importlib.util.find_spec('picamera2') is None:
        return ('picamera2 is not installed (Raspberry Pi OS only: sudo apt install '
                'python3-picamera2)')
    return ''


def choose_backend(picamera2: str, libcamera: str) -> tuple[str, list[str]]:
    """The ``auto`` rule on the probes' answers ('' = usable, else why not).

    Returns:
        (backend, refusals): the backend to use and one line per backend passed over.
    """
    refusals = []
    if not picamera2:
        return 'picamera2', refusals
    refusals.append(f'not picamera2: {picamera2}')
    if not libcamera:
        return 'libcamera', refusals
    refusals.append(f'not libcamera: {libcamera}')
    return 'opencv', refusals


def resolve_backend(backend: str) -> tuple[str, list[str]]:
    """``backend`` itself, or for ``auto`` the one this machine supports and why not the others."""
    if backend != 'auto':
        return backend, []
    picamera2 = picamera2_problem()
    return choose_backend(picamera2, libcamera_problem() if picamera2 else 'not probed')


class LibcameraSource(OpenCVSource):
    """A libcamera camera (a Pi CSI camera on Ubuntu) through GStreamer's ``libcamerasrc`` in
    OpenCV. Needs OpenCV built with GStreamer (apt's python3-opencv) and gstreamer1.0-libcamera.

    Args:
        camera_name: libcamera's id of the camera (``cam --list``); '' = the first one.
    """

    def __init__(self, width: int = 160, height: int = 120, fps: float = 20.0,
                 camera_name: str = '') -> None:
        super().__init__('0', width, height, fps)
        self.pipeline = libcamera_pipeline(width, height, fps, camera_name)
        self.live = True
        self.description = f"libcamera camera {camera_name or '(first)'} (GStreamer)"

    def open(self) -> None:
        cv2 = _cv2()
        if not opencv_has_gstreamer(cv2.getBuildInformation()):
            raise CameraError(f'backend libcamera: {NO_GSTREAMER}')
        capture = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f'GStreamer cannot open {self.pipeline!r} (no camera? '
                              '`cam --list` lists what libcamera sees)')
        self._capture = capture


class Picamera2Source:
    """The Raspberry Pi camera through Picamera2 (libcamera). Imported only when selected."""

    live = True

    def __init__(self, width: int = 160, height: int = 120, fps: float = 20.0) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.description = 'Pi camera (picamera2)'
        self._camera = None
        self._frame = None

    @staticmethod
    def check_installed() -> None:
        if importlib.util.find_spec('picamera2') is None:
            raise CameraError(
                'picamera2 is not installed: sudo apt install python3-picamera2, and create the '
                'venv with --system-site-packages so it can see it')

    def open(self) -> None:
        self.check_installed()
        from picamera2 import Picamera2

        try:
            camera = Picamera2()
            # 'RGB888' is libcamera's name for 24-bit pixels stored B, G, R (OpenCV order).
            config = camera.create_video_configuration(
                main={'size': (self.width, self.height), 'format': 'RGB888'},
                controls={'FrameRate': float(self.fps)})
            camera.configure(config)
            camera.start()
        except Exception as error:  # libcamera raises RuntimeError/IndexError when absent
            raise CameraError(f'cannot start the Pi camera: {error}') from None
        self._camera = camera

    def grab(self) -> bool:
        try:
            self._frame = self._camera.capture_array('main')
        except Exception:
            return False
        return self._frame is not None

    def retrieve(self) -> np.ndarray:
        return self._frame[:, :, :3]

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None


class FileSource:
    """A folder of images (name order) or a video file, played in a loop at the caller's pace.

    Unreadable images in a folder are skipped (each skip raises CameraError once, so it is
    logged); a folder or video with nothing readable is an error.
    """

    live = False

    def __init__(self, path: str) -> None:
        self.path = os.path.expanduser(path)
        self.description = self.path
        self._files: list[str] = []
        self._index = 0
        self._video = None
        self._pending = None

    def open(self) -> None:
        cv2 = _cv2()
        if not self.path:
            raise CameraError('no path given for the file camera (parameter path)')
        if os.path.isdir(self.path):
            self._files = sorted(os.path.join(self.path, name) for name in os.listdir(self.path)
                                 if name.lower().endswith(IMAGE_SUFFIXES))
            if not self._files:
                raise CameraError(f'{self.path} holds no images ({", ".join(IMAGE_SUFFIXES)})')
            self._index = 0
        elif os.path.isfile(self.path):
            video = cv2.VideoCapture(self.path)
            if not video.isOpened() or not video.grab():
                video.release()
                raise CameraError(f'{self.path} is not a readable video or image folder')
            video.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self._video = video
        else:
            raise CameraError(f'{self.path} does not exist')

    def grab(self) -> bool:
        cv2 = _cv2()
        if self._video is not None:
            if self._video.grab():
                return True
            self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop
            if not self._video.grab():
                self._video.release()
                self._video = cv2.VideoCapture(self.path)
                return bool(self._video.grab())
            return True
        if not self._files:
            return False
        self._pending = self._files[self._index % len(self._files)]
        self._index += 1
        return True

    def retrieve(self) -> np.ndarray:
        cv2 = _cv2()
        if self._video is not None:
            ok, frame = self._video.retrieve()
            if not ok or frame is None:
                raise CameraError(f'{self.path}: frame could not be decoded')
            return frame
        frame = cv2.imread(self._pending, cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraError(f'{self._pending} is not a readable image; skipped')
        return frame

    def close(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None


def make_source(backend: str, device: str = '0', path: str = '', width: int = 160,
                height: int = 120, fps: float = 20.0):
    """The source a node's parameters describe (not opened yet); ``auto`` is resolved here."""
    backend, _ = resolve_backend(backend)
    if backend == 'opencv':
        return OpenCVSource(device, width, height, fps)
    if backend == 'libcamera':
        camera_name = '' if re.fullmatch(r'\d+|/dev/video\d+', device.strip()) else device.strip()
        return LibcameraSource(width, height, fps, camera_name)
    if backend == 'picamera2':
        Picamera2Source.check_installed()
        return Picamera2Source(width, height, fps)
    if backend == 'file':
        return FileSource(path)
    raise CameraError(f"unknown camera backend '{backend}' (valid: {', '.join(BACKENDS)})")
