// donkey_ros web controller: camera view, virtual joystick, drive mode, record, e-stop.
// Messages are documented in donkey_ros/web/protocol.py.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get('token');
  const SEND_PERIOD_MS = 50;  // stick heartbeat; the node's deadman fires after 0.3 s of silence

  // Read by the browser tests; handy in the devtools console too.
  const state = { frames: 0, fps: 0, sent: 0, connected: false, status: {}, stick: null };
  window.donkey = state;

  let ws = null;
  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      state.sent += 1;
    }
  }

  // --- connection -----------------------------------------------------------------------------
  function connect() {
    const url = new URL('ws', location.href);
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    url.search = token ? '?token=' + encodeURIComponent(token) : '';
    ws = new WebSocket(url);
    ws.binaryType = 'blob';
    ws.onopen = () => setConnected(true);
    ws.onclose = () => {
      setConnected(false);
      releaseStick(false);
      setTimeout(connect, 1000);
    };
    ws.onmessage = (event) => {
      if (typeof event.data === 'string') onText(event.data);
      else showFrame(event.data);
    };
  }

  function setConnected(connected) {
    state.connected = connected;
    const pill = $('conn');
    pill.textContent = connected ? 'connected' : 'disconnected';
    pill.className = 'pill ' + (connected ? 'ok' : 'bad');
  }

  function onText(text) {
    let message;
    try { message = JSON.parse(text); } catch (e) { return; }
    if (message.type === 'status') showStatus(message);
    else if (message.type === 'notice') showNotice(message.text, message.level);
  }

  // --- video ----------------------------------------------------------------------------------
  const video = $('video');
  let shownUrl = null;
  let frameTimes = [];
  function showFrame(blob) {
    const url = URL.createObjectURL(blob);
    const previous = shownUrl;
    shownUrl = url;
    video.onload = () => { if (previous) URL.revokeObjectURL(previous); };
    video.src = url;
    $('no-video').classList.add('hidden');
    state.frames += 1;
    const now = performance.now();
    frameTimes.push(now);
    while (frameTimes.length && frameTimes[0] < now - 1000) frameTimes.shift();
    state.fps = frameTimes.length;
  }
  setInterval(() => {
    const now = performance.now();
    while (frameTimes.length && frameTimes[0] < now - 1000) frameTimes.shift();
    state.fps = frameTimes.length;
    $('fps').textContent = state.fps;
    $('frames').textContent = state.frames;
  }, 250);

  // --- status ---------------------------------------------------------------------------------
  const fixed = (value, digits, unit) =>
    (value === null || value === undefined) ? '–' : Number(value).toFixed(digits) + (unit || '');

  function setBar(id, value) {
    const bar = $(id);
    const v = Math.max(-1, Math.min(1, Number(value) || 0));
    bar.style.left = (v >= 0 ? 50 : 50 + 50 * v) + '%';
    bar.style.width = Math.abs(50 * v) + '%';
  }

  function showStatus(s) {
    state.status = s;
    $('mode').textContent = s.mode || '?';
    document.querySelectorAll('#modes button').forEach(
      (b) => b.classList.toggle('active', b.dataset.mode === s.mode));
    const recording = s.recording;
    const recError = s.recorder_error || '';
    $('recording').textContent = recError ? 'error'
      : recording === null || recording === undefined ? '–' : (recording ? 'on' : 'off');
    $('rec-pill').className = 'pill' + (recording || recError ? ' bad' : '');
    $('rec-pill').title = recError;
    $('rec-error').textContent = recError ? 'recorder: ' + recError : '';
    $('rec-error').classList.toggle('hidden', !recError);
    $('record').classList.toggle('active', !!recording);
    $('record').textContent = recording ? '■ Stop recording' : '● Record';
    $('estop-pill').classList.toggle('hidden', !s.estop);
    $('estop').classList.toggle('engaged', !!s.estop);
    $('estop').textContent = s.estop ? 'Release stop' : 'STOP';
    $('track').textContent = s.track || '–';
    $('laps').textContent = s.laps === null || s.laps === undefined ? '–' : s.laps;
    $('lap_time').textContent = fixed(s.lap_time, 1, ' s');
    $('best_lap').textContent = s.best_lap ? fixed(s.best_lap, 2, ' s') : '–';
    $('off_track').textContent = s.off_track === null || s.off_track === undefined ? '–'
      : s.off_track + (s.on_track === false ? ' (off now)' : '');
    $('speed').textContent = fixed(s.speed, 2, ' m/s');
    $('pilot_latency').textContent = fixed(s.pilot_latency_ms, 0, ' ms');
    $('camera_fps').textContent = fixed(s.camera_fps, 1, ' fps');
    setBar('bar-steering', -(s.cmd_steering || 0));  // + = left: draw left of centre
    setBar('bar-throttle', s.cmd_throttle || 0);
    if (!scaleHeld && typeof s.throttle_scale === 'number') {
      $('scale').value = s.throttle_scale;
      $('scale-value').textContent = s.throttle_scale.toFixed(2);
    }
  }

  let noticeTimer = null;
  function showNotice(text, level) {
    const box = $('notice');
    box.textContent = text;
    box.className = level === 'error' ? 'error' : '';
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => box.classList.add('hidden'), 4000);
  }

  // --- joystick -------------------------------------------------------------------------------
  const pad = $('joystick');
  const knob = $('knob');
  let pointerId = null;
  let heartbeat = null;

  function stickFrom(event) {
    const rect = pad.getBoundingClientRect();
    const radius = rect.width / 2;
    let x = (event.clientX - rect.left - radius) / radius;
    let y = (event.clientY - rect.top - radius) / radius;
    const length = Math.hypot(x, y);
    if (length > 1) { x /= length; y /= length; }
    knob.style.transform = `translate(${x * radius * 0.7}px, ${y * radius * 0.7}px)`;
    // Up = forward (+ throttle), left = + steering (REP 103).
    const round = (v) => Math.round(v * 1000) / 1000 + 0;
    return { steering: round(-x), throttle: round(-y) };
  }

  function sendStick() {
    if (state.stick) send({ type: 'joy', ...state.stick });
  }

  pad.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    pointerId = event.pointerId;
    pad.setPointerCapture(pointerId);
    pad.classList.add('active');
    state.stick = stickFrom(event);
    sendStick();
    clearInterval(heartbeat);
    heartbeat = setInterval(sendStick, SEND_PERIOD_MS);
  });
  pad.addEventListener('pointermove', (event) => {
    if (event.pointerId !== pointerId) return;
    state.stick = stickFrom(event);
    sendStick();
  });
  function releaseStick(notify) {
    clearInterval(heartbeat);
    heartbeat = null;
    pointerId = null;
    pad.classList.remove('active');
    knob.style.transform = '';
    if (state.stick && notify !== false) send({ type: 'release' });
    state.stick = null;
  }
  for (const name of ['pointerup', 'pointercancel', 'lostpointercapture']) {
    pad.addEventListener(name, (event) => {
      if (event.pointerId === pointerId) releaseStick();
    });
  }
  // Screen locked, tab switched, page closed: let go of the stick.
  document.addEventListener('visibilitychange', () => { if (document.hidden) releaseStick(); });
  window.addEventListener('pagehide', () => releaseStick());

  // --- buttons --------------------------------------------------------------------------------
  document.querySelectorAll('#modes button').forEach((button) => {
    button.addEventListener('click', () => send({ type: 'mode', mode: button.dataset.mode }));
  });
  $('record').addEventListener('click', () => send({ type: 'record', on: !state.status.recording }));
  $('estop').addEventListener('click', () => {
    const engage = !state.status.estop;
    if (engage) releaseStick();
    send({ type: 'estop', on: engage });
  });
  let scaleHeld = false;
  const scale = $('scale');
  scale.addEventListener('input', () => {
    scaleHeld = true;
    $('scale-value').textContent = Number(scale.value).toFixed(2);
    send({ type: 'scale', value: Number(scale.value) });
  });
  scale.addEventListener('change', () => { scaleHeld = false; });

  // --- phone link: on this machine, the URL (with token) to open on a phone -------------------
  fetch('phone.json', { cache: 'no-store' })
    .then((response) => (response.ok ? response.json() : { urls: [] }))
    .then((data) => {
      state.phoneUrls = data.urls || [];
      if (!state.phoneUrls.length) return;
      $('phone-urls').textContent = state.phoneUrls.join('  ');
      $('phone-link').classList.remove('hidden');
    })
    .catch(() => {});

  connect();
})();
