"""The audit in a real browser: headless Chromium opens the index and every report.

Chromium (Debian's ``chromium``; ``.ci/run`` installs it when missing) is driven over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: no port, no extra package). On every page: every
image has loaded and is embedded (``data:``), every link between reports resolves to a file of the
audit, the console shows no error, no request failed, and no script ran that the page did not
intend (an account called ``<script>alert(1)</script>`` must stay text). A screenshot of the index is
kept in ``reports/test-output/browser/``. Without Chromium the test fails; it is never skipped.

The audit runs on a book whose account names are HTML, quotes and ampersands; the reports must show
them as text.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from cslab import config
from cslab.audit import NOTEBOOKS, run_audit
from cslab.data.synth import generate

PARAMS = {"n_bootstrap": 2, "shap_sample": 200, "min_cohort_size": 10}
SCREENSHOTS = config.REPORTS_DIR / "test-output" / "browser"
HOSTILE_NAMES = [
    "<script>alert('name')</script> Ltd",
    '"Quoted" <b>Bold</b> & Co',
    "Tom & Jerry's",
    "<img src=x onerror=alert(2)> Inc",
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1100,3000",
    "--remote-debugging-pipe",
]

# What a page reports about itself once loaded.
PAGE_FACTS = """(() => {
  const images = [...document.images].map(i => ({src: i.getAttribute('src') || '',
      loaded: i.complete && i.naturalWidth > 0}));
  const links = [...document.querySelectorAll('a[href]')].map(a => {
      const href = a.getAttribute('href');
      const local = href.startsWith('#');
      return {href: href, url: a.href,
              target_found: !local || href === '#' || !!document.getElementById(decodeURIComponent(href.slice(1)))};
  });
  return JSON.stringify({images, links, text: document.body ? document.body.innerText.length : 0,
                         title: document.title});
})()"""


class Chromium:
    """Headless Chromium driven by the DevTools protocol over a pipe (messages end with NUL)."""

    def __init__(self, binary: str, profile: Path, log: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4 (bash: dash cannot redirect fds > 9).
        self.process = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session = None

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe (did it start?)")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, timeout: float = 60, session: bool = True) -> dict:
        self._next_id += 1
        number = self._next_id
        message = {"id": number, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == number:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._on_event(reply)

    def _on_event(self, event: dict) -> None:
        self.events.append(event)
        if event.get("method") == "Page.javascriptDialogOpening":
            # an alert() ran: answer it so that the page goes on (the test fails on the event)
            self._next_id += 1
            os.write(
                self._to_browser,
                json.dumps(
                    {
                        "id": self._next_id,
                        "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": True},
                        "sessionId": self.session,
                    }
                ).encode()
                + b"\0",
            )

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = self._read(deadline)
            self._on_event(event)
            if event.get("method") == method:
                return event

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 3000, "deviceScaleFactor": 1, "mobile": False},
        )

    def visit(self, path: Path) -> dict:
        """Load a file; return its facts and the problems the browser reported while loading it."""
        self.events.clear()
        self.send("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("Page.loadEventFired")
        facts = json.loads(
            self.send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True})["result"]["value"]
        )
        time.sleep(0.3)  # late errors (a script after load) still count
        self.send("Runtime.evaluate", {"expression": "1"})
        facts["problems"] = problems(self.events)
        return facts

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        params = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": 1100, "height": min(size["height"], 16000), "scale": 1},
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False, timeout=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)


def problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, failed requests and script dialogs, one line each."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in {"error", "assert"}:
            found.append(
                "console."
                + params["type"]
                + ": "
                + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            found.append(f"console ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')} ({params.get('type')})")
        elif method == "Page.javascriptDialogOpening":
            found.append(f"a script opened a {params.get('type')} dialog: {params.get('message')!r}")
    return found


def check_audit_in_browser(out: Path, browser: Chromium, screenshot: Path | None = None) -> dict:
    """Visit the index and every page it links to; return ``{page: [problem, ...]}`` (empty lists: fine)."""
    report: dict[str, list[str]] = {}
    queue, seen = [out / "index.html"], set()
    while queue:
        page = queue.pop(0)
        if page in seen:
            continue
        seen.add(page)
        facts = browser.visit(page)
        found = list(facts["problems"])
        if facts["text"] < 200:
            found.append(f"almost empty page ({facts['text']} characters of text)")
        for image in facts["images"]:
            if not image["loaded"]:
                found.append(f"image did not load: {image['src'][:80]}")
            elif not image["src"].startswith("data:image/"):
                found.append(f"image not embedded in the page: {image['src'][:80]}")
        for link in facts["links"]:
            url = urlparse(link["url"])
            if not link["target_found"]:
                found.append(f"link to a missing anchor: {link['href']}")
            if url.scheme != "file":
                continue  # links to the web (sources, references) are not part of the audit
            target = Path(unquote(url.path))
            if not target.exists():
                found.append(f"broken link: {link['href']}")
            elif not target.resolve().is_relative_to(out.resolve()):
                found.append(f"link leaves the audit folder: {link['href']}")
            elif target.suffix == ".html":
                queue.append(target)
        if screenshot is not None and page == out / "index.html":
            browser.screenshot(screenshot)
        report[page.name] = found
    return report


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, (
        "Chromium is not installed: the browser test needs Debian's `chromium` package "
        "(`apt-get install -y chromium`; .ci/run installs it when it can)"
    )
    return binary


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    chromium = Chromium(chromium_binary(), profile, profile.parent / "chromium.log")
    try:
        chromium.open_page()
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    book = generate(n_accounts=600, n_months=28, seed=9)
    accounts = book.tables["accounts"]
    # every account: so that the accounts shown in the ranked lists are hostile too
    accounts["name"] = [f"{HOSTILE_NAMES[i % len(HOSTILE_NAMES)]} {i}" for i in range(len(accounts))]
    data = book.write(base / "book")
    out = base / "audit"
    result = run_audit(data, out, client="Browser & <Co>", params=PARAMS, progress=False, echo=lambda _: None)
    return out, result


def test_checker_catches_broken_pages(tmp_path, browser):
    """The checks can fail: a page with a missing image, a dead link, an error and an alert."""
    (tmp_path / "ok.html").write_text("<html><body><p>" + "fine " * 60 + "</p></body></html>")
    (tmp_path / "index.html").write_text(
        "<html><body><p>" + "words " * 60 + '</p><img src="missing.png"><a href="gone.html">x</a>'
        '<a href="ok.html">ok</a><a href="#nowhere">y</a>'
        "<script>console.error('boom'); alert('injected')</script></body></html>"
    )
    found = check_audit_in_browser(tmp_path, browser)
    text = "\n".join(found["index.html"])
    for expected in (
        "image did not load",
        "broken link: gone.html",
        "missing anchor: #nowhere",
        "boom",
        "dialog: 'injected'",
        "request failed",
    ):
        assert expected in text, (expected, text)
    assert found["ok.html"] == []


def test_index_and_every_report_in_chromium(hostile_audit, browser):
    out, result = hostile_audit
    assert all(r.status == "ok" for r in result.runs.values()), {n: r.error for n, r in result.runs.items()}
    screenshot = SCREENSHOTS / "index.png"
    screenshot.unlink(missing_ok=True)
    found = check_audit_in_browser(out, browser, screenshot=screenshot)
    assert set(found) == {"index.html"} | {f"{name}.html" for name in NOTEBOOKS}, "index links every report"
    assert {page: lines for page, lines in found.items() if lines} == {}
    assert screenshot.stat().st_size > 20_000  # a real picture of the index, kept for people to look at
    print(f"screenshot of the index: {screenshot}")


def test_hostile_account_names_render_as_text(hostile_audit):
    out, _ = hostile_audit
    pages = {p.name: p.read_text(encoding="utf-8") for p in out.glob("*.html")}
    for name, page in pages.items():
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>Bold</b>" not in page, name
    shown = [name for name, page in pages.items() if "&lt;script&gt;alert(" in page]
    # the ranked lists of at-risk accounts and of expansion opportunities show names
    assert {"02_churn_drivers.html", "04_expansion_opportunity.html"} <= set(shown), shown
    assert "Browser &amp; &lt;Co&gt;" in pages["index.html"]
