"""The demo site runs under its Content-Security-Policy: the banner shows, and what it unblocks runs."""

from __future__ import annotations

from cmp.extensions import db
from cmp.services.demo import seed_demo
from tests.browser.pages import wait_ready


def test_the_demo_works_under_its_content_security_policy(service, page):
    seed_demo(service.base)
    db.session.commit()
    violations = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )

    response = page.goto(f"{service.base}/demo")
    assert "script-src 'self' 'unsafe-inline'" in response.headers["content-security-policy"]
    wait_ready(page)
    page.get_by_role("button", name="Accept all").click()

    # The blocked analytics script and the video iframe were activated, and the analytics beacon was sent.
    page.wait_for_function("() => window.demoAnalytics === 1")
    page.wait_for_function("() => document.querySelector('iframe').getAttribute('src') !== null")
    # The frame's document loads after its src is set: wait for its player rather than look at once.
    player = page.frame_locator("iframe").get_by_text("Video walkthrough (demo player)")
    player.wait_for()
    assert player.count() == 1
    assert violations == []
