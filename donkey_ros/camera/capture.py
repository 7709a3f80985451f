"""Capturing in a thread: open with back-off, pace to the frame rate, shape frames, hand them on.

``FrameShaper`` turns a BGR frame of any size into the published RGB image (resize, crop, flip).
``CaptureThread`` runs a source off the ROS executor: it stamps each frame when it is grabbed,
drops frames beyond the wanted rate, and when the source fails (camera unplugged, file missing)
reports the error, closes it and reopens it with exponential back-off until it works again.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from donkey_ros.camera.sources import CameraError
from donkey_ros.common.errors import ConfigError


@dataclass(frozen=True)
class FrameShaper:
    """Resize to ``width`` x ``height``, then crop (pixels, like DonkeyCar's ROI_CROP_*), then flip.

    The published image is ``width - crop_left - crop_right`` wide and
    ``height - crop_top - crop_bottom`` high.
    """

    width: int = 160
    height: int = 120
    crop_top: int = 0
    crop_bottom: int = 0
    crop_left: int = 0
    crop_right: int = 0
    flip_horizontal: bool = False
    flip_vertical: bool = False

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ConfigError(f'image size {self.width}x{self.height} is empty')
        if min(self.crop_top, self.crop_bottom, self.crop_left, self.crop_right) < 0:
            raise ConfigError('crop values must not be negative')
        if self.crop_top + self.crop_bottom >= self.height or \
                self.crop_left + self.crop_right >= self.width:
            raise ConfigError(f'crop leaves nothing of the {self.width}x{self.height} image')

    @property
    def out_width(self) -> int:
        return self.width - self.crop_left - self.crop_right

    @property
    def out_height(self) -> int:
        return self.height - self.crop_top - self.crop_bottom

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        """BGR (HxWx3, or HxW gray, or HxWx4) uint8 -> contiguous RGB uint8 of the output size.

        Channels are swapped by OpenCV into a new array (a NumPy ``[:, :, ::-1]`` copy costs
        several times more: this runs between a frame's stamp and its command)."""
        import cv2

        if bgr.shape[1] != self.width or bgr.shape[0] != self.height:
            shrink = bgr.shape[1] > self.width or bgr.shape[0] > self.height
            bgr = cv2.resize(bgr, (self.width, self.height),
                             interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        bgr = bgr[self.crop_top:self.height - self.crop_bottom,
                  self.crop_left:self.width - self.crop_right]
        code = (cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else
                cv2.COLOR_BGRA2RGB if bgr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        rgb = cv2.cvtColor(bgr, code)
        if self.flip_horizontal or self.flip_vertical:
            # cv2.flip codes: 1 left-right, 0 top-bottom, -1 both.
            rgb = cv2.flip(rgb, -1 if self.flip_horizontal and self.flip_vertical
                           else 1 if self.flip_horizontal else 0)
        return rgb


class CaptureThread:
    """Runs ``source`` in a daemon thread and calls ``on_frame(rgb, stamp)`` for each frame.

    Args:
        source: a frame source (see ``sources.py``).
        shaper: frame -> published image.
        fps: the wanted rate; live sources drop extra frames, files are read at this pace.
        on_frame: called in the capture thread with the RGB image and its capture stamp.
        on_error: called with a readable message when the source fails or recovers.
        stamp: returns the capture stamp (called right after a frame is grabbed).
        retry_interval: first wait before reopening a failed source; doubles up to retry_max.
        prepare: called in the capture thread before each frame is grabbed (off the path from a
            frame's stamp to its command): the publisher makes its next message there.
    """

    def __init__(self, source, shaper: FrameShaper, fps: float,
                 on_frame: Callable[[np.ndarray, object], None],
                 on_error: Callable[[str], None], stamp: Callable[[], object],
                 retry_interval: float = 0.5, retry_max: float = 5.0,
                 prepare: Callable[[], None] | None = None) -> None:
        self.source = source
        self.shaper = shaper
        self.period = 1.0 / fps
        self.on_frame = on_frame
        self.on_error = on_error
        self.stamp = stamp
        self.retry_interval = retry_interval
        self.retry_max = retry_max
        self.prepare = prepare
        self.frames = 0
        self.errors = 0
        self.state = 'starting'
        self.last_error = ''
        self.measured_fps = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='camera-capture', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _fail(self, message: str) -> None:
        self.errors += 1
        self.last_error = message
        self.on_error(message)

    def _run(self) -> None:
        delay = self.retry_interval
        while not self._stop.is_set():
            try:
                self.source.open()
            except CameraError as error:
                self.state = f'retrying in {delay:.1f} s'
                self._fail(f'{error}; retrying in {delay:.1f} s')
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            except Exception as error:  # a driver bug must not kill the thread
                self._fail(f'{self.source.description}: cannot open: {error!r}')
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            self.state = 'streaming'
            if self.last_error:
                self.last_error = ''
                self.on_error(f'{self.source.description}: streaming again')
            try:
                if self._stream():
                    delay = self.retry_interval  # frames flowed: start back-off afresh
            finally:
                try:
                    self.source.close()
                except Exception:
                    pass
        self.state = 'stopped'

    def _stream(self) -> bool:
        """Publishes frames until the source fails or stop; returns whether any frame flowed."""
        produced = False
        next_time = time.monotonic()
        last_frame_time = None
        while not self._stop.is_set():
            if not self.source.live:
                wait = next_time - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
            if self.prepare is not None:  # after the pause: the last frame's work is done
                self.prepare()
            if not self.source.grab():
                self.state = 'lost'
                self._fail(f'{self.source.description}: no frame (unplugged or ended); reopening')
                return produced
            stamp = self.stamp()
            now = time.monotonic()
            if self.source.live and now < next_time - 0.25 * self.period:
                continue  # faster than wanted: drop without decoding
            next_time = max(next_time + self.period, now - self.period)
            try:
                rgb = self.shaper(self.source.retrieve())
            except CameraError as error:
                self._fail(str(error))
                continue
            except Exception as error:
                self._fail(f'{self.source.description}: bad frame: {error!r}')
                continue
            try:
                self.on_frame(rgb, stamp)
            except Exception as error:  # publishing failed (e.g. during shutdown)
                self._fail(f'publishing a frame failed: {error!r}')
                continue
            produced = True
            self.frames += 1
            if last_frame_time is not None:
                interval = max(now - last_frame_time, 1e-6)
                self.measured_fps = 0.9 * self.measured_fps + 0.1 / interval \
                    if self.measured_fps else 1.0 / interval
            last_frame_time = now
        return produced
