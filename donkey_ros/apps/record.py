"""Expert recording into bags: the simulator's expert drives, and what a recorder would have
written (camera frames, ``user/cmd``, ``drive_mode``, ``sim/status``) goes into rosbag2 bags.
Step 1 of ``donkey-ros loop``; also the style experiment's recordings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from donkey_ros.sim.factory import simulator_from_params
from donkey_ros.sim.settings import FRAME_RATE, PHYSICS_SUBSTEPS, sim_settings

START_NS = 1_700_000_000_000_000_000


@dataclass
class Recording:
    """What ``record_expert`` wrote."""

    path: Path
    frames: int
    laps: int
    off_track: int
    seconds: float
    track: str


def record_expert(path: str | Path, track: str = 'oval', laps: int = 5, speed: float = 1.5,
                  perturb: float = 0.0, weave: float = 0.0, weave_seed: int = 0, seed: int = 0,
                  settings: SimpleNamespace | None = None, progress=None, kicks: float = 0.0,
                  driver=None, driver_share: float = 0.5, every: int = 1,
                  source: str = 'donkey-ros loop (expert)') -> Recording:
    """Lets the expert drive ``laps`` laps and writes what a recorder would have: camera frames,
    ``user/cmd`` (the expert's command for each frame, stamped with it), ``drive_mode`` ('user')
    and ``sim/status`` when its message type is available.

    Args:
        path: bag directory to create.
        track: shipped track name or YAML path.
        laps: laps to record.
        speed: the expert's target speed, m/s.
        perturb: std of a random steering disturbance added to what the car *does* (a slow
            Ornstein-Uhlenbeck process, 0.6 s correlation time), while the *recorded* command
            stays the expert's answer for the state the car is in: recovery data whose labels
            are always right (DART). The weave below instead records the weave itself, which the
            model then learns to imitate.
        weave: lateral weave amplitude of the expert's path, m.
        weave_seed: varies the weave and the disturbance between recordings.
        seed: the simulator's seed (texture, pixel noise).
        settings: simulator settings (``sim_settings()`` by default, with ``track``/``seed``).
        progress: called with the laps done so far after each lap.
        kicks: mean seconds between kicks (0 = none): the executed steering is forced to a
            random 0.4-0.8 lock (either side) for 0.15-0.35 s, throwing the car off its line
            (sometimes off the road); the recorded command stays the expert's, so the data shows
            the way back.
        driver: DAgger-style corrections: a callable (RGB frame -> (steering, throttle)), e.g. a
            model being improved, that drives ``driver_share`` of the time (in stretches of 2-6 s)
            while the expert's command for each state it reaches is what is recorded.
        every: record every n-th frame (the car is simulated at the full frame rate; fewer,
            less alike frames per lap).
        source: the bag's ``donkey_ros.source`` metadata.
    """
    from donkey_ros.common import topics
    from donkey_ros.recording import messages
    from donkey_ros.recording.types import typestore
    from donkey_ros.recording.writer import BagWriter
    from donkey_ros.sim.expert import PurePursuit

    settings = settings or sim_settings(track=track, seed=seed)
    sim = simulator_from_params(settings)
    expert = PurePursuit(sim.track, target_speed=speed, max_steer_deg=settings.max_steer_deg,
                         wheelbase=settings.wheelbase, max_speed=settings.max_speed,
                         weave_amplitude=weave, seed=weave_seed)
    with_status = topics.TYPES[topics.SIM_STATUS] in typestore().fielddefs
    dt = 1.0 / FRAME_RATE
    max_frames = int(laps * (sim.track.length / max(0.2, speed)) * 3 * FRAME_RATE) + 100
    frame = 0
    with BagWriter(path, custom_data={'donkey_ros.source': source,
                                      'donkey_ros.track': sim.track.name}) as writer:
        image_topic = messages.add_topic(writer, topics.IMAGE)
        cmd_topic = messages.add_topic(writer, topics.USER_CMD)
        mode_topic = messages.add_topic(writer, topics.DRIVE_MODE)
        if with_status:
            status_topic = messages.add_topic(writer, topics.SIM_STATUS)
        messages.write(writer, mode_topic, START_NS, messages.string('user'))
        throttle = steering = disturbance = 0.0
        rng = np.random.default_rng(weave_seed)
        kick_rng = np.random.default_rng([weave_seed, 1])
        correlation_time = 0.6
        kick_left = 0.0  # seconds of the current kick still to go
        kick_steer = 0.0
        next_kick = kick_rng.exponential(kicks) if kicks else math.inf
        driving = False
        switch_at = float(kick_rng.uniform(2, 6))
        driver_cmd = None
        while sim.status.laps < laps and frame < max_frames:
            executed = min(1.0, max(-1.0, steering + disturbance))
            gas = throttle
            if driving and driver_cmd is not None:
                executed = min(1.0, max(-1.0, driver_cmd[0]))
                gas = min(1.0, max(-1.0, driver_cmd[1]))
            if kick_left > 0:
                executed = kick_steer
                kick_left -= dt
            elif sim.status.time >= next_kick:
                kick_left = float(kick_rng.uniform(0.15, 0.35))
                kick_steer = float(kick_rng.uniform(0.4, 0.8) * kick_rng.choice((-1, 1)))
                next_kick = sim.status.time + kick_left + kick_rng.exponential(kicks)
            for _ in range(PHYSICS_SUBSTEPS):
                sim.step(dt / PHYSICS_SUBSTEPS, gas, executed)
            status = sim.status
            v = sim.vehicle
            throttle, steering = expert.command(v.x, v.y, v.yaw, v.speed)
            if perturb:
                disturbance += (-disturbance * dt / correlation_time
                                + perturb * math.sqrt(2 * dt / correlation_time)
                                * rng.standard_normal())
            pixels = sim.render()
            if driver is not None:
                if status.time >= switch_at:
                    driving = kick_rng.uniform() < driver_share
                    switch_at = status.time + float(kick_rng.uniform(2, 6))
                driver_cmd = driver(pixels) if driving else None
            frame += 1
            if (frame - 1) % every:
                continue
            stamp = START_NS + int(round(status.time * 1e9))
            # Frame ids as the nodes send them: cmd base_link, image camera, status odom.
            messages.write(writer, cmd_topic, stamp,
                           messages.twist_stamped(stamp, steering, throttle))
            messages.write(writer, image_topic, stamp, messages.image(stamp, pixels))
            if with_status:
                messages.write(writer, status_topic, stamp,
                               messages.sim_status(stamp, **status.message_fields()))
            if progress is not None and status.laps and frame % 20 == 0:
                progress(status.laps)
    status = sim.status
    return Recording(Path(path), (frame + every - 1) // every, status.laps, status.off_track_count, status.time,
                     sim.track.name)


def record_laps(workdir: Path, tracks: list[str], laps: int, perturb: float, speed: float,
                weave: float = 0.0, laps_per_bag: int = 2, log=print) -> list[Recording]:
    """``laps`` expert laps per track, ``laps_per_bag`` per bag; every other bag is disturbed
    (``perturb``, recovery data) and weaves (``weave``)."""
    recordings = []
    for track in tracks:
        done, index = 0, 0
        while done < laps:
            count = min(laps_per_bag, laps - done)
            disturbed = index % 2 == 1
            name = f'{Path(track).stem}_{index:02d}'
            path = workdir / 'bags' / name
            recording = record_expert(path, track, laps=count, speed=speed,
                                      perturb=perturb if disturbed else 0.0,
                                      weave=weave if disturbed else 0.0,
                                      weave_seed=index, seed=100 + index)
            extra = (f', disturbed (steering noise {perturb:g}'
                     + (f', weave {weave:g} m' if weave else '') + ')') if disturbed else ''
            log(f'  {name}: {recording.laps} laps, {recording.frames} frames, '
                f'{recording.seconds:.0f} s{extra}, {recording.off_track} off-track')
            recordings.append(recording)
            done += count
            index += 1
    return recordings
