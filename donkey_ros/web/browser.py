"""A headless Chromium driven by Selenium, for the page's tests and its documentation screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` pip package; none
of them is needed to run the web node itself.
"""
from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from donkey_ros.common.errors import DonkeyRosError

CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
FLAGS = ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage')


class BrowserError(DonkeyRosError):
    """Chromium, chromedriver or selenium is missing."""


def missing() -> str | None:
    """Why a headless browser cannot start here, or None when it can."""
    for path, package in ((CHROMIUM, 'chromium'), (CHROMEDRIVER, 'chromium-driver')):
        if not Path(path).exists():
            return f'{path} not found (apt-get install -y {package})'
    if importlib.util.find_spec('selenium') is None:
        return 'selenium is not installed (pip install selenium)'
    return None


class HeadlessChromium:
    """``with HeadlessChromium(width, height) as driver:`` a Selenium WebDriver, cleaned up after.

    Args:
        width, height: window size in CSS pixels (a phone: 412 x 860).
        scale: device pixel ratio of screenshots.
    """

    def __init__(self, width: int = 412, height: int = 860, scale: float = 1.0) -> None:
        reason = missing()
        if reason:
            raise BrowserError(reason)
        self.size = (width, height)
        self.scale = scale
        self.profile = tempfile.mkdtemp(prefix='donkey-chromium-')
        self.driver = None

    def __enter__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f'--user-data-dir={self.profile}')
        options.add_argument(f'--window-size={self.size[0]},{self.size[1]}')
        options.add_argument(f'--force-device-scale-factor={self.scale}')
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        return self.driver

    def __exit__(self, *exc) -> None:
        try:
            if self.driver is not None:
                self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
