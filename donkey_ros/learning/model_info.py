"""`donkey-ros model-info MODEL`: what is inside a ``.tflite`` pilot model.

Prints the file size, the input and output tensors (shape, type, quantization), the operators
(by type, as LiteRT runs them), the metadata (how the pilot feeds the model and reads its outputs,
the training summary, the exact command that made it) and a check that it loads. No TensorFlow.
For a picture of the graph, open the file in Netron (https://netron.app, or `pip install netron`).
"""
from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

import numpy as np

from donkey_ros.learning.metadata import (ModelError, embedded_metadata, read_model_bytes,
                                          read_sidecar, sidecar_path)


def operators(model_bytes: bytes) -> list[str]:
    """The builtin operator name of every op of the main subgraph, in execution order."""
    from ai_edge_litert import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith('_')}
    try:
        model = schema.Model.GetRootAs(model_bytes, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            custom = code.CustomCode()
            codes.append(custom.decode() if custom else names.get(builtin, f'op{builtin}'))
        graph = model.Subgraphs(0)
        return [codes[graph.Operators(i).OpcodeIndex()] for i in range(graph.OperatorsLength())]
    except Exception as error:  # flatbuffers raises assorted errors on corrupt input
        raise ModelError(f'corrupt TFLite model: {error}') from None


def _tensor_line(detail) -> str:
    shape = 'x'.join(str(int(v)) for v in detail['shape'])
    dtype = np.dtype(detail['dtype']).name
    scale, zero = detail.get('quantization', (0.0, 0))
    quant = f', quantized scale {scale:.6g} zero point {zero}' if scale else ''
    return f"  {detail['name']}: {shape} {dtype}{quant}"


def describe(path: str | Path) -> str:
    """The model-info report as text.

    Raises:
        ModelError: missing or corrupt model.
    """
    from donkey_ros.learning.inference import ModelRunner, make_interpreter

    path = Path(path)
    data = read_model_bytes(path)
    lines = [f'{path} ({len(data) / 1024:.1f} KiB)']
    interpreter = make_interpreter(data, 1, path.name)
    lines.append('inputs:')
    lines += [_tensor_line(d) for d in interpreter.get_input_details()]
    lines.append('outputs:')
    lines += [_tensor_line(d) for d in interpreter.get_output_details()]
    ops = operators(data)
    counts = collections.Counter(ops)
    lines.append(f'operators ({len(ops)}): ' + ', '.join(f'{name} x{count}' if count > 1 else name
                                                          for name, count in counts.items()))
    tensors = interpreter.get_tensor_details()
    lines.append(f'tensors: {len(tensors)}')
    entries = embedded_metadata(data)
    sidecar = read_sidecar(path)
    if sidecar is not None:
        source, values = f'sidecar {sidecar_path(path).name}', sidecar.to_dict()
    elif 'donkey_ros' in entries:
        source, values = 'embedded in the model', json.loads(entries['donkey_ros'])
    else:
        source, values = None, None
    other = [name for name in entries if name != 'donkey_ros']
    if other:
        lines.append(f"other metadata entries: {', '.join(other)}")
    if values is None:
        lines.append('metadata: none (a DonkeyCar export? the pilot assumes DonkeyCar '
                     'conventions; see docs/learning.md)')
    else:
        lines.append(f'metadata ({source}):')
        training = values.pop('training', {}) or {}
        command = values.pop('command', '')
        for key, value in values.items():
            lines.append(f'  {key}: {value}')
        if command:
            lines.append(f'  command: {command}')
        if training:
            lines.append('training:')
            for key, value in training.items():
                if key == 'config':
                    value = ', '.join(f'{k}={v}' for k, v in value.items())
                lines.append(f'  {key}: {value}')
    try:
        runner = ModelRunner(path)
        frame = np.zeros(runner.image_shape, np.uint8)
        steering, throttle = runner.predict(frame)
        lines.append(f'check: loads and runs ({runner.input_mode} input); on a black frame: '
                     f'steering {steering:+.3f}, throttle {throttle:+.3f}')
    except ModelError as error:
        lines.append(f'check: FAILED: {error}')
    lines.append('graph: open the file in Netron (https://netron.app) to see every layer')
    return '\n'.join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog='donkey-ros model-info', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', help='a .tflite file')
    args = parser.parse_args(argv)
    print(describe(args.model))
    return 0
