"""Pilot latency, three figures measured in one run with the same model, threads and image size:

1. bare LiteRT ``invoke()`` of the model (p50/p99);
2. the rclpy transport floor: an echo node (in its own process, like the pilot) that answers each
   image with a stamped TwistStamped at once, measured by the probe (image published -> command
   received);
3. the pilot node end to end (its own process), measured by the same probe.

The pilot's own overhead is (3) - (2) - (1) at p50 (goal: <= 0.3 ms at 160x120). (1) is timed
like the pilot runs it, one invoke per probe period (caches as cold as in the pilot); the back-to-back
figure (hot caches, lower) is printed too, with the overhead it would give. Then a 60 Hz
camera run (frames sent, commands received, frames skipped, latency in the first and last second:
no backlog grows) and a flood run (frames published as fast as possible: the pilot skips frames,
latency stays bounded). A PNG of the latency distributions and of latency over time is written.

    python bench/pilot_latency.py [--model M.tflite] [--threads 1] [--probes 400] [--out DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

SERVE_ECHO = '--serve-echo'
PROBE_GAP = 0.002   # s between probes; echo and pilot alternate, so each sees one every ~4 ms


# --- the echo node (runs in a child process) -----------------------------------------------------
def serve_echo() -> int:
    """A node that answers every camera frame with a TwistStamped carrying the frame's stamp."""
    from geometry_msgs.msg import TwistStamped
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from donkey_ros.common import qos
    from donkey_ros.common.runner import run_nodes

    class EchoNode(Node):
        NODE_NAME = 'echo'

        def __init__(self, **kwargs) -> None:
            super().__init__('echo', **kwargs)
            self.msg = TwistStamped()
            self.pub = self.create_publisher(TwistStamped, 'pilot/cmd', qos.COMMAND)
            self.create_subscription(Image, 'camera/image_raw', self.answer, qos.IMAGE_LATEST)

        def answer(self, image) -> None:
            self.msg.header.stamp = image.header.stamp
            self.pub.publish(self.msg)

    return run_nodes([EchoNode])


# --- the probe (this process) --------------------------------------------------------------------
class Probe:
    """Publishes camera frames and times the commands that come back, matched by stamp."""

    def __init__(self, namespace: str, width: int, height: int) -> None:
        """Each probe has its own rclpy context and executor thread."""
        import rclpy
        from geometry_msgs.msg import TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image

        from donkey_ros.common import qos
        from donkey_ros.common.image import array_to_image

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('latency_probe', namespace=namespace, context=self.context)
        self.publisher = self.node.create_publisher(Image, 'camera/image_raw', qos.IMAGE_PUBLISH)
        self.node.create_subscription(TwistStamped, 'pilot/cmd', self._on_cmd, qos.COMMAND)
        from diagnostic_msgs.msg import DiagnosticArray
        self.diagnostics: dict[str, str] = {}
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self._namespace = namespace
        rng = np.random.default_rng(0)
        self.frames = [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(8)]
        self.message = array_to_image(self.frames[0])
        self._array_to_image = array_to_image
        self.sent: dict[int, float] = {}
        self.received: dict[int, float] = {}
        self.event = threading.Event()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._counter = 0

    def _spin(self) -> None:
        while self._spinning and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_cmd(self, msg) -> None:
        now = time.perf_counter()
        key = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if key in self.sent and key not in self.received:
            self.received[key] = now
            self.event.set()

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith(self._namespace + '/'):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def wait_connected(self, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.publisher.get_subscription_count() and self.ping(1.0) is not None:
                return True
            time.sleep(0.1)
        return False

    def publish(self) -> int:
        """Publishes the next frame with a unique stamp; returns its key."""
        from builtin_interfaces.msg import Time

        self._counter += 1
        key = 1_000_000_000 + self._counter * 1000
        msg = self._array_to_image(self.frames[self._counter % len(self.frames)],
                                   Time(sec=key // 10**9, nanosec=key % 10**9), msg=self.message)
        self.event.clear()
        self.sent[key] = time.perf_counter()
        self.publisher.publish(msg)
        return key

    def ping(self, timeout: float = 1.0) -> float | None:
        """One frame out, wait for its command; round trip in ms or None."""
        key = self.publish()
        deadline = time.perf_counter() + timeout
        while key not in self.received:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.event.wait(left)
            self.event.clear()
        return (self.received[key] - self.sent[key]) * 1e3

    def pings(self, count: int, gap: float = 0.004) -> np.ndarray:
        values = []
        for _ in range(count):
            value = self.ping()
            if value is not None:
                values.append(value)
            time.sleep(gap)
        return np.array(values)

    def stream(self, rate: float, seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
        """Frames at ``rate`` Hz (0 = as fast as possible) for ``seconds``; returns (send times,
        latencies in ms of the frames answered, frames sent)."""
        self.sent.clear()
        self.received.clear()
        period = 1.0 / rate if rate else 0.0
        start = time.perf_counter()
        next_time = start
        keys = []
        while time.perf_counter() - start < seconds:
            keys.append(self.publish())
            if period:
                next_time += period
                time.sleep(max(0.0, next_time - time.perf_counter()))
        time.sleep(0.3)
        answered = [k for k in keys if k in self.received]
        sent_at = np.array([self.sent[k] - start for k in answered])
        latency = np.array([(self.received[k] - self.sent[k]) * 1e3 for k in answered])
        return sent_at, latency, len(keys)

    def close(self) -> None:
        self._spinning = False
        self._thread.join(timeout=1.0)
        self.node.destroy_node()
        self.executor.shutdown()
        import rclpy
        rclpy.try_shutdown(context=self.context)


def start_child(python_args: list[str], ros_args: list[str], namespace: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    command = [sys.executable] + python_args + ['--ros-args'] + ros_args + [
        '-r', f'__ns:={namespace}']
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def stop_child(child: subprocess.Popen) -> None:
    child.terminate()
    try:
        child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def percentiles(values: np.ndarray) -> tuple[float, float]:
    if not len(values):
        return float('nan'), float('nan')
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def bare_invoke(model: str, threads: int, count: int, gap: float = 0.0
                ) -> tuple[np.ndarray, object]:
    """Invoke times (ms) of the model alone: back to back (``gap`` 0, caches hot), or one every
    ``gap`` seconds, as a camera would trigger it (what the pilot actually experiences)."""
    from donkey_ros.learning.inference import ModelRunner

    runner = ModelRunner(model, threads=threads)
    frame = np.random.default_rng(1).integers(0, 255, runner.image_shape, dtype=np.uint8)
    runner.load_input(frame)
    invoke = runner.interpreter.invoke
    for _ in range(20):
        invoke()
    times = np.empty(count)
    for i in range(count):
        if gap:
            time.sleep(gap)
        start = time.perf_counter()
        invoke()
        times[i] = time.perf_counter() - start
    return times * 1e3, runner


def plot(path: Path, echo, pilot, invoke, sent_at, latency60, flood_at, flood_latency,
         title: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    high = np.percentile(np.concatenate([echo, pilot]), 99.5) if len(pilot) else 5
    bins = np.linspace(0, high, 60)
    axes[0].hist(invoke, bins=bins, alpha=0.6, label='(1) bare invoke')
    axes[0].hist(echo, bins=bins, alpha=0.6, label='(2) echo node (transport)')
    axes[0].hist(pilot, bins=bins, alpha=0.6, label='(3) pilot node end to end')
    axes[0].set_xlabel('ms')
    axes[0].set_ylabel('frames')
    axes[0].legend()
    axes[0].set_title('latency distributions')
    axes[1].plot(sent_at, latency60, '.', markersize=3, label='60 Hz camera')
    if len(flood_at):
        axes[1].plot(flood_at, flood_latency, '.', markersize=3, label='flood (max rate)')
    axes[1].set_xlabel('time since start of run (s)')
    axes[1].set_ylabel('image -> command (ms)')
    axes[1].set_title('latency over time (a growing backlog would climb)')
    axes[1].legend()
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == SERVE_ECHO:
        return serve_echo()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=str(ROOT / 'donkey_ros/models/default_pilot.tflite'))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--probes', type=int, default=400, help='ping-pong frames per target')
    parser.add_argument('--camera-hz', type=float, default=60.0)
    parser.add_argument('--seconds', type=float, default=5.0, help='length of the 60 Hz run')
    parser.add_argument('--out', default=str(ROOT / 'runs' / 'bench'))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    hot, runner = bare_invoke(args.model, args.threads, max(1000, args.probes))
    invoke, _ = bare_invoke(args.model, args.threads, args.probes, gap=PROBE_GAP * 2)
    height, width, _ = runner.image_shape
    print(f'model {runner.describe()}')
    print(f'frames {width}x{height} rgb8, {args.threads} thread(s), {os.cpu_count()} CPUs, '
          f'{args.probes} probes per target')
    # Both nodes run at once, each in its own namespace; probes alternate between them so a
    # machine that gets busier or quieter during the run affects both figures alike.
    targets = {
        'echo': ([str(Path(__file__).resolve()), SERVE_ECHO], []),
        'pilot': (['-c', 'from donkey_ros.learning.pilot_node import main; main()'],
                  ['-p', f'model_path:={args.model}', '-p', f'threads:={args.threads}']),
    }
    probes, children = {}, {}
    results = {'echo': [], 'pilot': []}
    try:
        for name, (python_args, ros_args) in targets.items():
            namespace = f'/bench{os.getpid()}_{name}'
            children[name] = start_child(python_args, ros_args, namespace)
            probes[name] = Probe(namespace, width, height)
        for name, probe in probes.items():
            if not probe.wait_connected():
                child = children[name]
                detail = child.stderr.read() if child.poll() is not None else ''
                print(f'error: the {name} node did not answer {detail}')
                return 1
            probe.pings(50)  # warm-up
        for _ in range(args.probes):
            for name, probe in probes.items():
                value = probe.ping()
                if value is not None:
                    results[name].append(value)
                time.sleep(PROBE_GAP)
        results = {k: np.array(v) for k, v in results.items()}
        pilot = probes['pilot']
        time.sleep(1.2)  # the pilot's diagnostics (1 Hz) now cover the last 200 probes
        in_node = dict(pilot.diagnostics)
        sent_at, latency60, sent60 = pilot.stream(args.camera_hz, args.seconds)
        time.sleep(1.2)
        skipped_before = int(in_node.get('frames_skipped', 0))
        skipped60 = int(pilot.diagnostics.get('frames_skipped', 0)) - skipped_before
        flood_at, flood_latency, flood_sent = pilot.stream(0.0, 2.0)
    finally:
        for probe in probes.values():
            probe.close()
        for child in children.values():
            stop_child(child)

    i50, i99 = percentiles(invoke)
    e50, e99 = percentiles(results['echo'])
    p50, p99 = percentiles(results['pilot'])
    overhead = p50 - e50 - i50
    print()
    print(f'{"":34} {"p50 ms":>8} {"p99 ms":>8}')
    h50, h99 = percentiles(hot)
    print(f'{"(1) bare LiteRT invoke":34} {i50:8.3f} {i99:8.3f}   one per {2 * PROBE_GAP * 1e3:g} '
          f'ms, as the probes come ({h50:.3f} / {h99:.3f} back to back)')
    print(f'{"(2) rclpy transport (echo node)":34} {e50:8.3f} {e99:8.3f}')
    print(f'{"(3) pilot node end to end":34} {p50:8.3f} {p99:8.3f}')
    print(f'pilot overhead (3)-(2)-(1) at p50: {overhead:.3f} ms '
          f'(goal <= 0.300 ms: {"met" if overhead <= 0.3 else "NOT met"}); with the back-to-back '
          f'invoke instead: {p50 - e50 - h50:.3f} ms; '
          f'pilot / (transport + invoke) = {p50 / (e50 + i50):.2f}x')
    processing = float(in_node.get('processing_ms_p50', 'nan'))
    inference = float(in_node.get('inference_ms_p50', 'nan'))
    print(f'cross-check inside the pilot (its diagnostics): frame callback -> command published '
          f'{processing:.3f} ms p50, of which invoke {inference:.3f} ms: '
          f'{processing - inference:.3f} ms of pilot work per frame')
    first = latency60[sent_at < 1.0]
    last = latency60[sent_at > sent_at.max() - 1.0] if len(sent_at) else latency60
    print(f'\n{args.camera_hz:g} Hz camera for {args.seconds:g} s: {sent60} frames sent, '
          f'{len(latency60)} commands received, {skipped60} frames skipped by the pilot; '
          f'latency p50 first second {np.median(first):.3f} ms, last second '
          f'{np.median(last):.3f} ms (ratio {np.median(last) / np.median(first):.2f}), '
          f'max {latency60.max():.2f} ms')
    flood_rate = flood_sent / 2.0
    late = flood_latency[flood_at > flood_at.max() - 0.5] if len(flood_at) else flood_latency
    print(f'flood: {flood_sent} frames in 2 s ({flood_rate:.0f} Hz), {len(flood_latency)} '
          f'answered, {flood_sent - len(flood_latency)} skipped; latency p50 '
          f'{np.median(flood_latency):.2f} ms, last 0.5 s p50 {np.median(late):.2f} ms, '
          f'max {flood_latency.max():.2f} ms (bounded: no backlog)')
    picture = out / 'pilot_latency.png'
    plot(picture, results['echo'], results['pilot'], invoke, sent_at, latency60, flood_at,
         flood_latency, f'{runner.name} {width}x{height}, {args.threads} thread(s): '
         f'invoke {i50:.3f}, echo {e50:.3f}, pilot {p50:.3f} ms p50 -> overhead '
         f'{overhead:.3f} ms')
    print(f'wrote {picture}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
