"""The web node in a real rclpy graph, driven by a plain WebSocket client (no browser)."""
from __future__ import annotations

import asyncio
import json
import re
import time

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import String

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.common.image import array_to_image
from donkey_ros.control.mux_node import MuxNode
from donkey_ros.web.web_node import WebNode

aiohttp = pytest.importorskip('aiohttp')


def timed_collect(graph, msg_type, topic, profile=qos.COMMAND):
    """Subscribes; returns a list of (receive time, message)."""
    received = []
    graph.node('timed').create_subscription(
        msg_type, topic, lambda msg: received.append((time.monotonic(), msg)), profile)
    return received


def add_web(graph, *overrides):
    return graph.add(WebNode, parameter_overrides=[Parameter('port', value=0), *overrides])


def ws_url(web) -> str:
    return f'ws://127.0.0.1:{web.port}/ws'


def joy(steering, throttle) -> str:
    return json.dumps({'type': 'joy', 'steering': steering, 'throttle': throttle})


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def wait(graph, predicate, timeout=5.0):
    return asyncio.to_thread(graph.wait_for, predicate, timeout)


async def hold_stick(ws, steering, throttle, seconds, period=0.05):
    """What the page does while a finger holds the stick."""
    end = time.monotonic() + seconds
    while True:
        await ws.send_str(joy(steering, throttle))
        sent = time.monotonic()
        if sent >= end:
            return sent
        await asyncio.sleep(period)


def is_neutral(msg) -> bool:
    return msg.twist.linear.x == 0.0 and msg.twist.angular.z == 0.0


def test_joystick_publishes_user_cmd_scaled_with_signs(graph):
    web = add_web(graph, Parameter('throttle_scale', value=0.4))
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                await hold_stick(ws, 0.5, 1.0, 0.3)  # up-left
                assert await wait(graph, lambda: len(cmds) >= 3)
                await ws.send_str('{"type": "scale", "value": 0.8}')
                assert await wait(graph, lambda: web.params.throttle_scale == 0.8)
                await hold_stick(ws, -0.25, -0.5, 0.2)  # down-right
                n = len(cmds)
                await ws.send_str('{"type": "release"}')
                assert await wait(graph, lambda: len(cmds) > n and is_neutral(cmds[-1][1]))
    run(go())
    values = [(m.twist.angular.z, m.twist.linear.x) for _, m in cmds]
    assert (0.5, pytest.approx(0.4)) in values       # throttle 1.0 * scale 0.4
    assert (-0.25, pytest.approx(-0.4)) in values    # throttle -0.5 * scale 0.8
    assert values[-1] == (0.0, 0.0)


def test_closing_the_connection_publishes_neutral_within_half_a_second(graph):
    web = add_web(graph)
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')

    async def go():
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(ws_url(web))
            await hold_stick(ws, 0.3, 1.0, 0.3)
            assert await wait(graph, lambda: cmds and cmds[-1][1].twist.linear.x > 0)
            closed = time.monotonic()
            await ws.close()  # no 'release': the page vanished
            assert await wait(graph, lambda: is_neutral(cmds[-1][1]), 2.0)
            return closed
    closed = run(go())
    neutral_at = next(t for t, m in cmds if is_neutral(m))
    print(f'\nneutral on user/cmd {1000 * (neutral_at - closed):.0f} ms after the page closed')
    assert neutral_at - closed < 0.5


@pytest.mark.parametrize('sim_time', [False, True], ids=['wall', 'use_sim_time, no /clock'])
def test_silence_from_a_held_stick_trips_the_deadman(graph, sim_time):
    """The deadman runs on steady time: also with use_sim_time and no /clock."""
    web = add_web(graph, Parameter('use_sim_time', value=sim_time))
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                last_sent = await hold_stick(ws, 0.0, 1.0, 0.2)
                # Connection stays open, messages stop (WiFi stalls, browser frozen).
                assert await wait(graph, lambda: is_neutral(cmds[-1][1]), 2.0)
                assert not ws.closed
                return last_sent
    last_sent = run(go())
    neutral_at = next(t for t, m in cmds if is_neutral(m))
    print(f'\nneutral on user/cmd {1000 * (neutral_at - last_sent):.0f} ms after the last '
          'joystick message (deadman 300 ms)')
    assert 0.25 < neutral_at - last_sent < 0.5  # deadman 0.3 s, checked every 0.05 s
    assert web.joystick.deadman_trips == 1


def test_malformed_messages_are_ignored_and_logged(graph, capfd):
    web = add_web(graph)
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                for bad in ('garbage', '{"type": "joy", "steering": "x", "throttle": 1}',
                            '{"type": "joy", "steering": 1e309, "throttle": 1}', '[]',
                            '{"type": "mode", "mode": "warp"}', '{"type": "estop"}'):
                    await ws.send_str(bad)
                await ws.send_bytes(b'\xff' * 10)
                await ws.send_str(joy(0.1, 0.2))
                assert await wait(graph, lambda: len(cmds) == 1)
                assert not ws.closed
    run(go())
    assert web.server.bad_messages == 7
    assert cmds[0][1].twist.angular.z == pytest.approx(0.1)
    assert 'ignored a malformed message' in capfd.readouterr().err


def test_mode_selector_and_estop_with_the_real_mux(graph):
    mux = graph.add(MuxNode)
    web = add_web(graph, Parameter('throttle_scale', value=1.0))
    out = timed_collect(graph, TwistStamped, f'{graph.namespace}/cmd')
    user_pub = graph.node().create_publisher(TwistStamped, f'{graph.namespace}/user/cmd',
                                             qos.COMMAND)

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                statuses = []

                async def read():
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            statuses.append(json.loads(msg.data))
                reader = asyncio.ensure_future(read())
                assert await wait(graph, lambda: any(s.get('mode') == 'user' for s in statuses))
                await ws.send_str('{"type": "mode", "mode": "pilot_steer"}')
                assert await wait(graph, lambda: mux.params.mode == 'pilot_steer')
                assert await wait(graph, lambda: statuses[-1].get('mode') == 'pilot_steer')
                await ws.send_str('{"type": "mode", "mode": "user"}')
                assert await wait(graph, lambda: mux.params.mode == 'user')

                await hold_stick(ws, 0.2, 0.6, 0.3)
                assert await wait(graph, lambda: out[-1][1].twist.linear.x == pytest.approx(0.6))
                await ws.send_str('{"type": "estop", "on": true}')
                assert await wait(graph, lambda: mux.mux.estop)
                # The car stays stopped whoever pushes throttle, the page included.
                stopped = time.monotonic()
                await hold_stick(ws, 0.2, 0.6, 0.3)
                for _ in range(5):
                    user_pub.publish(command_to_msg(DriveCommand(0.0, 0.7)))
                    await asyncio.sleep(0.02)
                late = [m for t, m in out if t > stopped + 0.05]
                assert late and all(is_neutral(m) for m in late)
                assert await wait(graph, lambda: statuses[-1].get('estop') is True)
                await ws.send_str('{"type": "estop", "on": false}')
                assert await wait(graph, lambda: not mux.mux.estop)
                await hold_stick(ws, 0.2, 0.6, 0.2)
                assert await wait(graph, lambda: out[-1][1].twist.linear.x == pytest.approx(0.6))
                reader.cancel()
    run(go())


def test_status_shows_sim_camera_and_missing_services(graph):
    from donkey_ros_interfaces.msg import SimStatus

    web = add_web(graph)
    probe = graph.node()
    ns = graph.namespace
    image_pub = probe.create_publisher(Image, f'{ns}/camera/image_raw', qos.IMAGE_PUBLISH)
    status_pub = probe.create_publisher(SimStatus, f'{ns}/sim/status', qos.SENSOR)
    pilot_pub = probe.create_publisher(TwistStamped, f'{ns}/pilot/cmd', qos.COMMAND)

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                texts, frames = [], []

                async def read():
                    async for msg in ws:
                        (texts if msg.type == aiohttp.WSMsgType.TEXT else frames).append(msg.data)
                reader = asyncio.ensure_future(read())
                for i in range(15):
                    image_pub.publish(array_to_image(np.full((30, 40, 3), i * 10, np.uint8),
                                                     probe.get_clock().now().to_msg()))
                    status_pub.publish(SimStatus(laps=3, off_track_count=1, track='oval',
                                                 on_track=True, best_lap_time=12.5))
                    stamp = probe.get_clock().now().to_msg()
                    await asyncio.sleep(0.05)  # the pilot took 50 ms
                    pilot_pub.publish(command_to_msg(DriveCommand(0.1, 0.2), stamp))
                await ws.send_str('{"type": "record", "on": true}')
                await asyncio.sleep(0.5)
                reader.cancel()
                return [json.loads(t) for t in texts], frames
    messages, frames = run(go())
    status = [m for m in messages if m['type'] == 'status'][-1]
    assert status['laps'] == 3 and status['off_track'] == 1 and status['track'] == 'oval'
    assert status['best_lap'] == 12.5
    assert 40 <= status['pilot_latency_ms'] < 500
    assert status['camera_fps'] > 5
    assert len(frames) >= 5 and all(f[:2] == b'\xff\xd8' for f in frames)
    notices = [m for m in messages if m['type'] == 'notice']
    assert notices and notices[-1]['level'] == 'error'
    assert 'no recorder/record service' in notices[-1]['text']


def test_bad_frames_are_reported_not_fatal(graph):
    web = add_web(graph)
    pub = graph.node().create_publisher(Image, f'{graph.namespace}/camera/image_raw',
                                        qos.IMAGE_PUBLISH)
    bad = Image(width=10, height=10, encoding='yuv422', step=20, data=bytes(200))
    pub.publish(bad)
    assert graph.wait_for(lambda: web.frames_rejected >= 1)
    level, message, values = web._report()
    assert 'yuv422' in message and values['frames_rejected'] >= 1
    pub.publish(array_to_image(np.zeros((10, 10, 3), np.uint8)))
    assert graph.wait_for(lambda: web.frames == 1)
    assert web._report()[1].startswith('serving')


def test_network_host_generates_a_token(graph):
    web = add_web(graph, Parameter('host', value='0.0.0.0'))
    assert '?token=' in web.url and len(web.server.token) >= 16
    chosen = add_web(graph, Parameter('host', value='0.0.0.0'),
                     Parameter('token', value='my-secret'))
    assert chosen.url.endswith('/?token=my-secret')


def test_bad_host_or_busy_port_is_one_clear_error(graph):
    with pytest.raises(DonkeyRosError, match="'host'"):
        add_web(graph, Parameter('host', value='no-such-host.invalid'))
    web = add_web(graph)
    with pytest.raises(DonkeyRosError, match='cannot listen'):
        graph.add(WebNode, parameter_overrides=[Parameter('port', value=web.port)])


def test_shutdown_sends_neutral_if_the_stick_is_held(graph):
    web = add_web(graph)
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')
    mode_requests = graph.collect(String, f'{graph.namespace}/drive_mode/set')

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                await ws.send_str('{"type": "mode", "mode": "pilot"}')
                await hold_stick(ws, 0.0, 1.0, 0.2)
                assert await wait(graph, lambda: cmds and not is_neutral(cmds[-1][1]))
                await asyncio.to_thread(web.on_shutdown)
                assert await wait(graph, lambda: is_neutral(cmds[-1][1]), 1.0)
                msg = await ws.receive(timeout=2)
                while msg.type == aiohttp.WSMsgType.TEXT:
                    msg = await ws.receive(timeout=2)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    run(go())
    assert [m.data for m in mode_requests] == ['pilot']


def test_dns_rebinding_from_this_machine_is_refused_on_the_network_too(graph):
    """Bound to 0.0.0.0, a loopback client (a browser on the car) sending Host = Origin =
    evil.example used to get the WebSocket, and its joystick drove the car."""
    web = add_web(graph, Parameter('host', value='0.0.0.0'), Parameter('token', value='t0k3n'),
                  Parameter('allowed_hosts', value=['car.example']))
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')
    base = f'127.0.0.1:{web.port}'

    async def go():
        async with aiohttp.ClientSession() as session:
            evil = {'Host': 'evil.example', 'Origin': 'http://evil.example'}
            for path in ('/', '/status.json', '/static/app.js'):
                async with session.get(f'http://{base}{path}', headers=evil) as response:
                    assert response.status == 403, path
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                ws = await session.ws_connect(f'ws://{base}/ws', headers=evil)
                await hold_stick(ws, 0.0, 1.0, 0.3)  # only reached if the socket opened
            assert info.value.status == 403
            # Our own name with a foreign page's Origin: refused as cross-site.
            with pytest.raises(aiohttp.WSServerHandshakeError):
                await session.ws_connect(f'ws://{base}/ws', headers={
                    'Origin': 'http://evil.example'})
            # The page's real names work: loopback, and a name listed in allowed_hosts.
            for host in (base, f'car.example:{web.port}'):
                headers = {'Host': host, 'Origin': f'http://{host}'}
                async with session.ws_connect(f'ws://{base}/ws', headers=headers) as ws:
                    await hold_stick(ws, 0.0, 0.5, 0.1)
                    await ws.send_str('{"type": "release"}')
        await asyncio.sleep(0.5)
    before = web.server.refused
    run(go())
    assert web.server.refused - before == 5
    throttles = [m.twist.linear.x for _, m in cmds]
    assert throttles and max(throttles) == pytest.approx(0.25)  # 0.5 x scale 0.5: ours only


def test_deeply_nested_json_is_one_line_and_the_connection_stays_usable(graph, capfd):
    web = add_web(graph)
    cmds = timed_collect(graph, TwistStamped, f'{graph.namespace}/user/cmd')

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url(web)) as ws:
                await ws.send_str('[' * 4096)                   # 4 kB nested list
                await ws.send_str('[' * 2048 + ']' * 2048)
                await ws.send_str(joy(0.1, 0.2))
                assert await wait(graph, lambda: len(cmds) >= 1)  # then the deadman's neutral
                assert cmds[0][1].twist.angular.z == pytest.approx(0.1)
                assert not ws.closed
            # Far over the size limit: the server closes the connection cleanly (1009).
            async with session.ws_connect(ws_url(web)) as ws:
                await ws.send_str('[' * 100_000)
                async for _ in ws:  # status and frames until the server closes
                    pass
                return ws.close_code
    code = run(go())
    assert code == 1009, code
    assert web.server.bad_messages == 2
    # The server logs from its own thread, maybe after the client saw 1009; the count goes up
    # after the line is written. (Polling capfd instead loses lines: its read-then-truncate
    # races with the writing thread.)
    assert graph.wait_for(lambda: web.server.dropped == 1, timeout=20.0), 'no drop counted'
    err = capfd.readouterr().err
    assert re.search(r'\[WARN\].*page disconnected: 127\.0\.0\.1 \(#2\): '
                     r'(Message size 100000 exceeds limit|.*close code 1009)', err), err
    assert 'JSON nested deeper than 4 levels' in err
    assert 'RecursionError' not in err and 'Traceback' not in err
