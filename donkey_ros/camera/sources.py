"""Frame sources: a V4L2/USB camera or video path (OpenCV), a Pi camera (Picamera2), files.

Each source has ``open()``, ``grab() -> bool``, ``retrieve() -> BGR uint8 array`` and ``close()``.
Splitting grab (the frame is captured) from retrieve (it is decoded) lets the caller take the
timestamp at capture and skip decoding frames it will not publish. ``live`` says whether frames
arrive in real time (a camera) or as fast as they are read (files), which the caller must pace.
Every failure is a ``CameraError`` with one readable line.
"""
from __future__ import annotations

import importlib.util
import os
import re

import numpy as np

from donkey_ros.common.errors import DonkeyRosError

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
BACKENDS = ('opencv', 'picamera2', 'file')


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
    """The source a node's parameters describe (not opened yet)."""
    if backend == 'opencv':
        return OpenCVSource(device, width, height, fps)
    if backend == 'picamera2':
        Picamera2Source.check_installed()
        return Picamera2Source(width, height, fps)
    if backend == 'file':
        return FileSource(path)
    raise CameraError(f"unknown camera backend '{backend}' (valid: {', '.join(BACKENDS)})")
