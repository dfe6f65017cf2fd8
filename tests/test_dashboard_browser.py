"""The dashboard in a real browser (Chromium driven by Playwright).

The server is ``solara run`` on the app, started the way ``sme-abm dashboard``
starts it. Screenshots go to ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install -y chromium)"),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (test extra) not installed")
pytest.importorskip("solara", reason="dashboard extras (solara) not installed")

from sme_abm.config import load_config  # noqa: E402
from sme_abm.dashboard import server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory):
    """A dashboard server on a free loopback port, stopped at teardown."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**server.environment(), "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log.open("w") as out:
        process = subprocess.Popen(server.command("127.0.0.1", port), env=env, cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dashboard server did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, dashboard_url):
    """A fresh page on the dashboard that records every request it makes."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)  # the machine may be shared and busy
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(dashboard_url)
    page.locator(".sme-lever-switch").first.wait_for(timeout=60_000)
    page.locator(".sme-chart-firms img").wait_for(timeout=60_000)
    yield page
    context.close()


def remote_requests(urls: list[str]) -> list[str]:
    """Requests that would leave the machine."""
    return [url for url in urls if urlparse(url).scheme not in ("data", "blob")
            and urlparse(url).hostname not in LOCAL_HOSTS]


def month_text(page) -> str:
    return page.locator(".sme-month").inner_text()


def test_end_to_end(page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    switches = page.locator(".sme-lever-switch input[role=switch]")
    assert switches.count() == 25
    page.screenshot(path=str(ARTIFACTS / "01-loaded.png"))

    # switch lever 13 (financing guarantees) off: the run restarts with it off
    guarantee = page.locator(".sme-lever-p13_financing_guarantee")
    assert guarantee.locator("input").get_attribute("aria-checked") == "true"
    guarantee.locator("label").click()
    page.wait_for_function(
        "() => document.querySelector('.sme-lever-p13_financing_guarantee input').getAttribute('aria-checked') === 'false'",
        timeout=60_000)

    # run 12 months; the charts change
    before = page.locator(".sme-chart-firms img").get_attribute("src")
    page.locator(".sme-run-n").click()
    page.wait_for_function("() => document.querySelector('.sme-month').innerText.startsWith('Month 12')",
                           timeout=60_000)
    page.wait_for_function(f"() => document.querySelector('.sme-chart-firms img').src !== {before!r}",
                           timeout=60_000)
    page.get_by_role("button", name="Credit").click()
    page.locator(".sme-chart-credit img").wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "02-after-12-months.png"))

    # comparison with the baseline, same seed
    page.get_by_role("tab", name="Compare with baseline").click()
    page.locator(".sme-compare").click()
    page.locator(".sme-chart-comparison img").wait_for(timeout=60_000)
    assert page.get_by_text("Current vs baseline after 12 months").count() == 1
    page.screenshot(path=str(ARTIFACTS / "03-comparison.png"), full_page=True)

    # export the config; the CLI accepts it and it reproduces the settings
    page.get_by_role("tab", name="Export").click()
    with page.expect_download() as download:
        page.get_by_text("Config (TOML)").click()
    exported = tmp_path / "dashboard.toml"
    download.value.save_as(exported)
    config = load_config(exported)
    assert config.levers.p13_financing_guarantee.enabled is False
    assert config.simulation.steps == 12 and config.simulation.seed == 42
    out = tmp_path / "cli-run"
    result = subprocess.run([sys.executable, "-m", "sme_abm", "run", str(exported), "--steps", "3", "--smes", "500",
                             "--out", str(out), "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert (out / "timeseries.parquet").exists()
    with page.expect_download() as download:
        page.get_by_text("Time series (CSV)").click()
    csv = tmp_path / "timeseries.csv"
    download.value.save_as(csv)
    assert len(csv.read_text().splitlines()) == 13
    page.screenshot(path=str(ARTIFACTS / "04-export.png"))

    # play runs on by itself until paused
    page.get_by_role("tab", name="Live charts").click()
    page.locator(".sme-play").click()
    try:
        page.wait_for_function("() => parseInt(document.querySelector('.sme-month')?.innerText.slice(6)) >= 15",
                               timeout=60_000)
    except playwright_api.Error:
        page.screenshot(path=str(ARTIFACTS / "failed-play.png"), full_page=True)
        (ARTIFACTS / "failed-play.txt").write_text(page.locator("body").inner_text())
        raise
    page.locator(".sme-play").click()
    page.wait_for_function("() => document.querySelector('.sme-play').innerText.trim().toLowerCase() === 'play'",
                           timeout=60_000)
    page.wait_for_timeout(500)
    paused_at = month_text(page)
    page.wait_for_timeout(700)
    assert month_text(page) == paused_at

    assert remote_requests(page.requests) == []


#: JavaScript: click Step and resolve with the milliseconds until the chart
#: image of the visible group has a new picture (and the month label changed).
STEP_LATENCY_JS = """
async () => {
  const images = Array.from(document.querySelectorAll('.sme-chart img'));
  const before = images.map(img => img.src);
  const label = document.querySelector('.sme-month');
  const monthBefore = label.innerText;
  const start = performance.now();
  document.querySelector('.sme-step').click();
  return await new Promise((resolve, reject) => {
    const check = () => {
      const now = Array.from(document.querySelectorAll('.sme-chart img')).map(img => img.src);
      const done = now.length === before.length && now.every((src, i) => src !== before[i])
                   && label.innerText !== monthBefore;
      if (done) { resolve(performance.now() - start); return; }
      if (performance.now() - start > 20000) { reject('timeout'); return; }
      requestAnimationFrame(check);
    };
    check();
  });
}
"""


def test_step_latency_with_10000_smes(page):
    """Benchmark (quoted in docs/dashboard.md, not asserted): click Step with
    10,000 SMEs until the four charts of the visible group show the new month."""
    field = page.locator(".sme-smes input")
    field.fill("10000")
    field.press("Enter")
    page.wait_for_function("() => document.querySelector('.sme-month').innerText.includes('10,000 SMEs')",
                           timeout=60_000)
    page.locator(".sme-run-n").click()  # warm up: 12 months of history in the charts
    page.wait_for_function("() => document.querySelector('.sme-month').innerText.startsWith('Month 12')",
                           timeout=60_000)
    page.wait_for_timeout(500)
    times = []
    for _ in range(10):
        times.append(page.evaluate(STEP_LATENCY_JS))
        page.wait_for_timeout(100)
    times.sort()
    report = (f"step + chart update, 10,000 SMEs, 4 charts: median {times[len(times) // 2]:.0f} ms, "
              f"min {times[0]:.0f} ms, max {times[-1]:.0f} ms over {len(times)} clicks")
    print(report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "step-latency.txt").write_text(report + "\n")
    page.screenshot(path=str(ARTIFACTS / "05-10000-smes.png"))
    assert remote_requests(page.requests) == []
