"""The web page in a real headless Chromium (Selenium), against a real rclpy graph with the mux.

Skipped only when Chromium, chromium-driver or selenium is missing (see donkey_ros/web/browser.py).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from donkey_ros.common import qos
from donkey_ros.common.command import DriveCommand, command_to_msg
from donkey_ros.common.image import array_to_image
from donkey_ros.web.browser import HeadlessChromium, missing
from rosgraph import wait_for as wait

pytestmark = pytest.mark.skipif(missing() is not None, reason=f'no headless browser: {missing()}')


class MovingCamera(Node):
    """Publishes a bar sweeping across a gradient at 20 Hz."""

    def __init__(self, **kwargs) -> None:
        super().__init__('fake_camera', **kwargs)
        self.pub = self.create_publisher(Image, 'camera/image_raw', qos.IMAGE_PUBLISH)
        self.count = 0
        self.create_timer(0.05, self._tick)

    def _tick(self) -> None:
        pixels = np.zeros((120, 160, 3), np.uint8)
        pixels[:, :, 2] = np.linspace(40, 200, 160, dtype=np.uint8)
        x = (self.count * 8) % 160
        pixels[:, x:x + 12] = (255, 220, 0)
        self.count += 1
        self.pub.publish(array_to_image(pixels, self.get_clock().now().to_msg()))


@pytest.fixture(scope='module')
def stack():
    from rosgraph import RosGraph

    from donkey_ros.control.mux_node import MuxNode
    from donkey_ros.web.web_node import WebNode

    with RosGraph() as graph:
        graph.mux = graph.add(MuxNode)
        graph.web = graph.add(WebNode, parameter_overrides=[Parameter('port', value=0)])
        graph.add(MovingCamera)
        ns = graph.namespace
        graph.user = []
        graph.out = []
        probe = graph.node()
        probe.create_subscription(TwistStamped, f'{ns}/user/cmd',
                                  lambda m: graph.user.append((time.monotonic(), m)), qos.COMMAND)
        probe.create_subscription(TwistStamped, f'{ns}/cmd',
                                  lambda m: graph.out.append((time.monotonic(), m)), qos.COMMAND)
        graph.user_pub = probe.create_publisher(TwistStamped, f'{ns}/user/cmd', qos.COMMAND)
        yield graph


@pytest.fixture(scope='module')
def browser():
    with HeadlessChromium(412, 860) as driver:
        yield driver


@pytest.fixture
def page(stack, browser):
    """The page freshly loaded and connected."""
    browser.get(stack.web.url)
    assert wait(lambda: browser.execute_script('return window.donkey && window.donkey.connected'))
    yield browser
    browser.get('about:blank')  # closes the WebSocket



def js(driver, expression):
    return driver.execute_script(f'return {expression}')


def is_neutral(msg) -> bool:
    return msg.twist.linear.x == 0.0 and msg.twist.angular.z == 0.0


def hold_stick(driver, dx, dy):
    """Presses the joystick's centre and drags by (dx, dy) CSS pixels, without letting go."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    stick = driver.find_element(By.ID, 'joystick')
    ActionChains(driver).move_to_element(stick).click_and_hold().move_by_offset(dx, dy) \
        .pause(0.05).move_by_offset(-1, 0).perform()


def release_stick(driver):
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(driver).release().perform()


def test_page_shows_a_moving_camera_image(page):
    from selenium.webdriver.common.by import By

    assert wait(lambda: js(page, 'window.donkey.frames') > 5)
    video = page.find_element(By.ID, 'video')
    first = video.screenshot_as_png
    time.sleep(0.3)
    second = video.screenshot_as_png
    assert first != second
    frames = js(page, 'window.donkey.frames')
    time.sleep(1.0)
    rate = js(page, 'window.donkey.frames') - frames
    assert rate >= 10  # camera at 20 Hz
    assert page.find_element(By.ID, 'no-video').get_attribute('class') == 'hidden'
    assert wait(lambda: page.find_element(By.ID, 'mode').text == 'user')


def test_drag_up_left_drives_forward_left(page, stack):
    start = time.monotonic()
    hold_stick(page, -40, -40)
    try:
        assert wait(lambda: any(t > start and m.twist.linear.x > 0 for t, m in stack.user))
        time.sleep(0.3)  # held still: the heartbeat keeps the command alive
        held = [m for t, m in stack.user if t > start]
        assert held[-1].twist.linear.x > 0 and held[-1].twist.angular.z > 0
        # 40 px of the stick's radius, at throttle scale 0.5.
        radius = js(page, "document.getElementById('joystick').getBoundingClientRect().width") / 2
        assert held[-1].twist.angular.z == pytest.approx(40 / radius, abs=0.05)
        assert held[-1].twist.linear.x == pytest.approx(0.5 * 40 / radius, abs=0.05)
        assert wait(lambda: stack.out[-1][1].twist.linear.x > 0)  # through the real mux
    finally:
        released = time.monotonic()
        release_stick(page)
    assert wait(lambda: is_neutral(stack.user[-1][1]), 1.0)
    neutral_at = next(t for t, m in stack.user if t > released and is_neutral(m))
    print(f'\nbrowser: neutral {1000 * (neutral_at - released):.0f} ms after the stick was let go')
    assert neutral_at - released < 0.5


def test_closing_the_page_sends_neutral_within_half_a_second(page, stack):
    start = time.monotonic()
    hold_stick(page, 0, -60)
    assert wait(lambda: any(t > start and m.twist.linear.x > 0 for t, m in stack.user))
    closed = time.monotonic()
    page.get('about:blank')
    assert wait(lambda: is_neutral(stack.user[-1][1]), 1.0)
    neutral_at = next(t for t, m in stack.user if t > closed and is_neutral(m))
    print(f'\nbrowser: neutral {1000 * (neutral_at - closed):.0f} ms after the page was closed')
    assert neutral_at - closed < 0.5
    assert wait(lambda: stack.web.server.clients == 0)


def test_mode_selector_changes_the_mux_mode(page, stack):
    from selenium.webdriver.common.by import By

    try:
        page.find_element(By.CSS_SELECTOR, '#modes button[data-mode="pilot"]').click()
        assert wait(lambda: stack.mux.params.mode == 'pilot')
        assert wait(lambda: page.find_element(By.ID, 'mode').text == 'pilot')
        active = page.find_element(By.CSS_SELECTOR, '#modes button.active')
        assert active.get_attribute('data-mode') == 'pilot'
    finally:
        page.find_element(By.CSS_SELECTOR, '#modes button[data-mode="user"]').click()
        assert wait(lambda: stack.mux.params.mode == 'user')


def test_estop_stops_the_car(page, stack):
    from selenium.webdriver.common.by import By

    start = time.monotonic()
    hold_stick(page, 0, -60)
    try:
        assert wait(lambda: any(t > start and m.twist.linear.x > 0 for t, m in stack.out))
        clicked = time.monotonic()
        page.execute_script("document.getElementById('estop').click()")  # finger on the stick
        assert wait(lambda: stack.mux.mux.estop)
        # Someone keeps pushing throttle: the mux output stays neutral.
        for _ in range(10):
            stack.user_pub.publish(command_to_msg(DriveCommand(0.0, 0.8)))
            time.sleep(0.02)
        pushed = time.monotonic()
        assert wait(lambda: stack.out[-1][0] > pushed)  # the mux has published since
        # Commands already under way when the button was pressed still come out (how many depends
        # on the machine's load); from the first neutral on, everything is neutral.
        after = [m for t, m in stack.out if t > clicked]
        first = next((i for i, m in enumerate(after) if is_neutral(m)), len(after))
        assert after[first:] and all(is_neutral(m) for m in after[first:])
        assert wait(lambda: page.find_element(By.ID, 'estop').text == 'Release stop')
        assert 'hidden' not in page.find_element(By.ID, 'estop-pill').get_attribute('class')
    finally:
        release_stick(page)
        page.find_element(By.ID, 'estop').click()
        assert wait(lambda: not stack.mux.mux.estop)
