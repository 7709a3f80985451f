"""Recorder throughput: camera frames from a publisher process into a rosbag2 MCAP bag.

    python bench/recorder.py [--duration 60] [--configs 640x480@30,160x120@20] [--plot PNG]

For each configuration the recorder node runs as its own process (as on the car) and this
process publishes rgb8 frames at the given rate for ``--duration`` s. Printed per configuration:
frames published / recorded / dropped (goal: 0 dropped), write MB/s, the recorder's CPU % (of
one core) and, measured in the same run, CPU per frame of the recorder's write path vs a
DonkeyCar tub_v2-style writer (one JPEG file + one JSON catalog line per frame) on the same
simulator frames -- a ratio < 1 means we use less CPU (while storing lossless frames, fsynced).
A PNG shows the recorder's write rate and CPU over time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

import numpy as np  # noqa: E402
from procstat import cpu_seconds, memory_mb  # noqa: E402

def camera_frames(width: int, height: int, count: int = 8) -> list[np.ndarray]:
    """Realistic frames: the simulator's camera along the track (a gradient if unavailable)."""
    try:
        from donkey_ros.sim.renderer import CameraParams
        from donkey_ros.sim.simulator import Simulator
        sim = Simulator('oval', camera_params=CameraParams(width=width, height=height))
        frames = []
        for _ in range(count):
            sim.step(0.1, 0.2, 0.5)
            frames.append(np.ascontiguousarray(sim.render()))
        return frames
    except Exception as error:  # the bench still runs without the simulator
        print(f'(simulator frames unavailable: {error}; using gradients)', file=sys.stderr)
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        return [np.stack([np.tile(ramp, (height, 1))] * 3, axis=2) // (i + 1)
                for i in range(count)]


def write_path_cpu_per_frame(images: list[np.ndarray], rate: float, frames: int = 150) -> float:
    """CPU s per frame of the recorder's write path alone (queue, MCAP, fsync), in-process."""
    from donkey_ros.recording.recorder import Recorder, RecorderConfig
    from donkey_ros.recording.types import typestore
    store = typestore()
    types = store.types
    raws = []
    for image in images:
        header = types['std_msgs/msg/Header'](
            stamp=types['builtin_interfaces/msg/Time'](sec=0, nanosec=0), frame_id='camera')
        msg = types['sensor_msgs/msg/Image'](
            header=header, height=image.shape[0], width=image.shape[1], encoding='rgb8',
            is_bigendian=0, step=image.shape[1] * 3, data=image.ravel())
        raws.append(bytes(store.serialize_cdr(msg, 'sensor_msgs/msg/Image')))
    with tempfile.TemporaryDirectory() as folder:
        recorder = Recorder(RecorderConfig(folder=Path(folder)), log_info=lambda _: None)
        recorder.add_topic('/camera/image_raw', 'sensor_msgs/msg/Image')
        recorder.start()
        start = time.process_time()
        for i in range(frames):
            recorder.push('/camera/image_raw', time.time_ns(), raws[i % len(raws)])
            time.sleep(1.0 / rate)
        recorder.close()
        return (time.process_time() - start) / frames


def tub_writer_cpu_per_frame(images: list[np.ndarray], frames: int = 60) -> float:
    """CPU s per frame of a DonkeyCar tub_v2-style writer: one JPEG file (PIL, default quality)
    and one JSON catalog line per frame, flushed (DonkeyCar does not fsync)."""
    from PIL import Image
    with tempfile.TemporaryDirectory() as folder:
        catalog = open(os.path.join(folder, 'catalog_0.catalog'), 'w')
        start = time.process_time()
        for i in range(frames):
            name = f'{i}_cam_image_array_.jpg'
            Image.fromarray(images[i % len(images)]).save(os.path.join(folder, name))
            catalog.write(json.dumps({'_index': i, 'cam/image_array': name,
                                      'user/angle': 0.1, 'user/throttle': 0.3,
                                      'user/mode': 'user', '_timestamp_ms': i}) + '\n')
            catalog.flush()
        elapsed = time.process_time() - start
        catalog.close()
    return elapsed / frames


def run_config(width: int, height: int, rate: float, duration: float, env: dict,
               recorder_args: tuple = (), publisher_depth: int = 0) -> dict:
    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from donkey_ros.common import qos
    from donkey_ros.common.image import array_to_image

    folder = tempfile.mkdtemp(prefix='bench_recorder_')
    ns = f'/bench{os.getpid()}'
    recorder = subprocess.Popen(
        [sys.executable, '-m', 'donkey_ros.recording.recorder_node', '--ros-args',
         '-r', f'__ns:={ns}', '-p', 'autostart:=true', '-p', f'folder:={folder}',
         '-p', 'poll_period:=0.2', '-p', 'topics:=[camera/image_raw]', *recorder_args],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('bench_camera', namespace=ns, context=context)
    from rclpy.executors import SingleThreadedExecutor
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        from donkey_ros_interfaces.msg import RecorderStatus
        statuses = []
        node.create_subscription(RecorderStatus, 'recorder/status', statuses.append, 10)
        profile = qos.IMAGE_PUBLISH
        if publisher_depth:
            from rclpy.qos import QoSProfile
            profile = QoSProfile(history=profile.history, depth=publisher_depth,
                                 reliability=profile.reliability)
        publisher = node.create_publisher(Image, 'camera/image_raw', profile)
        deadline = time.monotonic() + 30
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        if publisher.get_subscription_count() == 0:
            raise RuntimeError('the recorder did not subscribe within 30 s')
        time.sleep(0.5)
        frames = camera_frames(width, height)
        msg = array_to_image(frames[0])
        samples = []                                    # (t, recorder cpu s)
        cpu0, t0 = cpu_seconds(recorder.pid), time.monotonic()
        published, next_sample = 0, t0
        while True:
            now = time.monotonic()
            if now - t0 >= duration:
                break
            array_to_image(frames[published % 8], node.get_clock().now().to_msg(), msg=msg,
                           frame_id=str(published))
            publisher.publish(msg)
            published += 1
            if now >= next_sample:
                samples.append((now - t0, cpu_seconds(recorder.pid)))
                next_sample += 1.0
                print(f'\r  {width}x{height}@{rate:g}: {now - t0:5.1f} / {duration:g} s, '
                      f'{published} frames', end='', file=sys.stderr, flush=True)
            executor.spin_once(timeout_sec=0)
            delay = t0 + published / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        t1, cpu1 = time.monotonic(), cpu_seconds(recorder.pid)
        print(file=sys.stderr)
        end = time.monotonic() + 5
        while time.monotonic() < end:                   # let the last frames land
            executor.spin_once(timeout_sec=0.1)
        dropped_queue = statuses[-1].dropped if statuses else -1
        rss = memory_mb(recorder.pid)['VmHWM']
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        bag = next(p for p in Path(folder).iterdir() if p.is_dir())
        import yaml
        meta = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
        recorded = meta['message_count']
        missing = sorted(set(range(published)) - set(recorded_ids(bag)))
        size = sum(p.stat().st_size for p in bag.glob('*.mcap'))
        return {
            'config': f'{width}x{height}@{rate:g}Hz', 'published': published,
            'recorded': recorded, 'dropped': published - recorded,
            'queue_dropped': dropped_queue, 'missing': missing, 'seconds': t1 - t0,
            'rss_mb': rss,
            'mb_per_s': size / 1e6 / (t1 - t0), 'cpu_percent': 100 * (cpu1 - cpu0) / (t1 - t0),
            'cpu_per_frame': (cpu1 - cpu0) / max(1, recorded),
            'samples': samples, 'statuses': [(s.messages_per_second, s.bytes) for s in statuses],
            'frames': frames}
    finally:
        if recorder.poll() is None:
            recorder.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


def recorded_ids(bag: Path) -> list[int]:
    """frame_id (= publish index) of every recorded frame, read with the mcap library."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    ids = []
    for path in sorted(bag.glob('*.mcap')):
        with open(path, 'rb') as stream:
            reader = make_reader(stream, decoder_factories=[DecoderFactory()])
            for _, _, _, msg in reader.iter_decoded_messages():
                ids.append(int(msg.header.frame_id))
    return ids


def plot(results: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        times = [t for t, _ in r['samples']]
        cpu = [100 * (b - a) / (tb - ta) for (ta, a), (tb, b) in
               zip(r['samples'], r['samples'][1:])]
        axes[1].plot(times[1:], cpu, label=r['config'])
        rates = [m for m, _ in r['statuses']]
        axes[0].plot(range(len(rates)), rates, label=r['config'])
    axes[0].set(title='recorder: messages written per second', xlabel='s', ylabel='msg/s')
    axes[1].set(title='recorder CPU (% of one core)', xlabel='s', ylabel='%')
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0, help='seconds per configuration')
    parser.add_argument('--configs', default='640x480@30,160x120@20',
                        help='WIDTHxHEIGHT@HZ, comma-separated')
    parser.add_argument('--plot', default='runs/bench_recorder.png', help='PNG to write')
    parser.add_argument('--publisher-depth', type=int, default=0,
                        help='history depth of the camera publisher (default: the project\'s '
                        'qos.IMAGE_PUBLISH)')
    args = parser.parse_args(argv)
    env = os.environ.copy()
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('ROS_DOMAIN_ID', str(random.randint(100, 200)))
    os.environ.update(env)
    results = []
    for spec in args.configs.split(','):
        size, rate = spec.split('@')
        width, height = (int(v) for v in size.split('x'))
        results.append(run_config(width, height, float(rate), args.duration, env,
                                  publisher_depth=args.publisher_depth))
    from donkey_ros.common import qos
    print(f'recorder bench: {args.duration:g} s per configuration, publisher and recorder in '
          f'separate processes, {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.1f}, camera publisher reliable depth '
          f'{args.publisher_depth or qos.IMAGE_PUBLISH.depth}')
    print(f'{"config":>13} {"published":>9} {"recorded":>8} {"dropped":>7} {"MB/s":>6} '
          f'{"node CPU%":>9} {"node ms/fr":>10} {"RSS MB":>6} {"write ms/fr":>11} '
          f'{"tub ms/fr":>9} {"ratio":>6}')
    for r in results:
        rate = r['published'] / r['seconds']
        write = write_path_cpu_per_frame(r['frames'], rate)
        tub = tub_writer_cpu_per_frame(r['frames'])
        print(f"{r['config']:>13} {r['published']:>9} {r['recorded']:>8} {r['dropped']:>7} "
              f"{r['mb_per_s']:6.1f} {r['cpu_percent']:9.1f} {1e3 * r['cpu_per_frame']:10.2f} "
              f"{r['rss_mb']:6.0f} {1e3 * write:11.2f} {1e3 * tub:9.2f} {write / tub:6.2f}")
    for r in results:
        if r['missing']:
            print(f"{r['config']}: missing frames {r['missing'][:20]}"
                  f"{' ...' if len(r['missing']) > 20 else ''}; recorder queue drops: "
                  f"{r['queue_dropped']}")
    print('node = the recorder process (DDS receive + write); write = its write path alone '
          '(queue, MCAP, fsync), in-process;\ntub = a DonkeyCar tub_v2-style writer (PIL JPEG '
          'file + JSON line) on the same frames; ratio = write / tub (< 1: less CPU)')
    plot(results, args.plot)
    print(f'plot: {args.plot}')
    return 0 if all(r['dropped'] == 0 for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
