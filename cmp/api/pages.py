"""Small HTML pages for people who follow a link from an email: in their language, no script, a strict CSP."""

from __future__ import annotations

import base64
import hashlib

from flask import make_response, render_template

from cmp.catalog import BUILTIN_LOCALES, EMAIL_TEXTS
from cmp.services.notices import best_locale

# A transparent 1x1 GIF, the same bytes whatever is asked, so the answer reveals nothing.
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

PAGE_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}"
    "h1{font-size:1.5rem}"
    "button{font:inherit;padding:.6rem 1.4rem;border:0;border-radius:4px;background:#1a56db;color:#fff;cursor:pointer}"
    "button:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}"
)
# The one inline style is allowed by its hash; nothing else loads, and no other site may frame the button.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{base64.b64encode(hashlib.sha256(PAGE_CSS.encode()).digest()).decode()}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # The URL holds a token: no Referer carries it away (and, as for every response, no cache keeps the page).
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

# Error codes that have a page of their own; any other error gets the generic one.
ERROR_MESSAGES = {
    "invalid_link": "invalid_link",
    "link_expired": "link_expired",
    "link_superseded": "link_superseded",
    "unknown_site": "not_found",
    "unknown_subject": "not_found",
    "not_found": "not_found",
}


def page_locale(requested: str | None, accepted: list[str] = ()) -> str:
    """The built-in locale closest to the person's (from their link, else their browser)."""
    return best_locale(requested, list(accepted), list(BUILTIN_LOCALES), "en")


def render_page(template: str, locale: str, status: int = 200, **context):
    texts = EMAIL_TEXTS[locale]
    response = make_response(render_template(template, lang=locale, texts=texts, css=PAGE_CSS, **context), status)
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(status: int, code: str, locale: str | None):
    message = ERROR_MESSAGES.get(code, "error")
    return render_page("email_message.html", locale or "en", status, message=message, code=code)
