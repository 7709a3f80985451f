"""The web controller's HTTP/WebSocket server (aiohttp), in its own thread with its own loop.

Knows nothing of ROS: the owner pushes camera frames (``put_frame``) and status values
(``set_status``) from any thread, and receives the page's parsed messages through ``on_message``
(called on the server thread; it must be quick and thread-safe, e.g. an rclpy ``publish``).

Routes: ``/`` the page, ``/static/*`` its files, ``/ws`` the WebSocket (JPEG frames out, JSON
status out, JSON control messages in), ``/video.mjpg`` an MJPEG stream for other viewers,
``/status.json`` the current status, ``/phone.json`` the page's URLs with the token (for
the page opened on this machine, so a phone user can copy them; empty for other peers).

Frames are encoded to JPEG once per frame, off the event loop (a one-thread pool), only while
someone watches; a slow client gets the newest frame when it is ready, never a backlog.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
from aiohttp import WSMsgType, web

from donkey_ros.common.errors import DonkeyRosError
from donkey_ros.common.image import encode_jpeg
from donkey_ros.web.access import (COOKIE, HostCheck, access_allowed, host_header_allowed,
                                   needs_token, origin_allowed, page_urls, token_matches)
from donkey_ros.web.access import is_loopback
from donkey_ros.web.protocol import (MAX_FRAME, NORMAL_CLOSE_CODES, Message, ProtocolError,
                                     close_reason, parse_message)

STATIC_DIR = Path(__file__).resolve().parent / 'static'
BOUNDARY = 'donkeyframe'


class WebError(DonkeyRosError):
    """The server cannot start (port in use, address not available)."""


@dataclass(eq=False)
class Connection:
    """One WebSocket client; identity is the object itself."""

    id: int
    peer: str
    opened: float = field(default_factory=time.monotonic)


class WebServer:
    """Serves the page; see the module docstring.

    Args:
        host: address to bind (127.0.0.1 = this machine only).
        port: TCP port; 0 picks a free one (``server.port`` tells which).
        token: required from non-local peers; must be set when ``host`` is not loopback.
        on_message: ``(connection, Message)`` for every valid client message.
        on_disconnect: ``(connection)`` when a WebSocket closes, however it closes.
        logger: anything with ``info``/``warning``/``error`` (an rclpy logger works).
        allowed_hosts: extra ``Host`` names to answer to (besides this machine's own names and
            addresses; see ``access.HostCheck``).
    """

    def __init__(self, host: str = '127.0.0.1', port: int = 8887, token: str = '',
                 on_message: Callable[[Connection, Message], None] | None = None,
                 on_disconnect: Callable[[Connection], None] | None = None,
                 logger=None, static_dir: Path = STATIC_DIR, jpeg_quality: int = 75,
                 max_fps: float = 30.0, status_period: float = 0.2,
                 allowed_hosts: tuple[str, ...] | list[str] = ()) -> None:
        if needs_token(host) and not token:
            raise WebError(f'listening on {host} needs a token')
        self.host, self.port, self.token = host, port, token
        self.host_check = HostCheck(host, allowed_hosts)
        self.on_message = on_message or (lambda conn, message: None)
        self.on_disconnect = on_disconnect or (lambda conn: None)
        self.log = logger or logging.getLogger('donkey_ros.web')
        self.static_dir = Path(static_dir)
        self.jpeg_quality = jpeg_quality
        self.max_fps = max_fps
        self.status_period = status_period
        # Counters, read by the owner's diagnostics.
        self.frames_in = 0
        self.frames_encoded = 0
        self.frames_sent = 0
        self.encode_seconds = 0.0
        self.bad_messages = 0
        self.refused = 0
        self.handler_errors = 0
        self.dropped = 0
        """Pages whose connection ended other than by a goodbye (error, lost, refused frame)."""
        self._ids = itertools.count(1)
        self._clients: dict[Connection, web.WebSocketResponse] = {}
        self._viewers = 0
        self._latest: tuple[int, np.ndarray | None] = (0, None)
        self._tokens, self._tokens_time = 2.0, time.monotonic()
        self._encoded_seq = 0
        self._encoding = False
        self._jpeg: tuple[int, bytes] = (0, b'')
        self._frame_event: asyncio.Event | None = None
        self._status: dict = {}
        self._status_version = 0
        self._status_lock = threading.Lock()
        self._warned: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='web-jpeg')
        self._stopped = False

    # --- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Binds and serves in a background thread; returns once bound.

        Raises:
            WebError: the address/port cannot be bound.
        """
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready, failure),
                                        name='web-server', daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise WebError(f'web server did not start within {timeout:g} s')
        if failure:
            self._thread.join(timeout)
            error = failure[0]
            if isinstance(error, OSError):
                raise WebError(f'cannot listen on {self.host}:{self.port}: '
                               f'{error.strerror or error} (another web node? set parameter '
                               f"'port')") from None
            raise WebError(f'web server failed to start: {error}') from None

    def _run(self, ready: threading.Event, failure: list) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._startup())
        except BaseException as error:  # reported to start()'s caller
            failure.append(error)
            ready.set()
            self._loop.run_until_complete(self._cleanup())
            self._loop.close()
            return
        ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._cleanup())
            self._loop.close()

    async def _startup(self) -> None:
        self._frame_event = asyncio.Event()
        app = web.Application(middlewares=[self._guard])
        app.router.add_get('/', self._index)
        app.router.add_get('/ws', self._websocket)
        app.router.add_get('/video.mjpg', self._mjpeg)
        app.router.add_get('/status.json', self._status_json)
        app.router.add_get('/phone.json', self._phone_json)
        app.router.add_static('/static', self.static_dir, follow_symlinks=False)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # noqa: SLF001 (actual port)
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._status_task = asyncio.ensure_future(self._push_status())

    async def _cleanup(self) -> None:
        task = getattr(self, '_status_task', None)
        if task is not None:
            task.cancel()
        for ws in list(self._clients.values()):
            try:
                await ws.close(code=1001, message=b'server stopping')
            except Exception:  # already gone
                pass
        if self._runner is not None:
            await self._runner.cleanup()

    def stop(self) -> None:
        """Closes every connection (each gets ``on_disconnect``) and stops the thread."""
        if self._stopped or self._loop is None or self._thread is None:
            self._stopped = True
            return
        self._stopped = True
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def urls(self) -> list[str]:
        """The page's URLs for people (with the token when one is needed)."""
        return page_urls(self.host, self.port, self.token)

    @property
    def clients(self) -> int:
        return len(self._clients)

    # --- input from the owner (any thread) -----------------------------------------------------
    def put_frame(self, pixels: np.ndarray) -> bool:
        """Offers a camera frame (HxWx3 RGB uint8); returns False when dropped by ``max_fps``."""
        # A token bucket (2 deep): a camera at exactly max_fps is not thinned by its jitter.
        now = time.monotonic()
        self._tokens = min(2.0, self._tokens + (now - self._tokens_time) * self.max_fps)
        self._tokens_time = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self.frames_in += 1
        self._latest = (self._latest[0] + 1, pixels)
        loop = self._loop
        if loop is not None and not self._stopped and self._viewers:
            try:
                loop.call_soon_threadsafe(self._frame_arrived)
            except RuntimeError:  # loop closed while stopping
                pass
        return True

    def set_status(self, **values) -> None:
        """Merges values into the status sent to the page (JSON-serializable values)."""
        with self._status_lock:
            self._status.update(values)
            self._status_version += 1

    def status(self) -> dict:
        with self._status_lock:
            return dict(self._status)

    def notify(self, text: str, level: str = 'info') -> None:
        """Shows a short message on every open page."""
        loop = self._loop
        if loop is None or self._stopped:
            return
        payload = json.dumps({'type': 'notice', 'level': level, 'text': text})
        try:
            loop.call_soon_threadsafe(self._broadcast, payload)
        except RuntimeError:
            pass

    # --- frames --------------------------------------------------------------------------------
    def _frame_arrived(self) -> None:
        if not self._encoding and self._viewers:
            self._encoding = True
            asyncio.ensure_future(self._encode_pending())

    async def _encode_pending(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._latest[0] > self._encoded_seq and self._viewers:
                seq, pixels = self._latest
                started = time.perf_counter()
                try:
                    data = await loop.run_in_executor(
                        self._pool, encode_jpeg, pixels, self.jpeg_quality)
                except Exception as error:  # a bad frame must not stop the video
                    self._warn('encode', f'cannot encode camera frame: {error}')
                    self._encoded_seq = seq
                    continue
                self.encode_seconds += time.perf_counter() - started
                self.frames_encoded += 1
                self._encoded_seq = seq
                self._jpeg = (self._jpeg[0] + 1, data)
                event, self._frame_event = self._frame_event, asyncio.Event()
                event.set()
        finally:
            self._encoding = False

    async def _next_jpeg(self, last: int) -> tuple[int, bytes]:
        """Waits for a JPEG newer than ``last``."""
        while True:
            event = self._frame_event
            if self._jpeg[0] > last:
                return self._jpeg
            await event.wait()

    def _watch(self, delta: int) -> None:
        self._viewers += delta
        if delta > 0 and self._latest[0] > self._encoded_seq:
            self._frame_arrived()

    # --- HTTP ----------------------------------------------------------------------------------
    @web.middleware
    async def _guard(self, request: web.Request, handler):
        supplied = request.query.get('token') or request.cookies.get(COOKIE)
        authorization = request.headers.get('Authorization', '')
        if not supplied and authorization.startswith('Bearer '):
            supplied = authorization[7:]
        if not host_header_allowed(request.host, self.host_check):
            self.refused += 1
            self._warn('host', f'refused {request.method} {request.path} for host '
                               f'{request.host!r}: not a name of this server (DNS rebinding?); '
                               "add it to parameter 'allowed_hosts' if it is yours")
            return web.Response(status=403, text='Forbidden: unexpected Host header.\n')
        origin = request.headers.get('Origin')
        if not origin_allowed(origin, request.host):
            self.refused += 1
            self._warn('origin', f'refused {request.method} {request.path} from another site '
                                 f'(Origin {origin!r})')
            return web.Response(status=403, text='Forbidden: cross-site request.\n')
        if not access_allowed(request.remote, self.host, self.token, supplied):
            self.refused += 1
            self._warn('refused',
                       f'refused {request.method} {request.path} from {request.remote}: no valid '
                       'token')
            return web.Response(status=403, text='Forbidden: this car needs its token; open the '
                                'URL the web node printed (it ends in ?token=...).\n')
        return await handler(request)

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(self.static_dir / 'index.html',
                                    headers={'Cache-Control': 'no-store'})
        supplied = request.query.get('token')
        if token_matches(self.token, supplied):
            response.set_cookie(COOKIE, supplied, httponly=True, samesite='Strict')
        return response

    async def _status_json(self, request: web.Request) -> web.Response:
        return web.json_response(self.status())

    async def _phone_json(self, request: web.Request) -> web.Response:
        """The URLs a phone can open (token included): only to this machine, only when needed."""
        # Asked by this machine, by a loopback name (not a rebound DNS name).
        local = request.remote is not None and is_loopback(request.remote) and \
            is_loopback(urlsplit('//' + request.host).hostname or '')
        urls = self.urls if local and needs_token(self.host) else []
        return web.json_response({'urls': urls}, headers={'Cache-Control': 'no-store'})

    async def _mjpeg(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            'Content-Type': f'multipart/x-mixed-replace; boundary={BOUNDARY}',
            'Cache-Control': 'no-store'})
        await response.prepare(request)
        self._watch(+1)
        last = 0
        try:
            while True:
                last, data = await self._next_jpeg(last)
                await response.write(
                    f'--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}'
                    '\r\n\r\n'.encode() + data + b'\r\n')
                self.frames_sent += 1
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watch(-1)
        return response

    # --- WebSocket -----------------------------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=2.0, compress=False, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        conn = Connection(next(self._ids), request.remote or '?')
        self._clients[conn] = ws
        self._watch(+1)
        self.log.info(f'page connected from {conn.peer} (#{conn.id}, {len(self._clients)} open)')
        sender = asyncio.ensure_future(self._send_frames(ws))
        error: BaseException | None = None
        try:
            await ws.send_str(json.dumps({'type': 'status', **self.status()}))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._handle_text(conn, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.bad_messages += 1
                    self._warn('binary', f'ignored a binary message from {conn.peer}')
                elif msg.type == WSMsgType.ERROR:
                    error = msg.data if isinstance(msg.data, Exception) else ws.exception()
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sender.cancel()
            self._clients.pop(conn, None)
            self._watch(-1)
            # One line per disconnect; a warning with the reason when it was not a goodbye. aiohttp
            # may close (1009 for an oversized frame) without handing the loop an ERROR message,
            # so the close code stands in when there is no error.
            code = ws.close_code
            if error is not None or (code is not None and code not in NORMAL_CLOSE_CODES):
                why = error if error is not None else close_reason(code)
                self.log.warning(f'page disconnected: {conn.peer} (#{conn.id}): {why} '
                                 f'(close code {code})')
                self.dropped += 1
            else:
                self.log.info(f'page disconnected: {conn.peer} (#{conn.id})')
            try:
                self.on_disconnect(conn)
            except Exception as error:  # the owner's failsafe must be reported, not lost
                self.handler_errors += 1
                self.log.error(f'disconnect handler failed: {error}')
        return ws

    def _handle_text(self, conn: Connection, text: str) -> None:
        try:
            message = parse_message(text)
        except ProtocolError as error:
            self.bad_messages += 1
            self._warn('bad', f'ignored a malformed message from {conn.peer}: {error}')
            return
        try:
            self.on_message(conn, message)
        except Exception as error:  # never let one message take the server down
            self.handler_errors += 1
            self.log.error(f"handling '{message.type}' failed: {error}")

    async def _send_frames(self, ws: web.WebSocketResponse) -> None:
        last = 0
        try:
            while not ws.closed:
                last, data = await self._next_jpeg(last)
                await ws.send_bytes(data)
                self.frames_sent += 1
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            pass

    def _broadcast(self, payload: str) -> None:
        for ws in list(self._clients.values()):
            if not ws.closed:
                asyncio.ensure_future(self._send_quietly(ws, payload))

    @staticmethod
    async def _send_quietly(ws: web.WebSocketResponse, payload: str) -> None:
        try:
            await ws.send_str(payload)
        except (ConnectionError, RuntimeError):
            pass

    async def _push_status(self) -> None:
        sent = -1
        while True:
            await asyncio.sleep(self.status_period)
            if self._status_version != sent and self._clients:
                sent = self._status_version
                self._broadcast(json.dumps({'type': 'status', **self.status()}))

    def _warn(self, key: str, text: str, every: float = 1.0) -> None:
        """Logs a warning at most once per ``every`` seconds per ``key`` (floods stay readable)."""
        now = time.monotonic()
        if now - self._warned.get(key, -1e9) >= every:
            self._warned[key] = now
            self.log.warning(text)
