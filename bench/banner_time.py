"""The banner's time to visible in Chromium beside vanilla-cookieconsent 3's, measured in the same run.

Ours is served for real: a temporary SQLite database, `cmp db upgrade`, `cmp demo`, gunicorn on loopback.
A test page on another origin (localhost against the service's 127.0.0.1) embeds it as a site would, with
`<script src=".../banner/v1/cmp.js" data-site="demo" async>`. Theirs is installed from the npm registry into
a temporary directory; the same page server serves its script and stylesheet, and the page configures it
inline with the demo site's purposes and English texts, as read from our banner-config. Headless Chromium
opens the two pages in turn, each visit in a fresh browser context (no cache, no stored consent); a script
installed before the page's own records, on the page's clock, when the first layer enters the DOM and the
first frame in which it is visible. The table gives the median and 95th percentile of each, their ratio
(ours / theirs), and the bytes each banner downloads.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import shutil
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from bench import BenchError, summary
from bench.banner_size import PEER, PEER_SCRIPT, PEER_STYLESHEET, PeerUnavailable, install_peer
from bench.databases import sqlite_database
from bench.options import machine, median, p95, positive, positive_seconds
from bench.server import HOST, app_environment, cmp, free_port, gunicorn
from cmp.banner import bundle
from tests.browser.chromium import launch

SITE = "demo"
# One visitor at a time asks for the script and then banner-config: two sync workers are plenty, and few
# processes leave the cores to Chromium.
WORKERS = 2
VIEWPORT = {"width": 1280, "height": 720}
COLUMNS = (
    ("banner", 22),
    ("version", 12),
    ("runs", 4),
    ("failed", 6),
    ("median ms", 9),
    ("p95 ms", 7),
    ("in DOM ms", 9),
    ("requests", 8),
    ("bytes", 6),
)

# Runs before any script of the page (Playwright adds it to every frame; the top one measures).
# `inserted` is when the first layer enters the DOM (a MutationObserver runs right after the insertion);
# `visible` is the first animation frame (run just before style, layout and paint) in which the layer has a
# box and `visibility: visible`. Both come from performance.now(): milliseconds since the navigation started,
# on the page's own clock. Opacity is not looked at: a layer that fades in counts from its first visible frame.
PROBE = """
(selector => {
  if (window.top !== window) return;
  const times = window.bannerTimes = {};
  const find = () => document.querySelector(selector);
  const observer = new MutationObserver(() => {
    if (find()) { times.inserted = performance.now(); observer.disconnect(); }
  });
  observer.observe(document, {childList: true, subtree: true});
  const frame = () => {
    const layer = find();
    if (layer && layer.checkVisibility({visibilityProperty: true})) {
      const box = layer.getBoundingClientRect();
      if (box.width > 0 && box.height > 0) { times.visible = performance.now(); return; }
    }
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})(%s);
"""

# The same short article for both banners; only the banner's tags differ.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Configuring a storage pool | Technical Support</title>
  <link rel="icon" href="data:,">
  %s
  <style>body { font: 16px/1.6 system-ui, sans-serif; max-width: 48rem; margin: 0 auto; padding: 1rem; }</style>
</head>
<body>
  <main>
    <h1>Configuring a storage pool</h1>
    <p>This article explains how to create, expand and monitor a storage pool.</p>
    <p>Open the management console, choose Storage, select the disks and create the pool.</p>
  </main>
</body>
</html>
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", type=positive, default=20, metavar="N", help="timed visits of each banner (default: %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=_count, default=1, metavar="N", help="untimed visits of each first (default: %(default)s)"
    )
    parser.add_argument(
        "--peer-version",
        default="3",
        metavar="SPEC",
        help=f"the npm version or range of {PEER} to install (default: %(default)s)",
    )
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or "/usr/bin/chromium",
        help="the Chromium executable (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=15.0,
        metavar="S",
        help="seconds a visit may take to show the banner before it counts as failed (default: %(default)s)",
    )


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


@dataclass(frozen=True)
class Banner:
    """One banner under test: the page that embeds it, its first layer, and the requests that are its own."""

    name: str
    version: str
    url: str  # the page that embeds it
    selector: str  # its first layer
    own_urls: tuple[str, ...]  # a request is the banner's when its URL starts with one of these
    detail: str


@dataclass
class Timings:
    """What the timed visits of one banner recorded, in milliseconds and bytes; one entry per visit shown."""

    banner: Banner
    inserted: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    bytes: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # bytes of each of the banner's requests, last visit


def run(args: argparse.Namespace) -> int:
    chromium = Path(args.chromium)
    if not chromium.exists():
        raise BenchError(f"no Chromium at {chromium} (use --chromium PATH)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        raise BenchError(f"Playwright for Python is not installed (pip install -e '.[test]'): {exc}") from None

    print(machine(), flush=True)
    problem = ""
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cmp-bench-")))
        pages = stack.enter_context(page_server())
        service = stack.enter_context(demo_service(directory, pages.origin))
        config = banner_config(service, pages.origin)
        banners = [ours(pages, service, config)]
        try:
            banners.append(theirs(pages, config, args.peer_version))
        except PeerUnavailable as exc:
            problem = str(exc)
        results, browser = measure(banners, chromium, args)
    print_report(results, args.warmup, browser)
    if problem:
        print(f"{PEER}: not measured: {problem}")
        return 2
    return 1 if any(r.failures for r in results) else 0


# --- what is served -------------------------------------------------------------------------------------


class PageServer:
    """The site that embeds the banners, on http://localhost:<port>: another origin than the service's."""

    def __init__(self) -> None:
        self._files: dict[str, tuple[bytes, str]] = {}
        self._server = make_server(HOST, 0, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self.origin = f"http://localhost:{self._server.port}"

    def add(self, path: str, body: bytes, mimetype: str) -> None:
        self._files[path] = (body, mimetype)

    def url(self, path: str) -> str:
        return self.origin + path

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        if request.path not in self._files:
            return Response("not found", status=404)
        body, mimetype = self._files[request.path]
        if mimetype == "text/html":
            return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-store"})
        # Served as ours is: gzipped at level 9 when the browser accepts it (it always does).
        response = Response(body, mimetype=mimetype, headers={"Cache-Control": "public, max-age=86400"})
        if request.accept_encodings.quality("gzip") > 0:
            response.set_data(gzip.compress(body, compresslevel=9, mtime=0))
            response.headers["Content-Encoding"] = "gzip"
        response.vary.add("Accept-Encoding")
        return response


class _QuietHandler(WSGIRequestHandler):
    """No line per request on the benchmark's output."""

    def log_request(self, *args: object) -> None:
        pass


@contextmanager
def page_server() -> Iterator[PageServer]:
    server = PageServer()
    thread = threading.Thread(target=server.serve_forever, name="banner-time-pages", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)


@contextmanager
def demo_service(directory: Path, page_origin: str) -> Iterator[str]:
    """The service under gunicorn on a fresh SQLite file, the demo site allowing `page_origin`; yields its URL."""
    with sqlite_database(directory) as database:
        _progress(f"{database.version}: migrating, seeding the demo site, starting gunicorn")
        env = app_environment(database.url)
        port = free_port()
        base = f"http://{HOST}:{port}"
        cmp(env, "db", "upgrade")
        cmp(env, "demo", "--base-url", base, "--origin", page_origin)
        with gunicorn(env, WORKERS, port, directory / "gunicorn.log"):
            yield base


def banner_config(service: str, page_origin: str) -> dict:
    """What our banner fetches before it shows: the peer is configured from the same purposes and texts."""
    request = urllib.request.Request(
        f"{service}/api/v1/sites/{SITE}/banner-config?locale=en", headers={"Origin": page_origin}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except OSError as exc:
        raise BenchError(f"GET banner-config from the service failed: {exc}") from None


def ours(pages: PageServer, service: str, config: dict) -> Banner:
    script = f"{service}/banner/v1/cmp.js"
    embed = f'<script src="{script}" data-site="{SITE}" async></script>'
    pages.add("/ours", (PAGE % embed).encode(), "text/html")
    detail = (
        f"cmp.js (async) from the service on {HOST} (gunicorn, {WORKERS} sync workers, SQLite), then"
        f" banner-config ({len(config['purposes'])} purposes, {len(config['cookies'])} cookies) before it shows"
    )
    api = f"{service}/api/v1/sites/{SITE}/banner-config"
    return Banner("cmp", bundle.build().short, pages.url("/ours"), ".cmp-banner", (script, api), detail)


def theirs(pages: PageServer, config: dict, spec: str) -> Banner:
    npm = shutil.which("npm")
    if npm is None:
        raise PeerUnavailable("npm is not on PATH")
    with tempfile.TemporaryDirectory(prefix="cmp-bench-npm-") as directory:
        _progress(f"installing {PEER}@{spec} with npm")
        package = install_peer(npm, spec, Path(directory))
        try:
            version = json.loads((package / "package.json").read_text(encoding="utf-8"))["version"]
            script = (package / PEER_SCRIPT).read_bytes()
            css = (package / PEER_STYLESHEET).read_bytes()
        except (OSError, ValueError, KeyError) as exc:
            raise PeerUnavailable(f"{PEER}@{spec} is not as expected: {exc}") from None
    # "</" escaped: the settings sit inside a <script> element, which the first "</script" would close.
    settings = json.dumps(peer_settings(config), ensure_ascii=False).replace("</", "<\\/")
    # As its documentation shows: the stylesheet in the head, the script and then run() with the settings.
    # The script is async, as ours is, and starts the banner from its load event.
    embed = (
        '<link rel="stylesheet" href="/peer/cookieconsent.css">\n'
        f"  <script>window.bannerSettings = {settings};</script>\n"
        '  <script src="/peer/cookieconsent.umd.js" async onload="CookieConsent.run(window.bannerSettings)"></script>'
    )
    pages.add("/theirs", (PAGE % embed).encode(), "text/html")
    pages.add("/peer/cookieconsent.umd.js", script, "text/javascript")
    pages.add("/peer/cookieconsent.css", css, "text/css")
    detail = (
        f"{PEER_SCRIPT} (async) and {PEER_STYLESHEET} from the page's origin, configured inline"
        f" ({len(settings.encode())} bytes of settings in the page, not counted): no round trip before it shows"
    )
    urls = (pages.url("/peer/"),)
    return Banner(PEER, version, pages.url("/theirs"), "#cc-main .cm", urls, detail)


def peer_settings(config: dict) -> dict:
    """vanilla-cookieconsent's settings for the demo site: our purposes, cookies and English texts."""
    texts = config["texts"]
    policy = f'<a href="{html.escape(config["policy_url"])}">{html.escape(texts["policy_link"])}</a>'
    sections = []
    for purpose in config["purposes"]:
        cookies = [c for c in config["cookies"] if c["purpose"] == purpose["key"]]
        section = {"title": purpose["name"], "description": purpose["description"], "linkedCategory": purpose["key"]}
        if cookies:
            section["cookieTable"] = {
                "headers": {"name": texts["name"], "provider": texts["provider"], "type": texts["type"]},
                "body": [{"name": c["name"], "provider": c["provider"], "type": texts[c["storage"]]} for c in cookies],
            }
        sections.append(section)
    return {
        # It stays hidden when navigator.webdriver is true, as it is in a browser driven by Playwright.
        "hideFromBots": False,
        "categories": {
            p["key"]: {"enabled": not p["refusable"], "readOnly": not p["refusable"]} for p in config["purposes"]
        },
        "language": {
            "default": "en",
            "translations": {
                "en": {
                    "consentModal": {
                        "title": texts["title"],
                        "description": texts["description"],
                        "acceptAllBtn": texts["accept_all"],
                        "acceptNecessaryBtn": texts["reject_all"],
                        "showPreferencesBtn": texts["customise"],
                        "footer": policy,
                    },
                    "preferencesModal": {
                        "title": texts["title"],
                        "acceptAllBtn": texts["accept_all"],
                        "acceptNecessaryBtn": texts["reject_all"],
                        "savePreferencesBtn": texts["save"],
                        "closeIconLabel": texts["close"],
                        "sections": sections,
                    },
                }
            },
        },
    }


# --- measuring --------------------------------------------------------------------------------------------


def measure(banners: list[Banner], chromium: Path, args: argparse.Namespace) -> tuple[list[Timings], str]:
    """Visit each banner's page `--warmup` + `--runs` times, alternating; returns the timings and Chromium's version."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    results = [Timings(banner) for banner in banners]
    with sync_playwright() as playwright:
        try:
            browser = launch(playwright, chromium)
        except PlaywrightError as exc:
            raise BenchError(f"Chromium did not start: {exc}") from None
        version = browser.version
        try:
            _progress(f"{args.warmup} warm-up and {args.runs} timed visits of each, alternating, in Chromium {version}")
            for number in range(args.warmup + args.runs):
                # Who goes first swaps every round, so neither always follows the other's cleanup.
                order = results if number % 2 == 0 else results[::-1]
                for result in order:
                    visit(browser, result, args.timeout, timed=number >= args.warmup)
        finally:
            browser.close()
    return results, version


def visit(browser, result: Timings, timeout: float, timed: bool) -> None:
    """Open the banner's page in a fresh context and record when its first layer showed, or why it did not."""
    from playwright.sync_api import Error as PlaywrightError

    banner = result.banner
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    try:
        context.set_default_timeout(timeout * 1000)
        context.add_init_script(PROBE % json.dumps(banner.selector))
        page = context.new_page()
        own = []
        page.on("request", lambda request: own.append(request) if request.url.startswith(banner.own_urls) else None)
        page.goto(banner.url, wait_until="commit")
        # The times come from the page's clock, so how soon this notices them does not matter: a slow poll
        # keeps its work out of the frames being measured.
        page.wait_for_function("() => window.bannerTimes && window.bannerTimes.visible !== undefined", polling=100)
        times = page.evaluate("() => window.bannerTimes")
        sizes = {urlsplit(request.url).path.rsplit("/", 1)[-1]: request.sizes()["responseBodySize"] for request in own}
    except PlaywrightError as exc:
        if timed:
            result.failures.append(str(exc).splitlines()[0])
        _progress(f"{banner.name}: not shown: {str(exc).splitlines()[0]}")
        return
    finally:
        context.close()
    if timed:
        result.inserted.append(times["inserted"])
        result.visible.append(times["visible"])
        result.requests.append(len(sizes))
        result.bytes.append(sum(sizes.values()))
        result.files = sizes


# --- report -----------------------------------------------------------------------------------------------


def print_report(results: list[Timings], warmup: int, browser: str) -> None:
    print(_row(name for name, _ in COLUMNS))
    for r in results:
        print(
            _row(
                [
                    r.banner.name,
                    r.banner.version,
                    len(r.visible),
                    len(r.failures),
                    _figure(median(r.visible), 1),
                    _figure(p95(r.visible), 1),
                    _figure(median(r.inserted), 1),
                    _figure(median(r.requests), 0),
                    _figure(median(r.bytes), 0),
                ]
            )
        )
    if len(results) == 2:
        ours, theirs = results
        ratios = [
            _ratio(median(ours.visible), median(theirs.visible)),
            _ratio(p95(ours.visible), p95(theirs.visible)),
            _ratio(median(ours.inserted), median(theirs.inserted)),
            "",
            _ratio(median(ours.bytes), median(theirs.bytes)),
        ]
        print(_row(["ratio (ours / theirs)", "", "", "", *ratios]))
        summary.record(
            "banner time to visible, median ms (Chromium)",
            _figure(median(ours.visible), 1),
            f"{theirs.banner.name} {_figure(median(theirs.visible), 1)}",
            ratios[0],
        )
    for r in results:
        files = " + ".join(f"{name} {size}" for name, size in r.files.items())
        print(f"{r.banner.name}: {r.banner.detail}; bytes: {files or '-'}")
        for failure in r.failures:
            print(f"{r.banner.name}: not shown: {failure}")
    print(
        f"timing: Chromium {browser}, headless; ms from navigation start on the page's clock; {warmup} untimed"
        " visit(s) of each first; a fresh browser context per visit (empty cache, no stored consent);"
        " bytes: response bodies as sent, headers left out"
    )


def _figure(value: float, decimals: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{decimals}f}"


def _ratio(a: float, b: float) -> str:
    return "-" if math.isnan(a) or math.isnan(b) or not b else f"{a / b:.3f}"


def _row(cells: Iterable[object]) -> str:
    return "  ".join(str(cell).ljust(width) for cell, (_, width) in zip(cells, COLUMNS, strict=True)).rstrip()


def _progress(message: str) -> None:
    print(f"  banner_time: {message}", file=sys.stderr, flush=True)
