"""sensor_msgs/Image <-> NumPy without cv_bridge (absent from PyPI; ROS 1's breaks on NumPy 2).

``image_to_array`` returns a view on the message buffer when it can (no copy); ``array_to_image``
copies once into the message. Only the encodings a DonkeyCar camera produces are supported.
"""
from __future__ import annotations

import numpy as np

from donkey_ros.common.errors import DonkeyRosError

CHANNELS = {'rgb8': 3, 'bgr8': 3, 'mono8': 1, 'rgba8': 4, 'bgra8': 4}


class ImageError(DonkeyRosError):
    """An image message cannot be interpreted."""


def image_to_array(msg, want: str = 'rgb8') -> np.ndarray:
    """Returns the image as an HxWx3 uint8 RGB array (HxW for ``want='mono8'``).

    Raises:
        ImageError: empty image, unsupported encoding, or data size not matching the header.
    """
    if msg.width == 0 or msg.height == 0:
        raise ImageError(f'empty image ({msg.width}x{msg.height})')
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageError(
            f"unsupported encoding '{msg.encoding}' (supported: {', '.join(CHANNELS)})")
    row = msg.width * channels
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ImageError(
            f'image data is {len(msg.data)} bytes, expected {msg.step}x{msg.height} '
            f'for {msg.width}x{msg.height} {msg.encoding}')
    flat = np.frombuffer(msg.data, dtype=np.uint8, count=msg.step * msg.height)
    pixels = flat.reshape(msg.height, msg.step)[:, :row].reshape(msg.height, msg.width, channels)
    return convert(pixels, msg.encoding, want)


def convert(pixels: np.ndarray, encoding: str, want: str) -> np.ndarray:
    """Converts an HxWxC uint8 array between the supported encodings."""
    if encoding == want:
        return pixels[:, :, 0] if want == 'mono8' and pixels.ndim == 3 else pixels
    if want == 'mono8':
        rgb = convert(pixels, encoding, 'rgb8').astype(np.float32)
        return (rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.uint8)
    if want != 'rgb8':
        raise ImageError(f"cannot convert to '{want}'")
    if encoding == 'mono8':
        return np.repeat(pixels.reshape(pixels.shape[0], pixels.shape[1], 1), 3, axis=2)
    if encoding in ('bgr8', 'bgra8'):
        return pixels[:, :, 2::-1]
    return pixels[:, :, :3]


def array_to_image(pixels: np.ndarray, stamp=None, frame_id: str = 'camera',
                   encoding: str = 'rgb8', msg=None):
    """Returns a sensor_msgs/Image holding ``pixels`` (HxWx3 uint8 RGB, or HxW for mono8).

    Pass ``msg`` to refill an existing message instead of allocating one.
    """
    from sensor_msgs.msg import Image

    if pixels.dtype != np.uint8:
        raise ImageError(f'image array must be uint8, got {pixels.dtype}')
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if CHANNELS.get(encoding) != channels:
        raise ImageError(f'{channels}-channel array cannot be {encoding}')
    msg = msg or Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels
    msg.data = np.ascontiguousarray(pixels).tobytes()
    return msg


def encode_jpeg(pixels: np.ndarray, quality: int = 90) -> bytes:
    """HxWx3 RGB uint8 -> JPEG bytes.

    Raises:
        ImageError: the array cannot be encoded.
    """
    import cv2

    ok, jpeg = cv2.imencode('.jpg', np.ascontiguousarray(pixels[:, :, ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ImageError(f'JPEG encoding of a {pixels.shape} array failed')
    return jpeg.tobytes()


def decode_jpeg(data) -> np.ndarray:
    """JPEG (or PNG) bytes -> HxWx3 uint8 RGB.

    Raises:
        ImageError: the data is not a readable image.
    """
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageError('not a readable JPEG/PNG image')
    return np.ascontiguousarray(bgr[:, :, ::-1])


def parse_size(text: str, minimum: int = 1) -> tuple[int, int]:
    """'640x480' -> (640, 480): the one WIDTHxHEIGHT parser (parameters and command lines).

    Raises:
        ConfigError: not WIDTHxHEIGHT with integers of at least ``minimum``.
    """
    from donkey_ros.common.errors import ConfigError

    try:
        width, height = (int(v) for v in text.lower().split('x'))
        if width >= minimum and height >= minimum:
            return width, height
    except ValueError:
        pass
    raise ConfigError(f"size '{text}' must be WIDTHxHEIGHT, e.g. 640x480")
