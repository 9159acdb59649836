"""Consent Mode's default comes before any Google command, with the embed docs/banner.md documents.

Google's consent mode guide: the default consent state is set before a user grants consent, ahead of the tag's own
commands; the tags read the dataLayer in order. The pages here are the documented embed followed by the usual Google
tag snippet or Google Tag Manager's container snippet. There is no network, so the loaders they request (gtag.js,
gtm.js) are answered with an empty script: what is checked is the order of the dataLayer those loaders would read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser.pages import wait_ready

DOCS = Path(__file__).resolve().parents[2] / "docs" / "banner.md"
GOOGLE = "https://www.googletagmanager.com/**"

GOOGLE_TAG = """<script async src="https://www.googletagmanager.com/gtag/js?id=G-XXXX"></script>
  <script>
    window.dataLayer = window.dataLayer || [];
    function gtag(){dataLayer.push(arguments);}
    gtag('js', new Date());
    gtag('config', 'G-XXXX');
  </script>"""

TAG_MANAGER = """<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':
  new Date().getTime(),event:'gtm.js'});var f=d.getElementsByTagName(s)[0],
  j=d.createElement(s),dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src=
  'https://www.googletagmanager.com/gtm.js?id='+i+dl;f.parentNode.insertBefore(j,f);
  })(window,document,'script','dataLayer','GTM-XXXX');</script>"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Storage pools | Shop support</title>
  {head}
</head>
<body><main><h1>Storage pools</h1></main></body>
</html>
"""

SNIPPETS = {"plain page": "", "Google tag": GOOGLE_TAG, "Google Tag Manager": TAG_MANAGER}


def documented_embed() -> str:
    """The banner's script tag from the embed section of docs/banner.md, for the shop."""
    block = re.search(r"```html\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S).group(1)
    (tag,) = [line.strip() for line in block.splitlines() if "/banner/v1/cmp.js" in line]
    return tag


def open_page(page, pages, service, head: str):
    """Open a page with this <head> on the article's origin, Google's loaders answered as empty scripts."""
    loaded = []

    def google(route):
        loaded.append(route.request.url)
        route.fulfill(status=200, content_type="text/javascript", body="")

    page.route(GOOGLE, google)
    page.goto(pages.serve("/consent-mode", PAGE.format(head=head)))
    wait_ready(page)
    return loaded


def data_layer(page) -> list:
    """`window.dataLayer`: gtag's `arguments` as lists, Tag Manager's event objects as they are."""
    return page.evaluate(
        """() => window.dataLayer.map(entry =>
            Object.prototype.toString.call(entry) == '[object Arguments]' ? Array.from(entry) : entry)"""
    )


def command(entry) -> str:
    """What a dataLayer entry asks for: a gtag command (`consent` with its kind) or a Tag Manager event."""
    if isinstance(entry, dict):
        return entry["event"]
    return " ".join(entry[:2]) if entry[0] == "consent" else entry[0]


def embed(service) -> str:
    return documented_embed().replace("https://CMP-HOST", service.base).replace('"SITE"', '"shop"')


def test_the_documented_embed_is_synchronous_and_comes_before_the_google_snippets():
    # `async` (or `defer`) would let the Google snippet that follows run first: the order the issue reproduced.
    tag = documented_embed()
    assert tag.startswith("<script ") and tag.endswith("></script>")
    assert not re.search(r"\s(async|defer)[\s>=]", tag), tag
    text = DOCS.read_text(encoding="utf-8")
    assert "without `async` or `defer`" in text
    assert re.search(r"before the Google tag .*Google Tag Manager", text, re.S)


@pytest.mark.parametrize("snippet", sorted(SNIPPETS))
def test_the_consent_default_is_the_first_entry_in_the_data_layer(page, pages, service, snippet):
    loaded = open_page(page, pages, service, f"{embed(service)}\n  {SNIPPETS[snippet]}")

    layer = data_layer(page)
    assert layer[0][:2] == ["consent", "default"]
    assert layer[0][2]["ad_storage"] == layer[0][2]["analytics_storage"] == "denied"
    expected = {
        "plain page": ["consent default"],
        "Google tag": ["consent default", "js", "config"],
        "Google Tag Manager": ["consent default", "gtm.js"],
    }
    assert [command(entry) for entry in layer] == expected[snippet]
    # The Google loader was requested (and answered empty): the page is what the snippet makes of it.
    assert len(loaded) == (0 if snippet == "plain page" else 1)
    assert page.locator(".cmp-banner").is_visible()


def test_with_async_the_google_tag_runs_before_the_default(page, pages, service):
    """Why the docs say no `async`: the inline Google tag runs while the banner's script is still loading."""
    open_page(page, pages, service, f"{embed(service).replace('></script>', ' async></script>', 1)}\n  {GOOGLE_TAG}")

    assert [command(entry) for entry in data_layer(page)] == ["js", "config", "consent default"]
