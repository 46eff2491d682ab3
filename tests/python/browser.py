"""Headless Chromium (Debian's chromium and chromedriver) driven by
Selenium, for the tests of tarn's pages: open a page as a person would,
wait for what must be there, save a screenshot of it."""

import os
import shutil
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tarn"
# Every page a test opens is saved here as PNG (the issue note shows some).
SCREENSHOTS = Path(os.environ.get("TARN_SCREENSHOTS", CACHE / "screenshots"))


def available() -> bool:
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


class Browser:
    """One headless Chromium window on `base_url`."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.profile = tempfile.mkdtemp(prefix="tarn-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        # The machine's network is closed: no background calls to Google.
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", "--disable-quic", "--hide-scrollbars", "--window-size=1400,1000",
                     f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        self.driver.set_page_load_timeout(30)

    def open(self, path: str):
        self.driver.get(self.base_url + path)
        return self

    @property
    def path(self) -> str:
        url = self.driver.current_url
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def text(self, css: str = "body") -> str:
        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def one(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def wait(self, css: str, timeout: float = 20):
        """The first element matching `css`, once it is there."""
        try:
            return WebDriverWait(self.driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))
        except TimeoutException:
            raise AssertionError(f"no {css!r} on {self.path} within {timeout}s; page text:\n{self.text()[:2000]}")

    def wait_text(self, text: str, css: str = "body", timeout: float = 20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self._read(lambda: self.text(css), ""):
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} not in {css} of {self.path}; page text:\n{self.text()[:2000]}")

    def wait_until(self, predicate, timeout: float = 30, interval: float = 0.3):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self._read(predicate, None)
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"condition not met on {self.path}")

    @staticmethod
    def _read(read, otherwise):
        # An htmx swap can replace the elements between finding and reading
        # them; that is "not there yet", not a failure.
        try:
            return read()
        except (StaleElementReferenceException, NoSuchElementException):
            return otherwise

    def script(self, source: str, *args):
        return self.driver.execute_script(source, *args)

    def shot(self, name: str) -> Path:
        """Saves the whole page (as tall as its content) as `name`.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.script("return Math.max(document.body.scrollHeight, 700)")
        self.driver.set_window_size(1400, min(int(height) + 40, 4000))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
