"""Screenshots of the demo banner for the README: `python -m bench.screenshots` (not a benchmark).

Migrates a temporary SQLite database, seeds the demo site, serves the app with werkzeug on a free
loopback port, opens /demo in headless Chromium through Playwright and saves, under docs/:
banner-first-layer.png (the first layer) and banner-second-layer.png (after "Customise", with the
Analytics cookie list open). With banner decisions from a few countries recorded, it then signs in to the
auditor dashboard and saves audit-dashboard.png (the chart and table by country).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask_migrate import upgrade
from werkzeug.serving import BaseWSGIServer, make_server

from cmp import create_app
from cmp.extensions import db
from cmp.services import keys
from cmp.services.consent import ConsentRequest, Lifetimes, record_consent
from cmp.services.demo import seed_demo
from cmp.services.evidence import Evidence
from cmp.services.identifiers import Identifier
from cmp.vocabulary import Action, IdentifierKind, Source
from tests.browser.chromium import launch

PROJECT = Path(__file__).resolve().parent.parent
DOCS = PROJECT / "docs"
HOST = "127.0.0.1"
VIEWPORT = {"width": 1280, "height": 720}
TIMEOUT_MS = 15_000
# Banner decisions for the dashboard to draw: (country, action, decisions, how many). The log stamps each event
# with the time it is written, so they all fall on the day the screenshots are taken.
DECISIONS = (
    ("DE", Action.ACCEPT_ALL, {}, 14),
    ("DE", Action.REJECT_ALL, {}, 9),
    ("DE", Action.SAVE, {"preferences": "granted", "analytics": "denied"}, 5),
    ("US", Action.ACCEPT_ALL, {}, 12),
    ("US", Action.GPC, {}, 4),
    ("US", Action.SAVE, {"preferences": "granted", "analytics": "granted"}, 3),
    ("US", Action.WITHDRAW, {}, 2),
    ("FR", Action.ACCEPT_ALL, {}, 8),
    ("FR", Action.REJECT_ALL, {}, 7),
    ("GB", Action.ACCEPT_ALL, {}, 6),
    ("GB", Action.REJECT_ALL, {}, 4),
    (None, Action.ACCEPT_ALL, {}, 3),
    (None, Action.SAVE, {"analytics": "granted"}, 2),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or "/usr/bin/chromium",
        help="the Chromium executable (default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=DOCS, help="where to write the PNGs (default: docs/)")
    return parser


def seed_decisions(site, hmac_key: str) -> str:
    """Record `DECISIONS` on the demo site as its banner would, and return a new audit:read key."""
    number = 0
    for country, action, decisions, count in DECISIONS:
        for _ in range(count):
            number += 1
            request = ConsentRequest(
                site,
                Identifier(IdentifierKind.VISITOR, f"screenshot-{number}"),
                action,
                Source.BANNER,
                decisions,
                evidence=Evidence(country=country, gpc=action == Action.GPC),
            )
            record_consent(request, hmac_key=hmac_key, lifetimes=Lifetimes())
    token = keys.create_key("auditor", ["audit:read"]).token
    db.session.commit()
    return token


@contextmanager
def demo_server(directory: Path) -> Iterator[tuple[str, str]]:
    """The app on a fresh SQLite file with the demo site seeded; yields its base URL and an auditor's key."""
    # Settings come from these overrides and the defaults, not from any CMP_* variable of the shell.
    for name in [name for name in os.environ if name.startswith("CMP_")]:
        del os.environ[name]
    app = create_app(
        {
            "CMP_ENV": "development",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{directory / 'cmp.sqlite3'}",
            "CMP_SECRET_KEY": secrets.token_urlsafe(32),
            "CMP_HMAC_KEY": secrets.token_urlsafe(32),
            "CMP_LOG_LEVEL": "WARNING",
        }
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server: BaseWSGIServer = make_server(HOST, 0, app, threaded=True)
    base_url = f"http://{HOST}:{server.server_port}"
    with app.app_context():
        upgrade()
        site = seed_demo(base_url)
        db.session.commit()
        audit_key = seed_decisions(site, app.config["CMP_HMAC_KEY"])
        db.session.remove()
    thread = threading.Thread(target=server.serve_forever, name="cmp-demo-server", daemon=True)
    thread.start()
    try:
        yield base_url, audit_key
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


def take(base_url: str, chromium: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    first, second = out / "banner-first-layer.png", out / "banner-second-layer.png"
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="en-GB")
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base_url}/demo", wait_until="networkidle")
            page.locator(".cmp-banner").wait_for(state="visible")
            # The banner takes focus on opening; its outline is suppressed, but a caret or hover would show.
            page.mouse.move(0, 0)
            page.screenshot(path=first)

            page.get_by_role("button", name="Customise").click()
            modal = page.locator(".cmp-modal")
            modal.wait_for(state="visible")
            analytics = modal.locator(".cmp-purpose").filter(has=page.locator("#cmp-p-analytics"))
            summary = analytics.locator("details > summary")
            summary.click()
            analytics.locator("details table").wait_for(state="visible")
            # Bring the whole Analytics block, heading to cookie table, into the modal's view.
            analytics.evaluate("el => el.scrollIntoView({block: 'nearest'})")
            page.mouse.move(0, 0)
            page.screenshot(path=second)
        finally:
            browser.close()
    return [first, second]


def take_dashboard(base_url: str, audit_key: str, chromium: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    picture = out / "audit-dashboard.png"
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page(viewport=VIEWPORT, locale="en-GB")
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{base_url}/audit")
            page.get_by_label("API key").fill(audit_key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base_url}/audit")
            page.wait_for_function("() => [...document.images].every(image => image.complete)")
            page.locator("#countries").screenshot(path=picture)
        finally:
            browser.close()
    return [picture]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"screenshots: error: no Chromium at {args.chromium} (use --chromium PATH)", file=sys.stderr)
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("screenshots: error: Playwright is not installed: pip install -e '.[test]'", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="cmp-screenshots-") as directory, demo_server(Path(directory)) as demo:
        base, audit_key = demo
        for path in take(base, args.chromium, args.out) + take_dashboard(base, audit_key, args.chromium, args.out):
            print(path.relative_to(PROJECT) if path.is_relative_to(PROJECT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
