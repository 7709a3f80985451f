"""Training, export and LiteRT inference (no ROS): models trained here, read back independently."""
import json
import math

import numpy as np
import pytest

from donkey_ros.learning.inference import ModelRunner, decode_bins, preprocess
from donkey_ros.learning.metadata import (ModelError, ModelMetadata, embed_metadata,
                                          read_embedded, read_metadata, sidecar_path)
from donkey_ros.learning.pipeline import (DataError, FrameSet, PipelineConfig, collect_frames,
                                          split_by_time)
from donkey_ros.learning.synthetic import lane_frame, lane_samples

tf = pytest.importorskip('tensorflow')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A small linear model trained on synthetic lane frames, exported float32 + int8."""
    from donkey_ros.learning.train import TrainConfig, train

    out = tmp_path_factory.mktemp('model') / 'lane.tflite'
    config = TrainConfig(epochs=6, batch_size=32, verbose=0, quantize='int8', patience=3,
                         augment=('brightness', 'shift'), block_seconds=5.0)
    metadata = config.model_metadata(160, 120)
    frames = collect_frames(lane_samples(600, seed=1), metadata)
    result = train(frames, config, out, metadata, command='pytest lane model',
                   counts={'frames': 600}, log=lambda *_: None)
    return result, frames


# --- metadata ---------------------------------------------------------------------------------
def test_metadata_round_trips_through_sidecar_and_flatbuffer(trained):
    result, _ = trained
    path = result.model_path
    sidecar = json.loads(sidecar_path(path).read_text())
    embedded = read_embedded(path.read_bytes())
    assert sidecar['command'] == 'pytest lane model' == embedded.command
    assert embedded.crop_top == 40 and embedded.input_width == 80 and embedded.input_height == 40
    # The copy inside the model is the final one too, with the exported model's own errors.
    assert embedded.training['val_steering_mae'] == sidecar['training']['val_steering_mae']
    # The file alone is enough: without the sidecar the embedded copy is used.
    sidecar_path(path).rename(path.with_suffix('.bak'))
    try:
        assert read_metadata(path).to_dict() == embedded.to_dict()
    finally:
        path.with_suffix('.bak').rename(sidecar_path(path))


def test_invalid_metadata_is_one_clear_error():
    with pytest.raises(ModelError, match="model_type 'banana'"):
        ModelMetadata(model_type='banana')
    with pytest.raises(ModelError, match='crop 100/30'):
        ModelMetadata(crop_top=100, crop_bottom=30)


# --- data pipeline ------------------------------------------------------------------------------
def _frames(times, segments):
    n = len(times)
    return FrameSet(np.zeros((n, 4, 4, 3), np.uint8), np.zeros(n, np.float32),
                    np.zeros(n, np.float32), np.asarray(times, float),
                    np.asarray(segments, np.int32), ['a', 'b'])


def test_validation_split_takes_whole_time_blocks_of_each_recording():
    times = np.arange(0, 100, 0.05)           # 100 s at 20 Hz, one recording
    frames = _frames(times, np.zeros(len(times)))
    train_idx, val_idx = split_by_time(frames, val_fraction=0.2, block_seconds=10)
    assert set(train_idx).isdisjoint(val_idx)
    assert len(train_idx) + len(val_idx) == len(times)
    val_blocks = sorted(set((times[val_idx] // 10).astype(int)))
    assert val_blocks == [4, 9]               # every 5th 10-second block, whole
    assert np.all(np.diff(val_idx)[np.diff(val_idx) != 1] > 150)  # contiguous runs


def test_short_recordings_give_their_last_part_to_validation():
    times = np.concatenate([np.arange(0, 20, 0.05), np.arange(0, 20, 0.05)])
    segments = np.repeat([0, 1], len(times) // 2)
    train_idx, val_idx = split_by_time(_frames(times, segments), 0.2, block_seconds=10)
    for segment in (0, 1):
        val_times = times[val_idx][segments[val_idx] == segment]
        assert len(val_times) and val_times.min() >= 15.9
        assert times[train_idx][segments[train_idx] == segment].max() < 16.0


def test_frames_of_another_size_are_refused_with_the_size():
    metadata = ModelMetadata(image_width=160, image_height=120, input_width=80, input_height=40,
                             crop_top=40)
    samples = [(lane_frame(0.0), 0.0, 0.3, 0.0), (np.zeros((240, 320, 3), np.uint8), 0, 0, 0.05)]
    with pytest.raises(DataError, match='320x240'):
        collect_frames(samples, metadata)
    with pytest.raises(DataError, match='too few'):
        split_by_time(collect_frames(samples[:1], metadata))


def test_two_hot_targets_keep_the_exact_value():
    from donkey_ros.learning.pipeline import two_hot

    values = np.array([-1.0, -0.37, 0.0, 0.5, 0.999, 1.4], np.float32)
    targets = two_hot(tf.constant(values), 15, (-1.0, 1.0)).numpy()
    centres = np.linspace(-1, 1, 15)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(targets @ centres, np.clip(values, -1, 1), atol=1e-6)
    assert np.count_nonzero(targets[1]) == 2


def test_flip_mirrors_the_image_and_negates_steering():
    from donkey_ros.learning.pipeline import augment_batch

    images = np.random.default_rng(0).random((4, 8, 10, 3)).astype(np.float32)
    steering = np.array([0.5, -0.2, 0.0, 1.0], np.float32)
    config = PipelineConfig(augment=('flip',), flip=1.0)
    out, steer = augment_batch(tf.constant(images), tf.constant(steering), config)
    np.testing.assert_allclose(out.numpy(), images[:, :, ::-1], atol=1e-7)
    np.testing.assert_allclose(steer.numpy(), -steering)


def test_augmentations_change_pixels_but_not_labels_or_range():
    from donkey_ros.learning.pipeline import AUGMENTATIONS, augment_batch

    images = np.random.default_rng(1).random((16, 40, 80, 3)).astype(np.float32)
    steering = np.linspace(-1, 1, 16).astype(np.float32)
    config = PipelineConfig(augment=tuple(a for a in AUGMENTATIONS if a != 'flip'), shadow=1.0)
    out, steer = augment_batch(tf.constant(images), tf.constant(steering), config)
    out = out.numpy()
    assert out.shape == images.shape and out.min() >= 0.0 and out.max() <= 1.0
    assert np.mean(np.abs(out - images)) > 0.02
    np.testing.assert_array_equal(steer.numpy(), steering)


def test_categorical_loss_is_finite_for_extreme_logits():
    from donkey_ros.learning.models import ModelSpec, losses

    loss = losses(ModelSpec(model_type='categorical'))[0]['steering']
    logits = tf.constant([[1e4, -1e4, 0.0], [-3e4, 3e4, 0.0]])
    target = tf.constant([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    value = float(loss(target, logits))
    assert math.isfinite(value) and value > 1e3


# --- training and export -----------------------------------------------------------------------
def test_training_learns_the_road_and_writes_its_files(trained):
    result, frames = trained
    assert result.val_steering_mae < 0.12       # a constant predictor scores ~0.3 here
    constant = float(np.mean(np.abs(frames.steering - np.median(frames.steering))))
    assert result.val_steering_mae < constant / 2
    for path in (result.model_path, result.model_path.with_suffix('.loss.png'),
                 result.model_path.with_suffix('.report.md'), result.model_path.with_suffix('.keras')):
        assert path.exists() and path.stat().st_size > 0
    assert result.model_path.with_suffix('.loss.png').read_bytes()[:4] == b'\x89PNG'
    report = result.model_path.with_suffix('.report.md').read_text()
    assert 'steering MAE' in report and 'pytest lane model' in report
    training = result.metadata.training
    assert training['train_frames'] + training['val_frames'] == 600
    assert training['val_steering_mae'] == pytest.approx(result.val_steering_mae, abs=1e-4)


def test_exported_model_matches_keras_on_the_same_frames(trained):
    import keras

    result, frames = trained
    model = keras.models.load_model(result.model_path.with_suffix('.keras'), compile=False)
    batch = frames.images[:16]
    keras_out = model(batch.astype(np.float32) / 255.0, training=False)
    runner = ModelRunner(result.model_path)
    for i, pixels in enumerate(batch):
        steering, throttle = runner.predict_pixels(pixels)
        assert steering == pytest.approx(float(keras_out['steering'][i, 0]), abs=1e-4)
        assert throttle == pytest.approx(float(keras_out['throttle'][i, 0]), abs=1e-4)


def test_int8_model_takes_pixels_and_stays_close_to_float(trained):
    result, frames = trained
    assert result.int8_path.exists()
    assert result.int8_path.stat().st_size < result.model_path.stat().st_size
    runner = ModelRunner(result.int8_path)
    assert runner.input['dtype'] == np.uint8 and runner.input_mode == 'copy'
    assert runner.metadata.quantization == 'int8'
    assert result.int8_steering_mae < result.val_steering_mae + 0.05


def test_full_frame_prediction_equals_training_preprocessing(trained):
    result, _ = trained
    runner = ModelRunner(result.model_path)
    rng = np.random.default_rng(3)
    for steering in (-0.6, 0.0, 0.4):
        frame = lane_frame(steering, rng=rng)
        assert runner.predict(frame) == runner.predict_pixels(preprocess(frame, runner.metadata))


def test_wrong_frame_size_is_refused(trained):
    runner = ModelRunner(trained[0].model_path)
    with pytest.raises(ModelError, match='expects 160x120 RGB frames, got 320x240'):
        runner.predict(np.zeros((240, 320, 3), np.uint8))


def test_missing_corrupt_and_mismatched_models_are_clear_errors(trained, tmp_path):
    with pytest.raises(ModelError, match='does not exist'):
        ModelRunner(tmp_path / 'none.tflite')
    junk = tmp_path / 'junk.tflite'
    junk.write_bytes(b'\x00' * 64)
    with pytest.raises(ModelError, match='not a TFLite model'):
        ModelRunner(junk)
    truncated = tmp_path / 'truncated.tflite'
    truncated.write_bytes(trained[0].model_path.read_bytes()[:2000])
    with pytest.raises(ModelError):
        ModelRunner(truncated)
    # Metadata that disagrees with the tensors (trained for 80x40, says 160x80).
    wrong = tmp_path / 'wrong.tflite'
    wrong.write_bytes(trained[0].model_path.read_bytes())
    meta = read_metadata(trained[0].model_path)
    sidecar_path(wrong).write_text(json.dumps({**meta.to_dict(), 'input_width': 160,
                                               'input_height': 80}))
    with pytest.raises(ModelError, match='takes input 1x40x80x3 but its metadata says 1x80x160x3'):
        ModelRunner(wrong)


def test_model_info_lists_tensors_ops_and_metadata(trained):
    from donkey_ros.learning.model_info import describe

    text = describe(trained[0].model_path)
    assert '1x40x80x3 uint8' in text and '1x2 float32' in text
    assert 'CONV_2D x4' in text and 'FULLY_CONNECTED' in text
    assert 'command: pytest lane model' in text and 'Netron' in text
    assert 'check: loads and runs' in text


# --- categorical and DonkeyCar models ---------------------------------------------------------
def test_bin_decoding():
    values = np.linspace(-1, 1, 5)
    assert decode_bins(np.array([0, 0, 0, 1.0, 0]), values, 'argmax') == 0.5
    assert decode_bins(np.array([0, 0, 0.5, 0.5, 0]), values, 'local_mean') == pytest.approx(0.25)
    # Two far-apart modes: local_mean stays at the stronger one, never the average of both.
    assert decode_bins(np.array([0.45, 0, 0, 0, 0.55]), values, 'local_mean') == 1.0


def test_categorical_model_trains_and_exports(tmp_path):
    from donkey_ros.learning.train import TrainConfig, train

    config = TrainConfig(model_type='categorical', epochs=2, batch_size=50, verbose=0,
                         augment=(), activation='elu', block_seconds=2.0)
    metadata = config.model_metadata(160, 120)
    frames = collect_frames(lane_samples(150, seed=2), metadata)
    result = train(frames, config, tmp_path / 'cat.tflite', metadata, log=lambda *_: None)
    runner = ModelRunner(result.model_path)
    assert runner.metadata.model_type == 'categorical'
    assert runner.metadata.steering_bins == 15 and runner.metadata.throttle_bins == 20
    runner.predict_pixels(frames.images[0])
    outputs = runner.raw_outputs()[0]
    assert outputs.shape == (35,)
    np.testing.assert_allclose([outputs[:15].sum(), outputs[15:].sum()], 1.0, atol=1e-5)
    assert math.isfinite(result.val_steering_mae) and result.val_steering_mae < 0.5


def _donkeycar_linear(path, angle: float, throttle: float):
    """A DonkeyCar-shaped linear model (120x160x3 float input /255, two outputs n_outputs0/1)
    whose outputs are constants, converted without any donkey_ros metadata."""
    import keras

    image = keras.Input((120, 160, 3), name='img_in')
    x = keras.layers.Conv2D(2, 5, strides=4)(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = [keras.layers.Dense(1, name=f'n_outputs{i}', kernel_initializer='zeros',
                                  bias_initializer=keras.initializers.Constant(value))(x)
               for i, value in enumerate((angle, throttle))]
    model = keras.Model(image, outputs)
    from donkey_ros.learning.export import convert
    path.write_bytes(convert(model))
    return path


def test_donkeycar_model_without_metadata_is_driven_with_its_conventions(tmp_path):
    path = _donkeycar_linear(tmp_path / 'dc.tflite', angle=0.25, throttle=0.4)
    runner = ModelRunner(path)
    assert runner.metadata_source.startswith('guessed')
    assert runner.metadata.steering_sign == -1.0 and runner.input_mode == 'scale'
    frame = np.full((120, 160, 3), 77, np.uint8)
    # DonkeyCar's angle is + = right, so it is negated; outputs are taken in Keras order even
    # though LiteRT lists n_outputs1 first.
    steering, throttle = runner.predict(frame)
    assert (steering, throttle) == (pytest.approx(-0.25), pytest.approx(0.4))
    swapped = ModelRunner(path, overrides={'layout': 'throttle_steering', 'steering_sign': 1.0})
    assert swapped.predict(frame) == (pytest.approx(0.4), pytest.approx(0.25))


def test_embedding_metadata_keeps_the_model_runnable(trained, tmp_path):
    data = trained[0].model_path.read_bytes()
    changed = embed_metadata(data, ModelMetadata(input_width=80, input_height=40, crop_top=40,
                                                 steering_sign=-1.0))
    path = tmp_path / 'flipped.tflite'
    path.write_bytes(changed)
    normal = ModelRunner(trained[0].model_path).predict(lane_frame(0.5))
    flipped = ModelRunner(path).predict(lane_frame(0.5))
    assert flipped[0] == pytest.approx(-normal[0], abs=1e-6)
    assert flipped[1] == pytest.approx(normal[1], abs=1e-6)


# --- evaluate ----------------------------------------------------------------------------------
def test_evaluate_reports_errors_and_draws_them(trained, tmp_path):
    from donkey_ros.learning.evaluate import evaluate, plot
    from donkey_ros.recording.synthetic import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / 'bag', frames=60)
    result = evaluate(trained[0].model_path, [bag.path], progress=False)
    errors = result.errors()
    assert errors['frames'] == result.counts['used'] > 50
    # The recorded side is made of the commands the synthetic bag holds.
    written = {round(steering, 6) for _, steering, _ in bag.commands}
    assert {round(float(v), 6) for v in result.steering} <= written
    expected = np.mean(np.abs(result.predicted_steering - result.steering))
    assert errors['steering_mae'] == pytest.approx(expected)
    picture = plot(result, tmp_path / 'eval.png')
    assert picture.read_bytes()[:4] == b'\x89PNG'
