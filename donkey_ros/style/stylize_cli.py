"""`donkey-ros stylize`: stylize a picture through the ``stylize`` service (or locally).

    donkey-ros stylize frame.png out.png --style style7              # via the running node
    donkey-ros stylize frame.png out.png --style-image painting.jpg --size 640x480
    donkey-ros stylize frame.png out.png --style 19 --local          # no ROS: in this process
    donkey-ros stylize --list                                       # the styles on offer
    donkey-ros stylize frame.png sheet.png --sheet --local          # every style on one picture

IN may be ``sim`` (or ``sim:TRACK``) for a camera frame of the simulator.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from donkey_ros.common.image import parse_size
from donkey_ros.style.errors import StyleError
from donkey_ros.style.stylizer import read_image, write_image


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='donkey-ros stylize', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', nargs='?', help="image file, or 'sim[:TRACK]' for a sim frame")
    parser.add_argument('output', nargs='?', help='file to write (.png, .jpg)')
    parser.add_argument('--style', '-s', default='', help='style name or number (default: the '
                        "node's default style)")
    parser.add_argument('--style-image', help='use this picture as the style')
    parser.add_argument('--strength', type=float, default=1.0,
                        help='0 = the input, 1 = full style (default 1)')
    parser.add_argument('--size', default='0x0', metavar='WxH',
                        help='output size; 0 keeps the input size (default), one 0 keeps the '
                             'aspect ratio')
    parser.add_argument('--list', action='store_true', help='print the styles and exit')
    parser.add_argument('--sheet', action='store_true',
                        help='write every style applied to the input as one contact sheet')
    parser.add_argument('--colors', type=int, default=0, metavar='N',
                        help='write a PNG with an N-colour palette (smaller files, e.g. for '
                             'docs; default: full colour)')
    parser.add_argument('--local', action='store_true',
                        help='run the networks in this process instead of calling the service')
    parser.add_argument('--models-dir', default='', help='(--local) folder of user models')
    parser.add_argument('--memory-budget-mb', type=int, default=None, metavar='MB',
                        help='(--local) memory the networks may use, as the node\'s '
                        'memory_budget_mb (default 1024; 0 = no limit)')
    parser.add_argument('--service', default='stylize',
                        help="service name (relative names resolve in --namespace)")
    parser.add_argument('--namespace', default='', help='namespace of the car, e.g. /car1')
    parser.add_argument('--timeout', type=float, default=30.0,
                        help='seconds to wait for the service and its answer')
    return parser


def load_input(text: str) -> np.ndarray:
    """An image file, or 'sim[:TRACK]' for a simulator camera frame (320x240)."""
    if text == 'sim' or text.startswith('sim:'):
        from donkey_ros.sim.pictures import sim_frame
        return sim_frame(text[4:] or 'oval')
    return read_image(text)


class LocalBackend:
    """The networks in this process."""

    def __init__(self, models_dir: str, memory_budget_mb: int | None = None) -> None:
        from donkey_ros.style.stylizer import DEFAULT_BUDGET_MB, Stylizer
        budget = DEFAULT_BUDGET_MB if memory_budget_mb is None else memory_budget_mb
        self.stylizer = Stylizer(models_dir=models_dir or None, warmup=(),
                                 log=lambda line: print(f'warning: {line}', file=sys.stderr),
                                 memory_budget_mb=budget)

    def connect(self) -> None:
        """Nothing to wait for: the networks are loaded."""

    def styles(self) -> list[tuple[str, str]]:
        return list(zip(self.stylizer.styles(), self.stylizer.descriptions()))

    def stylize(self, image, style, strength, size, style_image=None) -> np.ndarray:
        return self.stylizer.stylize(image, style, strength, size, style_image)

    def close(self) -> None:
        self.stylizer.close()


class ServiceBackend:
    """A client of the ``stylize`` / ``list_styles`` services of a running node."""

    def __init__(self, service: str, namespace: str, timeout: float) -> None:
        import rclpy
        from rclpy.node import Node

        self.rclpy, self.timeout = rclpy, timeout
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = Node('stylize_client', namespace=namespace or '/', context=self.context)
        self.service = service

    def connect(self) -> None:
        """Waits for the stylize service (so the time printed is the call's, not discovery's)."""
        from donkey_ros_interfaces.srv import Stylize
        client = self.node.create_client(Stylize, self.service)
        try:
            self._wait(client, self.service)
        finally:
            self.node.destroy_client(client)

    def _wait(self, client, name: str) -> None:
        if not client.wait_for_service(timeout_sec=self.timeout):
            full = self.node.resolve_service_name(name)
            raise StyleError(f'no {full} service after {self.timeout:g} s: start the node '
                             '(ros2 run donkey_ros style_transfer, or ros2 launch donkey_ros '
                             'style.launch.py), check --namespace, or use --local')

    def _call(self, srv_type, name: str, request):
        client = self.node.create_client(srv_type, name)
        try:
            self._wait(client, name)
            future = client.call_async(request)
            executor = self.rclpy.executors.SingleThreadedExecutor(context=self.context)
            executor.add_node(self.node)
            executor.spin_until_future_complete(future, timeout_sec=self.timeout)
            executor.remove_node(self.node)
            if not future.done():
                raise StyleError(f'{name}: no answer within {self.timeout:g} s')
            return future.result()
        finally:
            self.node.destroy_client(client)

    def styles(self) -> list[tuple[str, str]]:
        from donkey_ros_interfaces.srv import ListStyles
        base = self.service.rsplit('/', 1)[0] + '/' if '/' in self.service else ''
        response = self._call(ListStyles, base + 'list_styles', ListStyles.Request())
        return list(zip(response.styles, response.descriptions))

    def stylize(self, image, style, strength, size, style_image=None) -> np.ndarray:
        from donkey_ros_interfaces.srv import Stylize

        from donkey_ros.common.image import array_to_image, image_to_array
        request = Stylize.Request(style=style, strength=float(strength), width=size[0],
                                  height=size[1])
        array_to_image(image, msg=request.image)
        if style_image is not None:
            array_to_image(style_image, msg=request.style_image)
        response = self._call(Stylize, self.service, request)
        if not response.success:
            raise StyleError(f'the service refused: {response.message}')
        return np.array(image_to_array(response.image))

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)


def write_palette_png(path: str, image: np.ndarray, colors: int) -> str:
    """Writes ``image`` as a PNG with a ``colors``-colour palette (dithered)."""
    from PIL import Image

    if not 2 <= colors <= 256:
        raise StyleError(f'--colors must be 2-256, got {colors}')
    if not str(path).lower().endswith('.png'):
        raise StyleError(f'--colors writes PNG files; {path} is not .png')
    palette = Image.fromarray(np.ascontiguousarray(image)).quantize(
        colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    try:
        palette.save(path, optimize=True)
    except OSError as error:
        raise StyleError(f'cannot write {path}: {error}') from None
    return path


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if not args.list and not (args.input and args.output):
        raise StyleError('give IN and OUT images (or --list); see --help')
    size = parse_size(args.size, minimum=0)
    backend = LocalBackend(args.models_dir, args.memory_budget_mb) if args.local else \
        ServiceBackend(args.service, args.namespace, args.timeout)
    try:
        if args.list:
            styles = backend.styles()
            width = max(len(name) for name, _ in styles)
            for name, description in styles:
                print(f'{name:<{width}}  {description}')
            return 0
        image = load_input(args.input)
        style_image = read_image(args.style_image) if args.style_image else None
        backend.connect()
        started = time.perf_counter()
        if args.sheet:
            from donkey_ros.style.pictures import style_sheet
            names = [name for name, _ in backend.styles() if name != 'arbitrary']
            result = style_sheet(lambda im, st: backend.stylize(im, st, args.strength, size),
                                 image, names, progress=lambda st: print(
                                     f'\r{st}...', end='', flush=True))
            print()
        else:
            result = backend.stylize(image, args.style, args.strength, size, style_image)
        seconds = time.perf_counter() - started
        path = write_image(args.output, result) if not args.colors else \
            write_palette_png(args.output, result, args.colors)
        print(f'{args.input} -> {path} ({result.shape[1]}x{result.shape[0]}, '
              f'{seconds:.2f} s {"locally" if args.local else "via the service"})')
        return 0
    finally:
        backend.close()

