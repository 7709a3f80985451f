"""A DonkeyCar-exported linear ``.tflite`` drives the pilot node with the right steering sign.

The model is DonkeyCar's ``KerasLinear`` (``default_n_linear``: conv 24/32/64/64/64, dense 100/50,
dropout 0.2, outputs ``n_outputs0`` angle and ``n_outputs1`` throttle, 120x160x3 input scaled by
1/255) converted the way DonkeyCar's ``keras_to_tflite`` does. Its weights are set, not trained,
so that its answer is known: angle = brightness of the right edge - brightness of the left edge
(DonkeyCar: + = right), throttle = a quarter of their sum. A frame bright on the left therefore
makes DonkeyCar steer left (angle < 0), and our pilot must publish steering > 0 (+ = left).
"""
import time

import numpy as np
import pytest

DROPOUT = 0.2
FINAL_COLUMNS = 13          # width of conv2d_5's output for a 160-pixel-wide input
LEFT_COLUMNS = (0, 1)       # final columns whose receptive field lies in input columns < 80
RIGHT_COLUMNS = (11, 12)    # ... and > 80


def build_donkeycar_linear():
    """DonkeyCar's default_n_linear with weights making angle = right - left brightness."""
    import keras
    from keras import layers

    def conv2d(filters, kernel, strides, number):
        return layers.Conv2D(filters, (kernel, kernel), strides=(strides, strides),
                             activation='relu', name=f'conv2d_{number}')

    img_in = keras.Input(shape=(120, 160, 3), name='img_in')
    x = img_in
    for filters, kernel, strides, number in ((24, 5, 2, 1), (32, 5, 2, 2), (64, 5, 2, 3),
                                             (64, 3, 1, 4), (64, 3, 1, 5)):
        x = conv2d(filters, kernel, strides, number)(x)
        x = layers.Dropout(DROPOUT)(x)
    x = layers.Flatten(name='flattened')(x)
    x = layers.Dense(100, activation='relu', name='dense_1')(x)
    x = layers.Dropout(DROPOUT)(x)
    x = layers.Dense(50, activation='relu', name='dense_2')(x)
    x = layers.Dropout(DROPOUT)(x)
    outputs = [layers.Dense(1, activation='linear', name=f'n_outputs{i}')(x) for i in range(2)]
    model = keras.Model(inputs=[img_in], outputs=outputs, name='linear')
    rows = model.get_layer('conv2d_5').output.shape[1]
    assert model.get_layer('conv2d_5').output.shape[2] == FINAL_COLUMNS
    for layer in model.layers:
        weights = [np.zeros_like(w) for w in layer.get_weights()]
        if not weights:
            continue
        kernel = weights[0]
        if layer.name == 'conv2d_1':      # channel 0 = local mean brightness of R, G, B
            kernel[:, :, :, 0] = 1.0 / kernel[:, :, :, 0].size
        elif layer.name.startswith('conv2d_'):  # channel 0 = local mean of channel 0
            kernel[:, :, 0, 0] = 1.0 / kernel[:, :, 0, 0].size
        elif layer.name == 'dense_1':     # unit 0: left-edge brightness, unit 1: right-edge
            for row in range(rows):
                for unit, columns in ((0, LEFT_COLUMNS), (1, RIGHT_COLUMNS)):
                    for column in columns:
                        kernel[(row * FINAL_COLUMNS + column) * 64, unit] = 1.0 / (
                            rows * len(columns))
        elif layer.name == 'dense_2':
            kernel[0, 0] = kernel[1, 1] = 1.0
        elif layer.name == 'n_outputs0':  # angle, DonkeyCar sign: + = right
            kernel[0, 0], kernel[1, 0] = -1.0, 1.0
        elif layer.name == 'n_outputs1':  # throttle
            kernel[0, 0] = kernel[1, 0] = 0.25
        layer.set_weights(weights)
    return model


def donkeycar_to_tflite(model, path):
    """As DonkeyCar's ``keras_to_tflite`` (float model, no data generator)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    converter.allow_custom_ops = True
    path.write_bytes(converter.convert())
    return path


def donkeycar_reading(path, image: np.ndarray) -> tuple[float, float]:
    """(angle, throttle) as DonkeyCar's ``TfLite`` interpreter part reads them: the
    serving_default signature's outputs, in the signature's order, input = image / 255."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    signature = interpreter.get_signature_list()['serving_default']
    runner = interpreter.get_signature_runner()
    outputs = runner(**{signature['inputs'][0]: image[None].astype(np.float32) / 255.0})
    angle, throttle = (float(outputs[key][0][0]) for key in signature['outputs'])
    return angle, throttle


def halves(left: int, right: int) -> np.ndarray:
    image = np.empty((120, 160, 3), np.uint8)
    image[:, :80], image[:, 80:] = left, right
    return image


@pytest.fixture(scope='module')
def donkeycar_model(tmp_path_factory):
    path = tmp_path_factory.mktemp('mycar') / 'mypilot.tflite'
    return donkeycar_to_tflite(build_donkeycar_linear(), path)


def test_the_crafted_model_means_what_donkeycar_would_read(donkeycar_model):
    # Independent of donkey_ros: DonkeyCar's own way of reading the model gives the designed
    # answer, so the pilot test below checks the pilot and not the model.
    angle, throttle = donkeycar_reading(donkeycar_model, halves(200, 50))
    assert angle == pytest.approx((50 - 200) / 255, abs=1e-3) and angle < -0.5
    assert throttle == pytest.approx(0.25 * 250 / 255, abs=1e-3)
    angle, _ = donkeycar_reading(donkeycar_model, halves(40, 220))
    assert angle == pytest.approx(180 / 255, abs=1e-3)


def test_donkeycar_model_in_the_pilot_node_steers_the_right_way(graph, donkeycar_model):
    from geometry_msgs.msg import TwistStamped
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from donkey_ros.common import qos
    from donkey_ros.common.image import array_to_image
    from donkey_ros.learning.pilot_node import PilotNode

    # No metadata, no sidecar: exactly the file DonkeyCar exported, default pilot parameters.
    assert not donkeycar_model.with_suffix('.json').exists()
    pilot = graph.add(PilotNode, parameter_overrides=[
        Parameter('model_path', value=str(donkeycar_model))])
    assert pilot.runner is not None, pilot.model_error
    commands = graph.collect(TwistStamped, f'{graph.namespace}/pilot/cmd', qos.COMMAND)
    camera = graph.node('camera').create_publisher(
        Image, f'{graph.namespace}/camera/image_raw', qos.IMAGE_PUBLISH)

    def drive(image: np.ndarray, sec: int) -> TwistStamped:
        from builtin_interfaces.msg import Time
        msg = array_to_image(image, Time(sec=sec, nanosec=0))
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            camera.publish(msg)
            if graph.wait_for(lambda: any(c.header.stamp.sec == sec for c in commands), 0.2):
                return next(c for c in commands if c.header.stamp.sec == sec)
        pytest.fail(f'no pilot/cmd for frame {sec}: {pilot.model_error or pilot.frame_error}')

    for sec, (left, right) in enumerate(((200, 50), (40, 220), (120, 120)), start=1):
        angle, throttle = donkeycar_reading(donkeycar_model, halves(left, right))
        command = drive(halves(left, right), sec)
        # DonkeyCar angle < 0 is left; here + is left: the sign flips, the value does not.
        assert command.twist.angular.z == pytest.approx(-angle, abs=0.01), (left, right)
        assert command.twist.linear.x == pytest.approx(throttle, abs=0.01), (left, right)
    bright_left = next(c for c in commands if c.header.stamp.sec == 1)
    assert bright_left.twist.angular.z > 0.5       # DonkeyCar turned left: we turn left (+)
