"""The camera model published on ``camera/camera_info``.

Either read from a ROS ``camera_calibration`` YAML file (``image_width``, ``camera_matrix``,
``distortion_model``, ``distortion_coefficients``, ``rectification_matrix``,
``projection_matrix``) and adapted to the published image (scaled, cropped, flipped), or an ideal
pinhole from the horizontal field of view.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from donkey_ros.camera.capture import FrameShaper
from donkey_ros.camera.sources import CameraError


@dataclass
class CameraModel:
    width: int
    height: int
    k: list = field(default_factory=list)
    d: list = field(default_factory=list)
    r: list = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    p: list = field(default_factory=list)
    distortion_model: str = 'plumb_bob'

    def to_msg(self, stamp, frame_id: str):
        from sensor_msgs.msg import CameraInfo

        msg = CameraInfo()
        msg.header.stamp = stamp
        msg.header.frame_id = frame_id
        msg.width, msg.height = self.width, self.height
        msg.distortion_model = self.distortion_model
        msg.d = [float(value) for value in self.d]
        msg.k = [float(value) for value in self.k]
        msg.r = [float(value) for value in self.r]
        msg.p = [float(value) for value in self.p]
        return msg


def pinhole(shaper: FrameShaper, hfov_deg: float) -> CameraModel:
    """An undistorted pinhole with the given horizontal field of view (before cropping)."""
    f = (shaper.width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
    model = CameraModel(shaper.width, shaper.height,
                        k=[f, 0.0, (shaper.width - 1) / 2, 0.0, f, (shaper.height - 1) / 2,
                           0.0, 0.0, 1.0], d=[0.0] * 5)
    return adapt(model, shaper, 1.0, 1.0)


def from_file(path: str, shaper: FrameShaper) -> CameraModel:
    """Loads a camera_calibration YAML and adapts it to the published image."""
    import yaml

    try:
        with open(path, encoding='utf-8') as stream:
            data = yaml.safe_load(stream)
        width, height = int(data['image_width']), int(data['image_height'])
        k = [float(v) for v in data['camera_matrix']['data']]
        d = [float(v) for v in data.get('distortion_coefficients', {}).get('data', [])]
        r = [float(v) for v in data.get('rectification_matrix', {}).get(
            'data', [1, 0, 0, 0, 1, 0, 0, 0, 1])]
        p = [float(v) for v in data.get('projection_matrix', {}).get('data', [])] or \
            [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        model_name = str(data.get('distortion_model', 'plumb_bob'))
    except FileNotFoundError:
        raise CameraError(f'camera calibration file {path} does not exist') from None
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise CameraError(f'camera calibration file {path} is not a camera_calibration YAML '
                          f'({error!r})') from None
    if len(k) != 9 or len(r) != 9 or len(p) != 12:
        raise CameraError(f'camera calibration file {path}: camera_matrix needs 9 values, '
                          'projection_matrix 12')
    model = CameraModel(width, height, k, d, r, p, model_name)
    return adapt(model, shaper, shaper.width / width, shaper.height / height)


def adapt(model: CameraModel, shaper: FrameShaper, sx: float, sy: float) -> CameraModel:
    """The model for images resized by (sx, sy), then cropped and flipped like ``shaper``."""
    k, p = list(model.k), list(model.p or [model.k[0], 0.0, model.k[2], 0.0, 0.0, model.k[4],
                                           model.k[5], 0.0, 0.0, 0.0, 1.0, 0.0])
    width, height = shaper.out_width, shaper.out_height
    for matrix, (fx, cx, fy, cy) in ((k, (0, 2, 4, 5)), (p, (0, 2, 5, 6))):
        matrix[fx] *= sx
        matrix[cx] = matrix[cx] * sx - shaper.crop_left
        matrix[fy] *= sy
        matrix[cy] = matrix[cy] * sy - shaper.crop_top
        if shaper.flip_horizontal:
            matrix[cx] = width - 1 - matrix[cx]
        if shaper.flip_vertical:
            matrix[cy] = height - 1 - matrix[cy]
    if (shaper.flip_horizontal or shaper.flip_vertical) and any(model.d):
        # Flipping mirrors the tangential distortion terms; radial ones are unchanged.
        d = list(model.d)
        if shaper.flip_horizontal and len(d) > 3:
            d[3] = -d[3]
        if shaper.flip_vertical and len(d) > 2:
            d[2] = -d[2]
    else:
        d = list(model.d)
    return CameraModel(width, height, k, d, list(model.r), p, model.distortion_model)
