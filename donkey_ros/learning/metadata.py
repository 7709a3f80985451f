"""What a pilot model needs to be run correctly, stored with the model (no TensorFlow, no rclpy).

A model exported by ``donkey-ros train`` carries its ``ModelMetadata`` twice: as a JSON sidecar
(``model.tflite`` -> ``model.json``, easy to read and edit) and inside the ``.tflite`` file as a
TFLite metadata buffer named ``donkey_ros`` (so the file alone is enough). The pilot reads the
sidecar first, then the embedded copy; a model with neither (a DonkeyCar export) is described by
``donkeycar_metadata`` and the pilot's parameters.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from donkey_ros.common.errors import DonkeyRosError

FORMAT = 'donkey_ros.pilot/1'
METADATA_NAME = 'donkey_ros'
MODEL_TYPES = ('linear', 'categorical')
ARCHITECTURES = ('small', 'donkey')
ACTIVATIONS = ('relu', 'elu', 'leaky_relu', 'tanh', 'sigmoid')
LAYOUTS = ('packed', 'steering_throttle', 'throttle_steering')
DECODES = ('argmax', 'local_mean')


class ModelError(DonkeyRosError):
    """A model file is missing, unreadable, or does not fit what it is used for."""


@dataclass
class ModelMetadata:
    """How to feed a model and how to read its outputs.

    Images: the camera frame (``image_width`` x ``image_height``) loses ``crop_top`` and
    ``crop_bottom`` rows, is resized to ``input_width`` x ``input_height`` if that differs, and
    each pixel value p (0..255) becomes ``p * input_scale + input_offset``.

    Outputs: ``layout`` 'packed' is one tensor holding the steering values then the throttle values
    (1 each for 'linear', ``steering_bins`` + ``throttle_bins`` probabilities for 'categorical');
    'steering_throttle' / 'throttle_steering' are two tensors in that order (DonkeyCar exports).
    Bin i of n covers ``lo + i * (hi - lo) / (n - 1)`` of its ``*_range``. Steering is multiplied
    by ``steering_sign`` so that + is left (DonkeyCar models: -1).
    """

    model_type: str = 'linear'
    architecture: str = 'unknown'
    image_width: int = 160
    image_height: int = 120
    crop_top: int = 0
    crop_bottom: int = 0
    input_width: int = 160
    input_height: int = 120
    input_scale: float = 1.0 / 255.0
    input_offset: float = 0.0
    layout: str = 'packed'
    steering_sign: float = 1.0
    steering_bins: int = 0
    throttle_bins: int = 0
    steering_range: tuple = (-1.0, 1.0)
    throttle_range: tuple = (0.0, 1.0)
    decode: str = 'local_mean'
    quantization: str = 'float32'
    activation: str = 'relu'
    training: dict = field(default_factory=dict)
    command: str = ''
    created: str = ''
    format: str = FORMAT

    def __post_init__(self) -> None:
        self.steering_range = tuple(float(v) for v in self.steering_range)
        self.throttle_range = tuple(float(v) for v in self.throttle_range)
        self.check()

    def check(self) -> None:
        """Raises ModelError when the values cannot describe a usable model."""
        problems = []
        if self.model_type not in MODEL_TYPES:
            problems.append(f"model_type '{self.model_type}' (valid: {', '.join(MODEL_TYPES)})")
        if self.layout not in LAYOUTS:
            problems.append(f"layout '{self.layout}' (valid: {', '.join(LAYOUTS)})")
        if self.decode not in DECODES:
            problems.append(f"decode '{self.decode}' (valid: {', '.join(DECODES)})")
        if self.crop_top < 0 or self.crop_bottom < 0 or (
                self.crop_top + self.crop_bottom >= self.image_height):
            problems.append(f'crop {self.crop_top}/{self.crop_bottom} of a '
                            f'{self.image_height}-row image')
        if min(self.image_width, self.image_height, self.input_width, self.input_height) < 1:
            problems.append('image and input sizes must be positive')
        if self.model_type == 'categorical' and min(self.steering_bins, self.throttle_bins) < 2:
            problems.append('categorical models need steering_bins and throttle_bins >= 2')
        if problems:
            raise ModelError('invalid model metadata: ' + '; '.join(problems))

    @property
    def cropped_height(self) -> int:
        return self.image_height - self.crop_top - self.crop_bottom

    @property
    def needs_resize(self) -> bool:
        return (self.input_width, self.input_height) != (self.image_width, self.cropped_height)

    @property
    def output_sizes(self) -> tuple[int, int]:
        """(steering values, throttle values) the model emits."""
        if self.model_type == 'categorical':
            return self.steering_bins, self.throttle_bins
        return 1, 1

    def to_dict(self) -> dict:
        values = asdict(self)
        values['steering_range'] = list(self.steering_range)
        values['throttle_range'] = list(self.throttle_range)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict) -> 'ModelMetadata':
        """Builds metadata from a dict; unknown keys are ignored (newer writers), bad ones raise."""
        if not isinstance(values, dict):
            raise ModelError('model metadata is not a JSON object')
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        except (TypeError, ValueError) as error:
            raise ModelError(f'invalid model metadata: {error}') from None


def donkeycar_metadata(model_type: str, input_height: int = 120, input_width: int = 160,
                       steering_bins: int = 15, throttle_bins: int = 20,
                       throttle_range: float = 0.5,
                       layout: str = 'steering_throttle') -> ModelMetadata:
    """Describes a DonkeyCar-exported ``.tflite`` (no sidecar): full frame in (crop is inside the
    model), pixels / 255, outputs angle (+ = right, so negated) and throttle; categorical bins as
    DonkeyCar's ``linear_unbin`` (angle over [-1, 1], throttle i * range / n).
    """
    return ModelMetadata(
        model_type=model_type, architecture='donkeycar', image_width=input_width,
        image_height=input_height, input_width=input_width, input_height=input_height,
        input_scale=1.0 / 255.0, input_offset=0.0, layout=layout, steering_sign=-1.0,
        steering_bins=steering_bins if model_type == 'categorical' else 0,
        throttle_bins=throttle_bins if model_type == 'categorical' else 0,
        throttle_range=(0.0, throttle_range * (throttle_bins - 1) / throttle_bins),
        decode='argmax')


def sidecar_path(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.json``."""
    return Path(model_path).with_suffix('.json')


def write_sidecar(model_path: str | Path, metadata: ModelMetadata) -> Path:
    path = sidecar_path(model_path)
    path.write_text(metadata.to_json() + '\n')
    return path


def read_sidecar(model_path: str | Path) -> ModelMetadata | None:
    """The sidecar's metadata, None if there is none.

    Raises:
        ModelError: the sidecar exists but is not valid metadata.
    """
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f'cannot read model metadata {path}: {error}') from None
    return ModelMetadata.from_dict(values)


def read_embedded(model_bytes: bytes) -> ModelMetadata | None:
    """The metadata embedded in a ``.tflite`` flatbuffer, None if there is none."""
    raw = embedded_metadata(model_bytes).get(METADATA_NAME)
    if raw is None:
        return None
    try:
        return ModelMetadata.from_dict(json.loads(raw.decode('utf-8')))
    except ValueError as error:
        raise ModelError(f'embedded model metadata is not JSON: {error}') from None


def read_metadata(model_path: str | Path, model_bytes: bytes | None = None) -> ModelMetadata | None:
    """Sidecar first (editable), then the copy embedded in the model; None if neither exists."""
    metadata = read_sidecar(model_path)
    if metadata is not None:
        return metadata
    if model_bytes is None:
        model_bytes = read_model_bytes(model_path)
    return read_embedded(model_bytes)


def read_model_bytes(model_path: str | Path) -> bytes:
    """The bytes of a ``.tflite`` file, checked to be a TFLite flatbuffer.

    Raises:
        ModelError: missing, unreadable, or not a TFLite model.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f'model file {path} does not exist')
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f'cannot read model {path}: {error.strerror}') from None
    if len(data) < 8 or data[4:8] != b'TFL3':
        raise ModelError(f'{path} is not a TFLite model (no TFL3 identifier)')
    return data


def _schema():
    from ai_edge_litert import schema_py_generated as schema
    return schema


def embedded_metadata(model_bytes: bytes) -> dict[str, bytes]:
    """{name: bytes} of every metadata entry of a ``.tflite`` flatbuffer."""
    schema = _schema()
    try:
        model = schema.Model.GetRootAs(model_bytes, 0)
        entries = {}
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            name = (entry.Name() or b'').decode('utf-8', 'replace')
            buffer = model.Buffers(entry.Buffer())
            if buffer.DataLength():
                entries[name] = buffer.DataAsNumpy().tobytes()
            elif buffer.Offset():  # large models keep buffers after the flatbuffer
                entries[name] = bytes(model_bytes[buffer.Offset():buffer.Offset() + buffer.Size()])
            else:
                entries[name] = b''
        return entries
    except Exception as error:  # flatbuffers raises assorted errors on corrupt input
        raise ModelError(f'corrupt TFLite model: {error}') from None


def embed_metadata(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """Returns the model with ``metadata`` stored as its ``donkey_ros`` metadata entry."""
    import flatbuffers

    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    buffer = schema.BufferT()
    buffer.data = list(metadata.to_json().encode('utf-8'))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (
        METADATA_NAME, METADATA_NAME.encode())] + [entry]
    builder = flatbuffers.Builder(len(model_bytes) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b'TFL3')
    return bytes(builder.Output())
