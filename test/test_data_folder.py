"""The car's data in one per-user place: the data folder, the recorder's default bag folder, and the
web token stored there (the same on every launch, mode 0600, shown on the page opened locally)."""
from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import aiohttp
import pytest
from rclpy.parameter import Parameter

from donkey_ros.common.paths import bags_folder, data_folder
from donkey_ros.web.access import AccessError
from donkey_ros.web.server import WebServer
from donkey_ros.web.token_store import ENV_VAR, web_token
from test_web_core import non_loopback_address


def test_data_folder_order_and_absolute_paths(tmp_path, monkeypatch):
    home = {'HOME': '/home/pi'}
    assert data_folder(home) == Path('/home/pi/.local/share/donkey_ros')
    assert data_folder({**home, 'XDG_DATA_HOME': '/srv/xdg'}) == Path('/srv/xdg/donkey_ros')
    assert data_folder({**home, 'XDG_DATA_HOME': '/srv/xdg', 'DONKEY_ROS_DATA': '/car'}) == \
        Path('/car')
    assert bags_folder('', {'DONKEY_ROS_DATA': '/car'}) == Path('/car/bags')
    monkeypatch.chdir(tmp_path)
    assert bags_folder('mine') == tmp_path / 'mine'          # as typed: relative to the cwd
    assert bags_folder('~/b', {}).is_absolute()
    # Wherever the process starts, the default is the same absolute folder.
    monkeypatch.setenv('DONKEY_ROS_DATA', str(tmp_path / 'data'))
    monkeypatch.chdir('/')
    assert bags_folder() == tmp_path / 'data' / 'bags'


def test_recorder_records_into_the_data_folder_by_default(graph, tmp_path, monkeypatch):
    from std_msgs.msg import String

    from donkey_ros.recording.recorder_node import RecorderNode

    monkeypatch.setenv('DONKEY_ROS_DATA', str(tmp_path / 'car data'))
    monkeypatch.chdir('/')
    recorder = graph.add(RecorderNode, parameter_overrides=[
        Parameter('autostart', value=True), Parameter('topics', value=['drive_mode']),
        Parameter('poll_period', value=0.1)])
    assert recorder.recorder.config.folder == tmp_path / 'car data' / 'bags'
    pub = graph.node().create_publisher(String, f'{graph.namespace}/drive_mode', 10)
    assert graph.wait_for(lambda: recorder.subscribed, timeout=10.0)
    pub.publish(String(data='user'))
    assert graph.wait_for(lambda: recorder.recorder.bags, timeout=10.0)
    assert Path(recorder.recorder.bags[0]).parent == tmp_path / 'car data' / 'bags'


def test_token_is_stored_once_with_mode_0600_and_reused(tmp_path):
    env = {'DONKEY_ROS_DATA': str(tmp_path)}
    first = web_token('0.0.0.0', environ=env)
    assert first.source == 'new' and first.path == tmp_path / 'web_token'
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    again = web_token('0.0.0.0', environ=env)
    assert (again.value, again.source) == (first.value, 'file')
    assert str(first.path) in again.describe()
    # Chosen tokens win and are not stored; a loopback server needs none and writes nothing.
    assert web_token('0.0.0.0', 'mine', environ=env).value == 'mine'
    assert web_token('0.0.0.0', environ={**env, ENV_VAR: 'from-env'}).value == 'from-env'
    other = tmp_path / 'other'
    assert web_token('127.0.0.1', environ={'DONKEY_ROS_DATA': str(other)}).value == ''
    assert not other.exists()


def test_token_file_problems_are_one_line(tmp_path):
    loose = tmp_path / 'loose'
    loose.write_text('a-good-token-1234\n')
    loose.chmod(0o644)
    assert web_token('0.0.0.0', file=str(loose)).value == 'a-good-token-1234'
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600        # made private
    bad = tmp_path / 'bad'
    bad.write_text('has spaces in it\n')
    with pytest.raises(AccessError, match=f'{bad}.*delete it'):
        web_token('0.0.0.0', file=str(bad))
    blocked = tmp_path / 'not_a_folder'
    blocked.write_text('')
    with pytest.raises(AccessError, match='cannot write the web token file'):
        web_token('0.0.0.0', file=str(blocked / 'web_token'))


def test_web_node_keeps_its_token_across_launches(graph, tmp_path, monkeypatch):
    from donkey_ros.web.web_node import WebNode

    monkeypatch.setenv('DONKEY_ROS_DATA', str(tmp_path))
    overrides = [Parameter('host', value='0.0.0.0'), Parameter('port', value=0)]
    first = graph.add(WebNode, parameter_overrides=overrides)
    token = first.server.token
    assert first.url.endswith(f'/?token={token}') and first.token.source == 'new'
    first.destroy_node()
    second = graph.add(WebNode, parameter_overrides=overrides)
    assert second.server.token == token and second.token.source == 'file'
    assert (tmp_path / 'web_token').read_text().strip() == token
    assert stat.S_IMODE((tmp_path / 'web_token').stat().st_mode) == 0o600


def fetch(url: str, **kwargs):
    async def go():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.get(url, **kwargs) as response:
                return response.status, await response.text()
    return asyncio.run(go())


@pytest.fixture
def network_server(tmp_path):
    token = web_token('0.0.0.0', environ={'DONKEY_ROS_DATA': str(tmp_path)}).value
    server = WebServer('0.0.0.0', 0, token=token)
    server.start()
    yield server
    server.stop()


def test_stored_token_guards_network_requests(network_server):
    address = non_loopback_address()
    if address is None:
        pytest.skip('this machine has no non-loopback IPv4 address (hostname -I is empty)')
    base = f'http://{address}:{network_server.port}'
    assert fetch(base + '/')[0] == 403
    assert fetch(base + f'/?token={network_server.token}')[0] == 200
    status, text = fetch(base + f'/phone.json?token={network_server.token}')
    assert status == 200 and network_server.token not in text     # only this machine sees it


def test_page_on_this_machine_shows_the_phone_url(network_server):
    port, token = network_server.port, network_server.token
    status, text = fetch(f'http://127.0.0.1:{port}/phone.json')
    assert status == 200 and f':{port}/?token={token}' in text
    assert 'phone-link' in fetch(f'http://127.0.0.1:{port}/')[1]
    # A rebound DNS name pointing at 127.0.0.1 is not this machine's page.
    status, text = fetch(f'http://127.0.0.1:{port}/phone.json',
                         headers={'Host': f'evil.example:{port}'})
    assert token not in text
    # A loopback-only server has no token and shows no phone link.
    local = WebServer('127.0.0.1', 0)
    local.start()
    try:
        assert '"urls": []' in fetch(f'http://127.0.0.1:{local.port}/phone.json')[1]
    finally:
        local.stop()


def test_phone_url_is_visible_in_a_real_browser(network_server):
    from donkey_ros.web.browser import HeadlessChromium, missing

    if missing() is not None:
        pytest.skip(f'no headless browser: {missing()}')
    from selenium.webdriver.common.by import By
    from rosgraph import wait_for

    with HeadlessChromium(412, 860) as driver:
        driver.get(f'http://127.0.0.1:{network_server.port}/')
        link = driver.find_element(By.ID, 'phone-link')
        assert wait_for(lambda: link.is_displayed(), timeout=10.0)
        assert f'?token={network_server.token}' in link.text
