"""Web controller without ROS: access rules, client messages, deadman, and the aiohttp server."""
from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time

import numpy as np
import pytest

from donkey_ros.common.command import NEUTRAL, DriveCommand
from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.web.access import (HostCheck, access_allowed, host_header_allowed,
                                   is_local_address, is_loopback, local_addresses, needs_token,
                                   origin_allowed, page_urls, token_matches)
from donkey_ros.web.protocol import Joystick, ProtocolError, parse_message
from donkey_ros.web.server import WebError, WebServer
from rosgraph import wait_for

aiohttp = pytest.importorskip('aiohttp')


# --- access ------------------------------------------------------------------------------------
@pytest.mark.parametrize('address', ['127.0.0.1', '127.8.9.1', '::1', '[::1]', 'localhost',
                                     '::ffff:127.0.0.1'])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize('address', ['0.0.0.0', '::', '192.168.1.20', '10.0.0.1', 'fd00::2',
                                     'example.com', '', '::ffff:192.168.1.2'])
def test_non_loopback_addresses(address):
    assert not is_loopback(address)


def test_remote_peer_needs_the_token():
    host, token = '0.0.0.0', 'sesame-123'
    assert not access_allowed('192.168.1.50', host, token, None)
    assert not access_allowed('192.168.1.50', host, token, '')
    assert not access_allowed('192.168.1.50', host, token, 'sesame-12')
    assert access_allowed('192.168.1.50', host, token, 'sesame-123')
    # This machine may always use its own car.
    assert access_allowed('127.0.0.1', host, token, None)
    assert access_allowed('::1', host, token, None)
    # A network server without a token refuses every remote request.
    assert not access_allowed('192.168.1.50', host, '', '')
    assert not access_allowed(None, host, token, None)
    assert not token_matches('', '')


def test_token_needed_only_off_loopback():
    assert not needs_token('127.0.0.1') and not needs_token('localhost')
    assert needs_token('0.0.0.0') and needs_token('192.168.1.2') and needs_token('::')


def test_dns_rebinding_and_cross_site_websockets_refused():
    # Loopback server: loopback names and addresses, and this machine's names.
    loopback = HostCheck('127.0.0.1')
    for host in ('127.0.0.1:8887', 'localhost:8887', '[::1]:8887', 'LOCALHOST',
                 f'{socket.gethostname()}:8887', f'{socket.gethostname()}.local:8887'):
        assert host_header_allowed(host, loopback), host
    for host in ('evil.example:8887', 'evil.example', '', None, '[::1', '127.0.0.1.evil.example'):
        assert not host_header_allowed(host, loopback), host
    # Network server (0.0.0.0): the same, plus any address of this machine, plus extra names;
    # a token changes nothing (DNS rebinding comes from this machine's own browser).
    network = HostCheck('0.0.0.0', ['car.example', ' '])
    assert host_header_allowed('car.example:8887', network)
    assert not host_header_allowed('evil.example:8887', network)
    assert not host_header_allowed('203.0.113.9:8887', network)  # TEST-NET-3: not ours
    address = non_loopback_address()
    if address is not None:
        assert is_local_address(address) and host_header_allowed(f'{address}:8887', network)
    assert not is_local_address('0.0.0.0') and not is_local_address('not-an-ip')
    # Bound to one address: that address (and the machine's names), not evil.example.
    assert host_header_allowed('192.0.2.77:8887', HostCheck('192.0.2.77'))
    assert not host_header_allowed('evil.example', HostCheck('192.0.2.77'))
    # WebSockets: same origin or no Origin (non-browser clients).
    assert origin_allowed('http://127.0.0.1:8887', '127.0.0.1:8887')
    assert origin_allowed(None, '127.0.0.1:8887')
    assert not origin_allowed('http://evil.example', '127.0.0.1:8887')
    assert not origin_allowed('http://127.0.0.1:9999', '127.0.0.1:8887')


def test_page_urls_carry_the_token_only_when_needed():
    assert page_urls('127.0.0.1', 8887, '') == ['http://127.0.0.1:8887/']
    assert page_urls('192.0.2.7', 8887, 'abc') == ['http://192.0.2.7:8887/?token=abc']
    urls = page_urls('0.0.0.0', 8887, 'abc')
    assert urls and all(u.endswith(':8887/?token=abc') for u in urls)
    assert not any('0.0.0.0' in u for u in urls)


# --- protocol ----------------------------------------------------------------------------------
def test_parse_valid_messages():
    joy = parse_message('{"type": "joy", "steering": 0.5, "throttle": -1}')
    assert joy.type == 'joy' and joy.value == DriveCommand(0.5, -1.0)
    assert parse_message('{"type": "release"}').type == 'release'
    assert parse_message('{"type": "mode", "mode": "pilot"}').value == 'pilot'
    assert parse_message('{"type": "estop", "on": true}').value is True
    assert parse_message('{"type": "record", "on": false}').value is False
    assert parse_message('{"type": "scale", "value": 0.25}').value == 0.25


@pytest.mark.parametrize('text', [
    'not json', '[1, 2]', '"joy"', '{}', '{"type": "fly"}',
    '{"type": "joy", "steering": "left", "throttle": 0}',
    '{"type": "joy", "steering": 0.1}',
    '{"type": "joy", "steering": 2.0, "throttle": 0}',
    '{"type": "joy", "steering": NaN, "throttle": 0}',
    '{"type": "joy", "steering": true, "throttle": 0}',
    '{"type": "mode", "mode": "turbo"}',
    '{"type": "estop", "on": 1}',
    '{"type": "scale", "value": 1.5}',
    '{"type": "joy", "pad": "' + 'x' * 5000 + '"}',
    '[' * 2048 + ']' * 2048, '[' * 4096,                          # RecursionError before
    '{"type": "joy", "a": [[[[[0]]]]], "steering": 0, "throttle": 0}',
])
def test_malformed_messages_raise(text):
    with pytest.raises(ProtocolError):
        parse_message(text)


def test_joystick_deadman():
    stick = Joystick(timeout=0.3)
    a, b = object(), object()
    assert stick.check(0.0) is None  # idle: nothing to send
    assert stick.move(a, DriveCommand(0.2, 0.4), now=1.0) == DriveCommand(0.2, 0.4)
    assert stick.check(1.29) is None
    assert stick.check(1.31) == NEUTRAL and not stick.active
    assert stick.check(1.5) is None  # neutral once, not forever
    assert stick.deadman_trips == 1
    stick.move(a, DriveCommand(0.0, 0.5), now=2.0)
    assert stick.release(b) is None  # another page's release does not stop a's stick
    assert stick.active
    assert stick.release(a) == NEUTRAL and stick.release(a) is None
    stick.move(b, DriveCommand(0.0, 0.5), now=3.0)
    assert stick.stop() == NEUTRAL and stick.stop() is None


# --- server ------------------------------------------------------------------------------------
class Recorder:
    """Collects what the server hands over, and its log lines."""

    def __init__(self) -> None:
        self.messages, self.closed, self.lines = [], [], []

    def on_message(self, conn, message):
        self.messages.append((conn, message))

    def on_disconnect(self, conn):
        self.closed.append(conn)

    def info(self, text):
        self.lines.append(('info', text))

    def warning(self, text):
        self.lines.append(('warning', text))

    def error(self, text):
        self.lines.append(('error', text))



@pytest.fixture
def server():
    log = Recorder()
    srv = WebServer('127.0.0.1', 0, on_message=log.on_message, on_disconnect=log.on_disconnect,
                    logger=log, status_period=0.05)
    srv.start()
    srv.log_recorder = log
    yield srv
    srv.stop()


def frame(value: int) -> np.ndarray:
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, :, 0] = value
    pixels[:, value % 64] = 255
    return pixels


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 15))


def test_page_and_static_files_are_served(server):
    async def go():
        async with aiohttp.ClientSession() as session:
            base = f'http://127.0.0.1:{server.port}'
            async with session.get(base + '/') as page:
                assert page.status == 200
                html = await page.text()
            assert 'static/app.js' in html and 'id="joystick"' in html and 'id="estop"' in html
            for name in ('app.js', 'style.css'):
                async with session.get(f'{base}/static/{name}') as response:
                    assert response.status == 200
                    assert len(await response.read()) > 500
            async with session.get(base + '/static/../web_node.py') as response:
                assert response.status in (403, 404)
    run(go())


def test_websocket_frames_status_messages_and_disconnect(server):
    from PIL import Image

    log = server.log_recorder
    server.set_status(mode='user', laps=2)

    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f'ws://127.0.0.1:{server.port}/ws') as ws:
                first = json.loads((await ws.receive(timeout=3)).data)
                assert first == {'type': 'status', 'mode': 'user', 'laps': 2}
                jpegs = []
                for i in range(6):
                    await asyncio.sleep(0.04)  # within max_fps: no frame is thinned out
                    assert server.put_frame(frame(i * 40))
                    while True:
                        msg = await ws.receive(timeout=3)
                        if msg.type == aiohttp.WSMsgType.BINARY:
                            jpegs.append(msg.data)
                            break
                decoded = [np.asarray(Image.open(io.BytesIO(j))) for j in jpegs]
                assert all(d.shape == (48, 64, 3) for d in decoded)
                # The red channel follows what was put in: the video shows live frames.
                reds = [float(d[..., 0].mean()) for d in decoded]
                assert reds[-1] > reds[0] + 100
                await ws.send_str('{"type": "joy", "steering": 0.5, "throttle": 0.25}')
                await ws.send_str('{"type": "joy", "steering": 9, "throttle": 0}')
                await ws.send_bytes(b'\x00\x01')
                await ws.send_str('{{{')
                await ws.send_str('{"type": "release"}')
                assert await asyncio.to_thread(wait_for, lambda: len(log.messages) == 2)
                assert not ws.closed
                server.notify('hello', 'error')
                while True:
                    msg = json.loads((await ws.receive(timeout=3)).data)
                    if msg['type'] == 'notice':
                        assert msg == {'type': 'notice', 'level': 'error', 'text': 'hello'}
                        break
        assert await asyncio.to_thread(wait_for, lambda: len(log.closed) == 1)
    run(go())
    (conn, joy), (conn2, release) = log.messages
    assert joy.value == DriveCommand(0.5, 0.25) and release.type == 'release'
    assert conn is conn2 is log.closed[0]
    assert server.bad_messages == 3
    warnings = [text for level, text in log.lines if level == 'warning']
    assert any('malformed' in text for text in warnings)


def test_mjpeg_stream(server):
    async def go():
        async with aiohttp.ClientSession() as session:
            async with session.get(f'http://127.0.0.1:{server.port}/video.mjpg') as response:
                assert response.status == 200
                assert response.headers['Content-Type'].startswith('multipart/x-mixed-replace')
                data = b''
                for i in range(30):
                    server.put_frame(frame(i * 8))
                    try:
                        data += await asyncio.wait_for(response.content.read(100_000), 0.2)
                    except asyncio.TimeoutError:
                        pass
                    if data.count(b'\xff\xd8') >= 3:
                        break
                assert data.count(b'Content-Type: image/jpeg') >= 3
    run(go())


def test_jpeg_is_encoded_only_for_viewers(server):
    for i in range(5):
        server.put_frame(frame(i))
        time.sleep(0.04)
    time.sleep(0.1)
    assert server.frames_in == 5 and server.frames_encoded == 0


def test_max_fps_thins_a_fast_camera():
    srv = WebServer('127.0.0.1', 0, max_fps=10.0)
    accepted = 0
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        accepted += srv.put_frame(frame(1))
        time.sleep(0.01)
    assert 9 <= accepted <= 13  # ~10 (+2 burst), from ~90 offered


def test_port_in_use_is_one_clear_error(server):
    other = WebServer('127.0.0.1', server.port)
    with pytest.raises(WebError, match=f'cannot listen on 127.0.0.1:{server.port}') as info:
        other.start()
    assert isinstance(info.value, DonkeyRosError)


def test_network_server_requires_a_token():
    with pytest.raises(WebError, match='needs a token'):
        WebServer('0.0.0.0', 0, token='')


def test_cross_site_websocket_and_foreign_host_refused(server):
    async def go():
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await session.ws_connect(f'ws://127.0.0.1:{server.port}/ws',
                                         headers={'Origin': 'http://evil.example'})
            assert info.value.status == 403
            async with session.get(f'http://127.0.0.1:{server.port}/',
                                   headers={'Host': 'evil.example'}) as response:
                assert response.status == 403
    run(go())
    assert server.refused == 2


def non_loopback_address() -> str | None:
    for address in local_addresses():
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))
                return address
            except OSError:
                continue
    return None


def test_request_from_a_network_address_needs_the_token():
    """A real request whose peer is this machine's network address, not loopback."""
    address = non_loopback_address()
    if address is None:
        pytest.skip('this machine has no non-loopback IPv4 address (hostname -I is empty)')
    srv = WebServer('0.0.0.0', 0, token='open-sesame')
    srv.start()
    try:
        async def go():
            base = f'http://{address}:{srv.port}'
            async with aiohttp.ClientSession() as session:
                for path in ('/', '/static/app.js', '/status.json', '/video.mjpg'):
                    async with session.get(base + path) as response:
                        assert response.status == 403, path
                        assert 'token' in await response.text()
                with pytest.raises(aiohttp.WSServerHandshakeError):
                    await session.ws_connect(f'ws://{address}:{srv.port}/ws')
                async with session.get(base + '/?token=wrong') as response:
                    assert response.status == 403
            # unsafe=True: keep cookies of IP-address hosts, as browsers do.
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                async with session.get(base + '/?token=open-sesame') as response:
                    assert response.status == 200
                # The page's own requests carry the cookie set with the page.
                async with session.get(base + '/static/app.js') as response:
                    assert response.status == 200
                async with session.ws_connect(f'ws://{address}:{srv.port}/ws') as ws:
                    assert json.loads((await ws.receive(timeout=3)).data)['type'] == 'status'
            async with aiohttp.ClientSession() as session:  # local requests need no token
                async with session.get(f'http://127.0.0.1:{srv.port}/') as response:
                    assert response.status == 200
        run(go())
        assert srv.refused == 6
    finally:
        srv.stop()


def test_handler_errors_do_not_stop_the_server(caplog):
    def explode(conn, message):
        raise RuntimeError('boom')

    srv = WebServer('127.0.0.1', 0, on_message=explode, logger=logging.getLogger('t'))
    srv.start()
    try:
        async def go():
            async with aiohttp.ClientSession() as session:
                async with session.ws_connect(f'ws://127.0.0.1:{srv.port}/ws') as ws:
                    await ws.receive(timeout=3)
                    await ws.send_str('{"type": "release"}')
                    await ws.send_str('{"type": "release"}')
                    await asyncio.to_thread(wait_for, lambda: srv.handler_errors == 2)
                    assert not ws.closed
        with caplog.at_level(logging.ERROR):
            run(go())
        assert srv.handler_errors == 2
        assert "handling 'release' failed: boom" in caplog.text
    finally:
        srv.stop()
