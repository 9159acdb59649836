"""Headers every response carries unless its view chose otherwise: no caching, no sniffing, a strict CSP on HTML.

Views that may be cached (the banner script, banner-config, the GPC declaration) and pages with needs of their
own (the email pages allow their one inline style by hash; the demo site runs the banner) set their own values;
these defaults only fill in what a view left out, so nothing personal is cached by accident.
"""

from __future__ import annotations

from flask import Flask, Response

# Pages cmp renders need nothing from anywhere else: no scripts at all, styles and images from cmp only.
STRICT_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def secure_defaults(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", STRICT_CSP)
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
    return response


def init_headers(app: Flask) -> None:
    app.after_request(secure_defaults)
