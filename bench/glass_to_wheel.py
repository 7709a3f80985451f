"""Glass to wheel: camera frame stamp -> PWM register write, and CPU per second of driving.

The car graph runs as it does on the car: the camera node (file source: frames read, decoded,
stamped when grabbed), the pilot (shipped model, LiteRT, constant throttle), the mux in ``pilot``
mode and the actuator on the real Adafruit driver over the emulated PCA9685, which logs every
output change with its time. Frames are chosen so consecutive frames steer differently: every
command the pilot makes changes the steering register, and each change is matched to its frame
(the command carries the frame's stamp; a probe subscribed to ``cmd`` reads it).

Measured, in one run, for each layout (one process per node; all in one process, ``donkey-ros car``;
``fast``: the same with the in-process fast path, ``donkey-ros car --intra-process``) x executor
(SingleThreadedExecutor; Kilted's EventsExecutor where rclpy has it) x camera rate (20 and 60 Hz):
- glass-to-wheel latency p50/p99 (frame stamp -> register write);
- CPU seconds per second of driving of all the car's processes (/proc/PID/stat), the inference
  share (commands x the CPU of one bare invoke) and the rest: the car graph without inference;
- frames answered, and p50 in the first and last second (a growing backlog would climb);
- the floor: a chain of echo nodes of the same length (a source publishing stamped 160x120
  frames, image -> TwistStamped, TwistStamped -> TwistStamped, a sink logging the arrival time
  like the board), in the same layout and executor.
Plus the bare LiteRT invoke (one every 10 ms, caches about as cold as between frames).

    python bench/glass_to_wheel.py [--seconds 6] [--quick] [--executors single,events]
    python bench/glass_to_wheel.py --breakdown [--layouts fast]   # where the time goes, by stage

The machine's load changes the absolute figures; the ratios (car / floor, one process / separate)
are printed next to them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from procstat import cpu_seconds, machine_ticks, memory_mb, stolen_share  # noqa: E402

MODEL = ROOT / 'donkey_ros' / 'models' / 'default_pilot.tflite'
SERVE = '--serve'
SERVE_CAR_SHARED = '--serve-car-shared'
FRAME_STEERING: list[float] = []  # the model's steering for each frame (make_frames)
INVOKE_GAP = 0.01  # s between bare invokes (caches about as cold as between camera frames)


# --- the echo chain (child processes, or all in one) ---------------------------------------------
def echo_nodes(log_path: str, rate: float, frames_dir: str):
    """Node classes of the echo chain: (source, image echo, relay) and the sink (own thread).

    Their topics go through the fast path when it is on (``intra.enable``), like the car's; they
    then publish a new message each time, as the car's nodes do."""
    import cv2
    from geometry_msgs.msg import TwistStamped
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from donkey_ros.common import intra, qos
    from donkey_ros.common.image import array_to_image

    class EchoSource(Node):
        """Publishes stamped camera-sized frames at ``rate`` from a thread, like the camera."""
        NODE_NAME = 'echo_source'

        def __init__(self, **kwargs):
            super().__init__('echo_source', **kwargs)
            self.pub = intra.create_publisher(self, Image, 'camera/image_raw', qos.IMAGE_PUBLISH)
            self.reuse = intra.enabled(self.context) is None
            names = sorted(Path(frames_dir).iterdir())
            self.frames = [np.ascontiguousarray(cv2.imread(str(n))[:, :, ::-1]) for n in names]
            self.msg = None
            self._stop = threading.Event()
            threading.Thread(target=self._run, daemon=True).start()

        def _run(self):
            period, index = 1.0 / rate, 0
            next_time = time.monotonic()
            while not self._stop.is_set():
                next_time += period
                self._stop.wait(max(0.0, next_time - time.monotonic()))
                stamp = self.get_clock().now().to_msg()
                self.msg = array_to_image(self.frames[index % len(self.frames)], stamp,
                                          msg=self.msg if self.reuse else None)
                self.pub.publish(self.msg)
                index += 1

        def on_shutdown(self):
            self._stop.set()

    class EchoImage(Node):
        NODE_NAME = 'echo_image'

        def __init__(self, **kwargs):
            super().__init__('echo_image', **kwargs)
            self.pub = intra.create_publisher(self, TwistStamped, 'pilot/cmd', qos.COMMAND)
            intra.create_subscription(self, Image, 'camera/image_raw', self.answer,
                                      qos.IMAGE_LATEST)

        def answer(self, image):
            msg = TwistStamped()
            msg.header.stamp = image.header.stamp
            self.pub.publish(msg)

    class EchoRelay(Node):
        NODE_NAME = 'echo_relay'

        def __init__(self, **kwargs):
            super().__init__('echo_relay', **kwargs)
            self.pub = intra.create_publisher(self, TwistStamped, 'cmd', qos.COMMAND)
            intra.create_subscription(self, TwistStamped, 'pilot/cmd', self.pub.publish,
                                      qos.COMMAND)

    class EchoSink(Node):
        NODE_NAME = 'echo_sink'

        def __init__(self, **kwargs):
            super().__init__('echo_sink', **kwargs)
            self.log = open(log_path, 'a', encoding='utf-8')
            intra.create_subscription(self, TwistStamped, 'cmd', self.arrive, qos.COMMAND)

        def arrive(self, msg):
            t = time.monotonic()
            stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
            self.log.write(json.dumps({'stamp': stamp, 't': t}) + '\n')
            self.log.flush()

    return [EchoSource, EchoImage, EchoRelay], [EchoSink]


def serve(argv: list[str]) -> int:
    """Child process: ``--serve ROLE LOG RATE FRAMES --ros-args ...`` (ROLE: a node, 'all',
    'all-fast': with the fast path, or 'all-shared': the sink on the main executor too)."""
    from donkey_ros.common import intra
    from donkey_ros.common.runner import run_nodes

    role, log_path, rate, frames_dir = argv[:4]
    main_nodes, sink = echo_nodes(log_path, float(rate), frames_dir)
    if role == 'all-fast':
        def enabled_sink(**kwargs):
            intra.enable()  # rclpy is initialised by now; before any node
            return sink[0](**kwargs)
        enabled_sink.NODE_NAME = sink[0].NODE_NAME
        return run_nodes(main_nodes, args=['echo'] + argv[4:], isolated=[enabled_sink])
    if role == 'all':
        return run_nodes(main_nodes, args=['echo'] + argv[4:], isolated=sink)
    if role == 'all-shared':
        return run_nodes(sink + main_nodes, args=['echo'] + argv[4:])
    cls = {c.NODE_NAME: c for c in main_nodes + sink}[role]
    return run_nodes([cls], args=['echo'] + argv[4:])


def serve_car_shared(argv: list[str]) -> int:
    """Child process: the one-process car with the actuator on the main executor (what the
    failsafe test shows unsafe; measured only to price the actuator's own thread)."""
    import functools

    from donkey_ros.apps import car
    from donkey_ros.common.runner import run_nodes

    ours, ros = car.split_ros_args(argv)
    args = car.build_parser().parse_args(ours)
    factories = [functools.partial(cls, parameter_overrides=overrides)
                 for cls, overrides, _ in car.parts(args)]
    return run_nodes(factories, args=['car', '--ros-args', '--params-file', args.params_file]
                     + ros[1:])


# --- running a layout ----------------------------------------------------------------------------
def child_env(executor: str) -> dict:
    env = dict(os.environ)
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env['PYTHONPATH'] = str(ROOT) + os.pathsep + env.get('PYTHONPATH', '')
    env['DONKEY_ROS_EXECUTOR'] = executor
    return env


def car_commands(layout: str, params: str, namespace: str) -> list[list[str]]:
    ros = ['--ros-args', '--params-file', params, '-r', f'__ns:={namespace}']
    if layout in ('one', 'fast', 'shared'):
        head = [sys.executable, '-m', 'donkey_ros.apps.car'] if layout != 'shared' else \
            [sys.executable, str(Path(__file__).resolve()), SERVE_CAR_SHARED]
        fast = ['--intra-process'] if layout == 'fast' else []
        return [head + ['--mode', 'pilot', '--params-file', params] + fast +
                ['--ros-args', '-r', f'__ns:={namespace}']]
    modules = ['donkey_ros.actuation.actuator_node', 'donkey_ros.control.mux_node',
               'donkey_ros.learning.pilot_node', 'donkey_ros.camera.camera_node']
    return [[sys.executable, '-c', f'from {module} import main; main()'] + ros
            for module in modules]


def echo_commands(layout: str, log: str, rate: float, frames: str, namespace: str):
    head = [sys.executable, str(Path(__file__).resolve()), SERVE]
    tail = [log, str(rate), frames, '--ros-args', '-r', f'__ns:={namespace}']
    roles = {'one': ['all'], 'fast': ['all-fast'], 'shared': ['all-shared']}.get(
        layout, ['echo_sink', 'echo_relay', 'echo_image', 'echo_source'])
    return [head + [role] + tail for role in roles]


def read_jsonl(path: str) -> list[dict]:
    rows = []
    try:
        with open(path, encoding='utf-8') as log:
            for line in log:
                if line.endswith('\n'):
                    rows.append(json.loads(line))
    except FileNotFoundError:
        pass
    return rows


class CmdProbe:
    """Subscribes to ``cmd`` in its own context and keeps (stamp ns, steering) of each frame."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from geometry_msgs.msg import TwistStamped

        from donkey_ros.common import qos
        from donkey_ros.common.runner import make_executor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('g2w_probe', namespace=namespace, context=self.context)
        self.seen: dict[int, float] = {}
        self.node.create_subscription(TwistStamped, 'cmd', self._on_cmd, qos.COMMAND)
        from diagnostic_msgs.msg import DiagnosticArray
        self.pilot: dict[str, str] = {}
        self._pilot_name = f'{namespace}/pilot'.lstrip('/')
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = make_executor('single', self.context)
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _on_cmd(self, msg) -> None:
        key = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self.seen.setdefault(key, msg.twist.angular.z)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            if status.name.lstrip('/').startswith(self._pilot_name):
                self.pilot = {kv.key: kv.value for kv in status.values}

    def _spin(self) -> None:
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        import rclpy
        self._running = False
        self._thread.join(timeout=2.0)
        self.node.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


@dataclass
class Result:
    latency: np.ndarray                # ms, frames answered in the window
    sent_at: np.ndarray                # s since the window started, per answered frame
    answered: int
    expected: int                      # car: commands the probe saw; echo: frames sent
    cpu: float                         # CPU s per s of all the processes
    commands_per_s: float
    extra: dict = field(default_factory=dict)

    def p(self, q: float) -> float:
        return float(np.percentile(self.latency, q)) if len(self.latency) else float('nan')

    def drift(self) -> tuple[float, float]:
        if not len(self.sent_at):
            return float('nan'), float('nan')
        first = self.latency[self.sent_at < self.sent_at.min() + 1.0]
        last = self.latency[self.sent_at > self.sent_at.max() - 1.0]
        return float(np.median(first)), float(np.median(last))


def clock_offset() -> float:
    """time.time() - time.monotonic() (the same in every process of this machine)."""
    best = None
    for _ in range(50):
        a = time.monotonic()
        wall = time.time()
        b = time.monotonic()
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) / 2)
    return best[1]


def run_layout(kind: str, layout: str, executor: str, rate: float, seconds: float,
               work: Path, frames: Path, tag: str) -> Result:
    """Starts the car (or the echo chain), waits until it drives, measures for ``seconds``."""
    namespace = f'/g2w{os.getpid()}_{tag}'
    log = work / f'{tag}.jsonl'
    if kind == 'car':
        params = work / f'{tag}.yaml'
        params.write_text(
            f'/**/actuator:\n  ros__parameters:\n    backend: emulated\n    emulated_log: {log}\n'
            f'/**/camera:\n  ros__parameters:\n    backend: file\n    path: {frames}\n'
            f'    fps: {rate}\n'
            f'/**/pilot:\n  ros__parameters:\n    model_path: {MODEL}\n    threads: 1\n'
            f'    throttle_mode: constant\n    constant_throttle: 0.5\n'
            f'/**/mux:\n  ros__parameters:\n    mode: pilot\n')
        commands = car_commands(layout, str(params), namespace)
    else:
        commands = echo_commands(layout, str(log), rate, str(frames), namespace)
    env = child_env(executor)
    probe = CmdProbe(namespace) if kind == 'car' else None
    children = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True) for c in commands]
    try:
        deadline = time.monotonic() + 60
        # Driving (register writes logged), and the probe hears cmd: DDS discovery between this
        # process and the car's sometimes takes seconds, and a window opened before it would
        # see a fraction of the commands.
        while len(read_jsonl(str(log))) < 20 or (probe and len(probe.seen) < 10):
            if time.monotonic() > deadline or any(c.poll() is not None for c in children):
                dead = [c for c in children if c.poll() is not None]
                detail = dead[0].stderr.read()[-2000:] if dead else 'timed out'
                raise RuntimeError(f'{kind} {layout} did not start: {detail}')
            time.sleep(0.1)
        time.sleep(1.0)  # warm-up
        each0 = [cpu_seconds(c.pid) for c in children]
        cpu0 = sum(each0)
        seen0 = len(probe.seen) if probe else 0
        ticks = machine_ticks()
        start = time.monotonic()
        time.sleep(seconds)
        end = time.monotonic()
        steal = stolen_share(ticks, machine_ticks())
        each1 = [cpu_seconds(c.pid) for c in children]
        cpu1 = sum(each1)
        rss = sum(memory_mb(c.pid)['VmRSS'] for c in children)
        commands_seen = (len(probe.seen) - seen0) if probe else 0
        pilot = dict(probe.pilot) if probe else {}
        time.sleep(0.3)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if probe:
            probe.close()
    offset = clock_offset()
    window = (start, end)
    if kind == 'car':
        latency, sent = match_car(read_jsonl(str(log)), probe.seen, offset, window)
    else:
        latency, sent = match_echo(read_jsonl(str(log)), offset, window)
    elapsed = end - start
    in_window = [k for k, z in (probe.seen if probe else {}).items()
                 if start <= k / 1e9 - offset <= end
                 and min(abs(v - z) for v in FRAME_STEERING) <= 0.01]
    return Result(latency, sent - start if len(sent) else sent, len(latency),
                  len(in_window) if probe else int(round(rate * elapsed)),
                  (cpu1 - cpu0) / elapsed,
                  (commands_seen / elapsed) if probe else len(latency) / elapsed,
                  {'pilot_ms': float(pilot.get('latency_ms_p50', 'nan')), 'rss': rss,
                   'each': [(b - a) / (end - start) for a, b in zip(each0, each1)],
                   'skipped': pilot.get('frames_skipped', '?'), 'steal': steal})


def match_echo(rows, offset, window):
    latency, sent = [], []
    first = {}
    for row in rows:
        first.setdefault(row['stamp'], row['t'])
    for stamp, t in first.items():
        at = stamp / 1e9 - offset
        if window[0] <= at <= window[1]:
            latency.append((t - at) * 1e3)
            sent.append(at)
    return np.array(latency), np.array(sent)


def match_car(rows, seen: dict, offset, window):
    """Each frame's command -> the first steering change to that command's pulse after the
    frame's stamp. Steering values map to the 4 tick values the frames produce, in order."""
    steering = [r for r in rows if r['channel'] == 1]
    values = sorted(FRAME_STEERING)
    counts = {}
    for r in steering:
        counts[r['ticks']] = counts.get(r['ticks'], 0) + 1
    ticks = sorted(sorted(counts, key=counts.get, reverse=True)[:len(values)])
    # More steering = more left = more ticks (left 460 > right 290 in the default calibration).
    tick_of = dict(zip(values, ticks))
    times = np.array([r['t'] for r in steering])
    tick_arr = np.array([r['ticks'] for r in steering])
    latency, sent = [], []
    for stamp, z in seen.items():
        at = stamp / 1e9 - offset
        if not window[0] <= at <= window[1]:
            continue
        nearest = min(values, key=lambda v: abs(v - z))
        if abs(nearest - z) > 0.01:
            continue  # not a frame's command (the mux's neutral before the pilot spoke)
        want = tick_of[nearest]
        later = np.nonzero((times >= at) & (tick_arr == want))[0]
        if len(later):
            latency.append((times[later[0]] - at) * 1e3)
            sent.append(at)
    return np.array(latency), np.array(sent)


# --- frames, invoke ------------------------------------------------------------------------------
def make_frames(folder: Path, count: int = 4, suffix: str = 'png') -> tuple[list[float], object]:
    """Writes ``count`` random 160x120 frames whose steering differs by >= 0.05 (a few ticks)."""
    import cv2

    from donkey_ros.learning.inference import ModelRunner

    runner = ModelRunner(MODEL, threads=1)
    rng = np.random.default_rng(0)
    candidates = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(48)]
    steer = np.array([runner.predict(c)[0] for c in candidates])
    order = np.argsort(steer)
    picks = [order[int(round(q * (len(order) - 1)))] for q in np.linspace(0, 1, count)]
    values = sorted(float(v) for v in steer[picks])
    FRAME_STEERING[:] = values
    if min(np.diff(values)) < 0.05:
        raise RuntimeError(f'frames steer too alike: {values}')
    # Played in name order: alternate high and low so every frame changes the pulse.
    for index, pick in enumerate([picks[0], picks[2], picks[1], picks[3]][:count]):
        cv2.imwrite(str(folder / f'{index:02d}.{suffix}'), candidates[pick][:, :, ::-1])
    return values, runner


def bare_invoke(runner, count: int, gap: float) -> tuple[np.ndarray, float]:
    """Wall ms of ``count`` invokes one every ``gap`` s, and the CPU s of one invoke."""
    frame = np.random.default_rng(1).integers(0, 255, runner.image_shape, dtype=np.uint8)
    runner.load_input(frame)
    invoke = runner.interpreter.invoke
    for _ in range(20):
        invoke()
    wall, cpu = np.empty(count), np.empty(count)
    for i in range(count):
        time.sleep(gap)
        c, w = time.thread_time(), time.perf_counter()
        invoke()
        wall[i], cpu[i] = time.perf_counter() - w, time.thread_time() - c
    return wall * 1e3, float(np.median(cpu))


# --- where the time goes (one process, instrumented) ---------------------------------------------
def breakdown(frames: Path, executor: str, seconds: float, fast_path: bool = False) -> None:
    """Runs the one-process car in this process, times each stage of each frame, prints p50/p90.

    The stages are timed by wrapping the nodes' own callbacks (camera frame hand-off, pilot frame
    callback and publish, mux and actuator command callbacks); the wrappers add a few us.
    """
    import collections
    import functools

    import rclpy
    from rclpy.parameter import Parameter

    from donkey_ros.apps import car
    from donkey_ros.common.runner import Spinner, call_shutdown_hooks

    from donkey_ros.common import intra

    os.environ['DONKEY_ROS_EXECUTOR'] = executor  # the pilot's frame thread reads it, as in a car
    context = rclpy.Context()
    rclpy.init(context=context)
    if fast_path:
        intra.enable(context)
    extra = {'actuator': [Parameter('backend', value='emulated')],
             'camera': [Parameter('backend', value='file'), Parameter('path', value=str(frames)),
                        Parameter('fps', value=20.0)],
             'pilot': [Parameter('model_path', value=str(MODEL)),
                       Parameter('throttle_mode', value='constant'),
                       Parameter('constant_throttle', value=0.5)]}
    spinner = Spinner(context, kind=executor)
    nodes = {}
    for cls, overrides, isolated in car.parts(car.build_parser().parse_args(['--mode', 'pilot'])):
        node = cls(parameter_overrides=overrides + extra.get(cls.NODE_NAME, []), context=context,
                   namespace=f'/g2w{os.getpid()}_breakdown')
        nodes[cls.NODE_NAME] = node
        spinner.add(node, isolated=isolated)
    marks = collections.defaultdict(dict)

    def key(stamp) -> int:
        return stamp.sec * 10**9 + stamp.nanosec

    def timed(callback, before, after=None, stamp_of=lambda args: args[0].header.stamp):
        @functools.wraps(callback)  # keeps its signature: rclpy passes (msg, info) by it
        def wrapper(*args):
            mark = marks[key(stamp_of(args))]
            mark.setdefault(before, time.monotonic())
            callback(*args)
            if after:
                mark.setdefault(after, time.monotonic())
        return wrapper

    camera, pilot = nodes['camera'], nodes['pilot']
    camera.capture.on_frame = timed(camera.capture.on_frame, 'camera publish', 'camera published',
                                    stamp_of=lambda args: args[1])
    registry = intra.enabled(context)
    # With the fast path the callbacks to time are those the in-process subscriptions call.
    subscriptions = {name: [s for topic_subs in registry._subscriptions.values()
                            for s in topic_subs if s.node is node]
                     if registry else node.subscriptions
                     for name, node in (('pilot', pilot.frames_node), ('mux', nodes['mux']),
                                        ('actuator', nodes['actuator']))}
    for subscription in subscriptions['pilot']:
        subscription.callback = timed(subscription.callback, 'pilot callback')
    pilot._publish = timed(pilot._publish, 'pilot publish', 'pilot published',
                           stamp_of=lambda args: args[2])
    for name, topic in (('mux', 'pilot/cmd'), ('actuator', '/cmd')):
        for subscription in subscriptions[name]:
            if subscription.topic_name.endswith(topic):
                subscription.callback = timed(subscription.callback, f'{name} callback',
                                              f'{name} done' if name == 'actuator' else None)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [spinner.spin_once(0.05)
                                              for _ in iter(stop.is_set, True)], daemon=True)
    thread.start()
    time.sleep(seconds + 3.0)
    stop.set()
    thread.join(timeout=2.0)
    import gc
    started = time.perf_counter()
    gc.collect()
    unfrozen = time.perf_counter() - started
    gc.freeze()  # what common/runner.run_nodes does once the nodes are made
    started = time.perf_counter()
    gc.collect()
    frozen = time.perf_counter() - started
    call_shutdown_hooks(nodes.values())
    spinner.shutdown()
    for node in nodes.values():
        node.destroy_node()
    rclpy.try_shutdown(context=context)
    order = ['camera publish', 'camera published', 'pilot callback', 'pilot publish',
             'pilot published', 'mux callback', 'actuator callback', 'actuator done']
    offset = clock_offset()
    rows = np.array([[m[name] for name in order] for k, m in marks.items()
                     if all(name in m for name in order)] or np.empty((0, len(order))))
    stamps = np.array([k / 1e9 - offset for k, m in marks.items()
                       if all(name in m for name in order)])
    print(f'\nwhere the time goes: one process{" with the fast path" if fast_path else ""}, '
          f'{executor} executor, 20 Hz, {len(rows)} frames (ms, p50 / p90 / p99)')
    if not len(rows):
        return
    # In time order: with the fast path the pilot's publish returns after the mux and the
    # actuator ran (in its thread), so 'pilot published' comes last.
    timeline = sorted(order, key=lambda name: np.median(rows[:, order.index(name)] - stamps))
    start = stamps
    for name, end in zip(['frame stamp'] + timeline[:-1], timeline):
        column = (rows[:, order.index(end)] - start) * 1e3
        print(f'  {name + " -> " + end:44} {np.median(column):6.3f} / '
              f'{np.percentile(column, 90):6.3f} / {np.percentile(column, 99):6.3f}')
        start = rows[:, order.index(end)]
    total = (rows[:, order.index('actuator done')] - stamps) * 1e3
    print(f'  {"frame stamp -> actuator done":44} {np.median(total):6.3f} / '
          f'{np.percentile(total, 90):6.3f} / {np.percentile(total, 99):6.3f}')
    # Another "glass": the image ready (read, decoded, shaped), where a driver that decodes
    # before stamping would stamp. The figures above stay from the frame stamp (frame grabbed).
    ready = (rows[:, order.index('actuator done')] - rows[:, 0]) * 1e3
    print(f'  {"image ready (camera publish) -> actuator done":44} {np.median(ready):6.3f} / '
          f'{np.percentile(ready, 90):6.3f} / {np.percentile(ready, 99):6.3f}')
    print(f'a full garbage collection in this car process: {unfrozen * 1e3:.1f} ms, '
          f'{frozen * 1e3:.2f} ms once start-up objects are frozen (gc.freeze, as run_nodes does)')


# --- main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == SERVE:
        return serve(argv[1:])
    if argv and argv[0] == SERVE_CAR_SHARED:
        return serve_car_shared(argv[1:])
    from donkey_ros.common.runner import events_executor_class

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=6.0, help='measurement window per run')
    parser.add_argument('--rates', default='20,60', help='camera rates (Hz)')
    parser.add_argument('--executors', default=None,
                        help='single,events (default: both where rclpy has the EventsExecutor)')
    parser.add_argument('--layouts', default='separate,one,fast,shared',
                        help='separate: a process per node; one: donkey-ros car; fast: '
                             'donkey-ros car --intra-process; shared: one process with the '
                             'actuator on the main executor (default executor only); '
                             '--breakdown: one or fast (the last given)')
    parser.add_argument('--breakdown', action='store_true',
                        help='only time each stage of the one-process car, in this process')
    parser.add_argument('--frame-format', choices=('png', 'bmp'), default='png',
                        help='files the camera plays: png (decoded after the stamp, like a USB '
                             "camera's MJPEG) or bmp (raw pixels, like the Pi camera's frames)")
    parser.add_argument('--quick', action='store_true',
                        help='2 s windows, the default executor only (a smoke run)')
    args = parser.parse_args(argv)
    executors = (args.executors.split(',') if args.executors else
                 ['single'] + (['events'] if events_executor_class() else []))
    if args.quick:
        args.seconds = min(args.seconds, 2.0)
        executors = executors[-1:]
    rates = [float(r) for r in args.rates.split(',')]
    layouts = args.layouts.split(',')
    started = time.monotonic()
    ticks = machine_ticks()
    with tempfile.TemporaryDirectory(prefix='glass_to_wheel_') as tmp:
        work = Path(tmp)
        frames = work / 'frames'
        frames.mkdir()
        values, runner = make_frames(frames, suffix=args.frame_format)
        if args.breakdown:
            breakdown(frames, executors[-1], args.seconds, layouts[-1] == 'fast')
            return 0
        invoke_ms, invoke_cpu = bare_invoke(runner, 200 if args.quick else 400, INVOKE_GAP)
        i50, i99 = np.percentile(invoke_ms, [50, 99])
        load = os.getloadavg()
        print(f'model {runner.describe()}; frames steer {", ".join(f"{v:+.2f}" for v in values)}')
        print(f'{os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} at start; '
              f'{args.seconds:g} s per run; camera plays {args.frame_format} files')
        print(f'bare LiteRT invoke (1 thread, one every {INVOKE_GAP * 1e3:g} ms): '
              f'p50 {i50:.3f} ms, p99 {i99:.3f} ms; '
              f'CPU {invoke_cpu * 1e3:.3f} ms per invoke\n')
        results = {}
        for layout in layouts:
            for executor in (executors[-1:] if layout == 'shared' else executors):
                for rate in rates:
                    for kind in ('car', 'echo'):
                        tag = f'{kind}_{layout}_{executor}_{rate:g}'
                        try:
                            results[(kind, layout, executor, rate)] = run_layout(
                                kind, layout, executor, rate, args.seconds, work, frames, tag)
                        except RuntimeError as error:
                            print(f'{tag}: {error}')
                        print(f'  ran {tag}', file=sys.stderr, flush=True)
    report(results, layouts, executors, rates, i50, invoke_cpu)
    print(f'\ntotal bench time {time.monotonic() - started:.0f} s; load average now '
          f'{os.getloadavg()[0]:.1f}; CPU time taken by the hypervisor meanwhile (steal): '
          f'{stolen_share(ticks, machine_ticks()) * 100:.1f}% of the machine')
    return 0


def report(results, layouts, executors, rates, invoke_p50, invoke_cpu) -> None:
    head = (f'{"layout":9} {"executor":8} {"Hz":>3} | {"g2w p50":>7} {"p99":>6} {"p99/p50":>7} '
            f'{"-invoke":>7} {"pilot":>5} | {"floor p50":>9} {"p99":>6} {"car/floor":>9} | '
            f'{"answered":>8} '
            f'{"cmd/s":>5} {"1st s":>6} {"last s":>6} | {"CPU all":>7} {"infer":>6} {"graph":>6} '
            f'{"floor":>6} {"RSS MB":>6}')
    print(head)
    print('-' * len(head))
    for layout in layouts:
        for executor in executors:
            for rate in rates:
                car = results.get(('car', layout, executor, rate))
                echo = results.get(('echo', layout, executor, rate))
                if car is None or echo is None:
                    continue
                infer = car.commands_per_s * invoke_cpu
                first, last = car.drift()
                print(f'{layout:9} {executor:8} {rate:3.0f} | {car.p(50):7.2f} {car.p(99):6.2f} '
                      f'{car.p(99) / car.p(50):7.2f} {car.p(50) - invoke_p50:7.2f} '
                      f'{car.extra["pilot_ms"]:5.2f} | '
                      f'{echo.p(50):9.2f} {echo.p(99):6.2f} {car.p(50) / echo.p(50):9.2f} | '
                      f'{car.answered:4d}/{car.expected:<3d} {car.commands_per_s:5.1f} '
                      f'{first:6.2f} {last:6.2f} | '
                      f'{car.cpu * 100:6.1f}% {infer * 100:5.1f}% {(car.cpu - infer) * 100:5.1f}% '
                      f'{echo.cpu * 100:5.1f}% {car.extra["rss"]:6.0f}')
    print('\nms: g2w = frame stamp -> steering register write on the emulated PCA9685 '
          '(file camera -> pilot -> mux -> actuator); -invoke = p50 minus the bare invoke p50; '
          'pilot = stamp -> pilot/cmd handed to its publisher, p50 of the pilot\'s last 200 '
          'frames (its diagnostics): the rest of g2w is mux + actuator; '
          'floor = echo chain of the same length (same layout and executor).\n'
          'answered = frames matched to a register write / commands seen on cmd; cmd/s = '
          'commands per second (the camera rate if no frame is skipped); 1st s / '
          'last s = g2w p50 in the first and last second of the window (a backlog would climb).\n'
          'CPU = % of one core: all the car\'s processes; infer = commands/s x CPU of a bare '
          'invoke; graph = all - infer (camera, mux, actuator and the pilot\'s ROS glue); '
          'floor = the echo chain\'s processes. RSS = resident memory of the car\'s processes.')
    def compare(label: str, a, b) -> None:
        if a and b:
            print(f'{label}: latency p50 {a.p(50) / b.p(50):.2f}x, p99 {a.p(99) / b.p(99):.2f}x, '
                  f'CPU {a.cpu / b.cpu:.2f}x, graph CPU '
                  f'{graph_cpu(a, invoke_cpu) / graph_cpu(b, invoke_cpu):.2f}x')

    for label, a, b in (('one process / separate', 'one', 'separate'),
                        ('fast path / one process', 'fast', 'one')):
        for executor in executors:
            for rate in rates:
                compare(f'{label} ({executor}, {rate:g} Hz)',
                        results.get(('car', a, executor, rate)),
                        results.get(('car', b, executor, rate)))
    for rate in rates:
        compare(f'actuator on its own executor thread / on the main one ({executors[-1]}, '
                f'{rate:g} Hz)', results.get(('car', 'one', executors[-1], rate)),
                results.get(('car', 'shared', executors[-1], rate)))
    if 'single' in executors and 'events' in executors:
        for layout in layouts:
            for rate in rates:
                compare(f'events / single ({layout}, {rate:g} Hz)',
                        results.get(('car', layout, 'events', rate)),
                        results.get(('car', layout, 'single', rate)))

    for layout in ('one', 'fast'):
        if layout in layouts:
            goals(results, layout, executors[-1], rates, invoke_p50, invoke_cpu)


def graph_cpu(result, invoke_cpu: float) -> float:
    """CPU s per s of the car's processes without inference."""
    return result.cpu - result.commands_per_s * invoke_cpu


def goals(results, layout: str, executor: str, rates, invoke_p50: float,
          invoke_cpu: float) -> None:
    """The issue's goals for the one-process car (``layout`` one or fast) with ``executor``."""
    def verdict(ok: bool) -> str:
        return 'met' if ok else 'NOT met'

    name = 'one-process car' + (' with the fast path' if layout == 'fast' else '')
    print(f'\ngoals, {name} ({executor} executor):')
    slow = results.get(('car', layout, executor, min(rates)))
    fast = results.get(('car', layout, executor, max(rates)))
    if slow:
        print(f'  g2w p50 {slow.p(50):.2f} ms <= bare invoke {invoke_p50:.2f} + 1.0 ms: '
              f'{verdict(slow.p(50) <= invoke_p50 + 1.0)}')
        print(f'  p99 {slow.p(99):.2f} ms <= 2 x p50: {verdict(slow.p(99) <= 2 * slow.p(50))} '
              f'(the hypervisor took {slow.extra["steal"] * 100:.1f}% of the machine\'s CPU '
              f'time during that run)')
        graph = graph_cpu(slow, invoke_cpu)
        print(f'  car graph CPU at {min(rates):g} Hz (inference excluded) {graph * 100:.1f}% of '
              f'a core <= 10%: {verdict(graph <= 0.10)}')
    for rate in rates if layout == 'one' else ():
        sep = results.get(('car', 'separate', executor, rate))
        if sep:  # processes in car_commands order
            parts = dict(zip(('actuator', 'mux', 'pilot', 'camera'), sep.extra['each']))
            infer = sep.commands_per_s * invoke_cpu
            print(f'  per process, separate layout, {rate:g} Hz: ' + ', '.join(
                f'{name} {cpu * 100:.1f}%' for name, cpu in parts.items()) +
                f' (inference {infer * 100:.1f}%); camera + mux + actuator '
                f'{(parts["camera"] + parts["mux"] + parts["actuator"]) * 100:.1f}%')
    if fast and max(rates) > min(rates):
        first, last = fast.drift()
        print(f'  no backlog at {max(rates):g} Hz: g2w p50 first second {first:.2f} ms, last '
              f'{last:.2f} ms; {fast.commands_per_s:.1f} commands/s, pilot skipped '
              f'{fast.extra["skipped"]} frames in all: {verdict(last <= 1.5 * first)}')


if __name__ == '__main__':
    sys.exit(main())
