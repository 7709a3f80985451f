"""Screenshot of the web controller driving the simulator (docs/images/web.png).

    python -m donkey_ros.apps.screenshot docs/images/web.png

Runs the simulator, the expert (as the user), the mux and the web node in this process, lets the
car drive for ``--seconds``, then opens the page in headless Chromium and saves what a phone shows.
Needs chromium, chromium-driver and selenium (see donkey_ros/web/browser.py).
"""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m donkey_ros.apps.screenshot',
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('output', nargs='?', default='docs/images/web.png', help='PNG to write')
    parser.add_argument('--seconds', type=float, default=8.0,
                        help='seconds the car drives before the picture')
    parser.add_argument('--track', default='oval', help='shipped track name')
    parser.add_argument('--width', type=int, default=412, help='window width (CSS pixels)')
    parser.add_argument('--height', type=int, default=800, help='window height (CSS pixels)')
    parser.add_argument('--scale', type=float, default=1.5, help='device pixel ratio')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.sim.expert_node import ExpertNode
    from donkey_ros.sim.sim_node import SimNode
    from donkey_ros.web.browser import HeadlessChromium
    from donkey_ros.web.web_node import WebNode

    context = rclpy.Context()
    rclpy.init(context=context, args=[])
    track = [Parameter('track', value=args.track)]
    nodes = [SimNode(context=context, parameter_overrides=track),
             ExpertNode(context=context, parameter_overrides=track),
             MuxNode(context=context),
             WebNode(context=context, parameter_overrides=[Parameter('port', value=0)])]
    sim, web = nodes[0], nodes[-1]
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    for node in nodes:
        executor.add_node(node)
    running = True

    def spin() -> None:
        while running and context.ok():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        print(f'simulator + expert + mux + web on {web.url}; driving {args.seconds:g} s',
              flush=True)
        with HeadlessChromium(args.width, args.height, args.scale) as driver:
            driver.get(web.url)
            while not driver.execute_script('return window.donkey.frames'):
                time.sleep(0.1)
            started = time.monotonic()
            first_page = driver.execute_script('return window.donkey.frames')
            first_camera = web.frames
            while time.monotonic() - started < args.seconds:
                time.sleep(1.0)
                s = sim.sim.status
                frames = driver.execute_script('return window.donkey.frames')
                print(f'  {time.monotonic() - started:4.1f} s: {s.progress:5.1f} m, '
                      f'{s.speed:.2f} m/s, page frames {frames}', flush=True)
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
            elapsed = time.monotonic() - started
            page = driver.execute_script('return window.donkey.frames') - first_page
            camera = web.frames - first_camera
        server = web.server
        encode_ms = 1000 * server.encode_seconds / max(1, server.frames_encoded)
        print(f'wrote {args.output}')
        print(f'  camera frames at the web node    : {camera} in {elapsed:.1f} s '
              f'({camera / elapsed:.1f} fps)')
        print(f'  frames shown on the page         : {page} ({page / elapsed:.1f} fps)')
        print(f'  page / camera frame ratio        : {page / max(camera, 1):.2f}')
        print(f'  JPEG encode + thread hand-off    : {encode_ms:.2f} ms per frame '
              f'({server.frames_encoded} frames, quality {server.jpeg_quality})')
        return 0
    finally:
        running = False
        thread.join(timeout=2.0)
        for node in reversed(nodes):
            hook = getattr(node, 'on_shutdown', None)
            if hook:
                hook()
            node.destroy_node()
        executor.shutdown()
        rclpy.try_shutdown(context=context)


if __name__ == '__main__':
    raise SystemExit(main())
