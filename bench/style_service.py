"""Style service overhead: round trip through the `stylize` service vs calling the network directly.

    python bench/style_service.py [--runs 20] [--style style7] [--threads 1] [--plot FILE.png]

The style_transfer node runs in its own process (as deployed); this process is the client. At each
size, the same camera frame goes through, interleaved run by run so both see the same machine load:
- direct: ``onnxruntime`` ``session.run`` on the 26-style network with the frame already a float
  tensor (no pre/post-processing: the network alone);
- core: ``Stylizer.stylize`` in this process (network + pre/post-processing);
- service: request -> DDS -> node (image_to_array, stylize, array_to_image) -> DDS -> response.
Prints p50 (and min) times and the ratio of the p50s service / direct (goal: <= 1.15 at 640x480),
with the machine's load average: the three paths run at different instants, so other processes
competing for the CPU make the ratio noisy; the min shows the cost without them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

SIZES = ((160, 120), (640, 480))
GOAL = 1.15


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=20, help='measurements per size and path')
    parser.add_argument('--style', default='style7')
    parser.add_argument('--plot', default='', help='also write a bar chart PNG here')
    parser.add_argument('--threads', type=int, default=1,
                        help='ONNX Runtime intra-op threads, the same for all three paths '
                             '(default 1: steadier timings on a shared machine; 0 = ORT default)')
    args = parser.parse_args(argv)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')

    from donkey_ros_interfaces.srv import Stylize

    from donkey_ros.common.image import array_to_image, image_to_array
    from donkey_ros.sim.pictures import sim_frame
    from donkey_ros.style.networks import MultiStyleNetwork, builtin_models_dir, onnx_session
    from donkey_ros.style.stylizer import Stylizer
    from style_client import style_service

    sizes = '[' + ','.join(f"'{w}x{h}'" for w, h in SIZES) + ']'
    with style_service(f'/bench{os.getpid()}', [f'warmup_sizes:={sizes}',
                                                f'threads:={args.threads}'],
                       'style_bench', stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True) as bench:
        process, client, executor = bench.process, bench.client, bench.executor
        print('starting the style_transfer node (loads and warms up its networks)...', flush=True)
        if not client.wait_for_service(timeout_sec=60):
            print(process.stdout.read() if process.poll() is not None else 'no service')
            return 1
        stylizer = Stylizer(warmup=SIZES, threads=args.threads)
        session = onnx_session(builtin_models_dir() / 'multistyle26.onnx', threads=args.threads)
        index = int(stylizer.style(args.style).name[len('style'):])
        weights = MultiStyleNetwork.weights(index)
        threads = args.threads or 'ORT default'
        print(f'{args.runs} runs per size and path, style {args.style}, {threads} thread(s), '
              f'{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; p50 (min) in ms')
        print(f'{"size":>9}  {"direct ORT":>14}  {"core":>14}  {"service":>14}  '
              f'{"(in node)":>9}  {"service/direct":>14}')
        results = []
        for width, height in SIZES:
            frame = sim_frame('oval', width, height)
            tensor = np.ascontiguousarray(frame.transpose(2, 0, 1)[None], np.float32) / 255.0
            request = Stylize.Request(style=args.style, strength=1.0)
            array_to_image(frame, msg=request.image)
            times = {'direct': [], 'core': [], 'service': [], 'node': []}
            for run in range(args.runs + 1):  # run 0 of each path is a discarded warm-up
                t = time.perf_counter()
                session.run(None, {'image': tensor, 'style_weights': weights})
                direct = time.perf_counter() - t
                t = time.perf_counter()
                stylizer.stylize(frame, args.style)
                core = time.perf_counter() - t
                t = time.perf_counter()
                future = client.call_async(request)
                executor.spin_until_future_complete(future, timeout_sec=60)
                service = time.perf_counter() - t
                response = future.result()
                if response is None or not response.success:
                    print(f'service failed: {getattr(response, "message", "no answer")}')
                    return 1
                if run:
                    times['direct'].append(direct)
                    times['core'].append(core)
                    times['service'].append(service)
                    times['node'].append(response.processing_time)
            assert image_to_array(response.image).shape == frame.shape
            p50 = {k: 1000 * float(np.median(v)) for k, v in times.items()}
            low = {k: 1000 * float(np.min(v)) for k, v in times.items()}
            ratio = p50['service'] / p50['direct']
            results.append(((width, height), p50, ratio))
            cells = '  '.join(f'{p50[k]:>6.1f} ({low[k]:>5.1f})' for k in
                              ('direct', 'core', 'service'))
            print(f'{width:>4}x{height:<4}  {cells}  {p50["node"]:>9.1f}  {ratio:>13.3f}x  '
                  f'(min: {low["service"] / low["direct"]:.3f}x)')
        ratio = results[-1][2]
        print(f'service / direct at 640x480: {ratio:.3f}x (goal <= {GOAL}x): '
              f'{"met" if ratio <= GOAL else "NOT met"}; load average now '
              f'{os.getloadavg()[0]:.1f}')
        if args.plot:
            plot(results, args.plot, args.runs)
            print(f'wrote {args.plot}')
        return 0


def plot(results, path: str, runs: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6))
    for axis, (size, p50, ratio) in zip(np.atleast_1d(axes), results):
        labels = ['direct ORT', 'core', 'service']
        values = [p50['direct'], p50['core'], p50['service']]
        bars = axis.bar(labels, values, color=['#888888', '#4c78a8', '#f58518'])
        axis.bar_label(bars, fmt='%.1f')
        axis.set_ylabel('p50 ms')
        axis.set_title(f'{size[0]}x{size[1]}: service {ratio:.2f}x direct')
        axis.set_ylim(0, max(values) * 1.2)
    figure.suptitle(f'stylize round trip vs the network alone (p50 of {runs} runs)')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


if __name__ == '__main__':
    sys.exit(main())
