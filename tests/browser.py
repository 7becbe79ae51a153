"""A real browser for the console tests: Debian's headless Chromium through Debian's
chromedriver (nothing downloaded), and the console served by uvicorn in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_network
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from pbxctl.console.app import ConsoleDeps, create_app
from pbxctl.console.guard import AllowClients
from pbxctl.console.server import ConsoleServer
from pbxctl.core.net import free_port, tcp_accepts
from pbxctl.core.procs import wait_until

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@contextmanager
def serve(deps: ConsoleDeps, *, host: str = "127.0.0.1", allow: str = "127.0.0.1/32"
          ) -> Iterator[str]:
    """The console on uvicorn (in a thread) at a free port, as `console serve` runs it;
    yields its base URL."""
    port = free_port(host)
    server = ConsoleServer(uvicorn.Config(
        AllowClients(create_app(deps), [ip_network(allow)]), host=host, port=port,
        log_config=None, access_log=False, timeout_graceful_shutdown=2), deps=deps)
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started and tcp_accepts(host, port), timeout=20,
                   what="the console to listen")
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium(profile: Path) -> WebDriver:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1280,900",
                 f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(20)
    return driver


def keep_evidence(driver: WebDriver, folder: Path) -> None:
    driver.save_screenshot(str(folder / "failure.png"))
    (folder / "failure.html").write_text(driver.page_source, encoding="utf-8")
    print(f"browser evidence kept in {folder}")


def wait_js(driver: WebDriver, condition: str, *, what: str, timeout: float = 10.0) -> float:
    """Wait until a JavaScript condition holds in the page; returns when (monotonic)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.02).until(
        lambda d: d.execute_script(f"return !!({condition})"), message=what)
    return time.monotonic()


def sign_in(driver: WebDriver, url: str, seat: str, password: str, *, lang: str = "en",
            live: bool = True) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{url}/login?lang={lang}")
    driver.find_element(By.ID, "login").send_keys(seat)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    if live:
        wait_js(driver, "document.body.dataset.live === '1'", what=f"{seat}'s page to go live")
