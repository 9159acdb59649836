"""The demo site: a support page like the policy's, with analytics, a pixel and a video behind consent."""

from flask import Blueprint, Response, render_template, url_for

from cmp.api.openapi import HTML, describe
from cmp.api.pages import TRANSPARENT_GIF
from cmp.errors import Unknown
from cmp.services import notices
from cmp.services.demo import DEMO_SITE
from cmp.services.sites import get_site

bp = Blueprint("demo", __name__, url_prefix="/demo")

# The demo stands for a customer's site, which has its own policy: this one lets the page run its inline demo
# scripts and the banner inject its stylesheet, and still loads nothing from outside this host.
DEMO_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)
PAGE = (HTML, "a page")


@bp.after_request
def demo_policy(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", DEMO_CSP)
        # The demo page frames its own video page.
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response


def _demo_site():
    site = get_site(DEMO_SITE)
    if site is None:
        raise Unknown("unknown_site", "the demo site is not seeded: run `cmp demo`")
    return site


@bp.get("/privacy")
@describe("The demo site's cookie notice", tag="demo", responses={200: PAGE}, errors=(404,))
def demo_privacy():
    """The demo site's cookie notice, rendered from its published notice version."""
    site = _demo_site()
    notice = notices.current_notice(site)
    if notice is None:
        raise Unknown("no_notice", "the demo site has no published notice")
    content = notices.localise(notice.content, notice.content["default_locale"])
    return render_template("demo_privacy.html", name=site.name, notice=notice, content=content)


# The demo's page analytics: counts a visit with first-party cookies and a web beacon.
ANALYTICS = """(function () {
  var uid = (document.cookie.match(/(?:^|; )_pv_uid=([^;]*)/) || [])[1] || Math.random().toString(36).slice(2);
  document.cookie = "_pv_uid=" + uid + ";path=/;max-age=34128000;samesite=lax";
  document.cookie = "_pv_session=" + Date.now() + ";path=/;samesite=lax";
  new Image().src = "%s?page=" + encodeURIComponent(location.pathname) + "&uid=" + uid;
  window.demoAnalytics = (window.demoAnalytics || 0) + 1;
  var status = document.getElementById("analytics-status");
  if (status) status.textContent = "Page analytics: running.";
})();
"""


@bp.get("/analytics.js")
@describe(
    "The demo's analytics script (runs only once analytics is granted)",
    tag="demo",
    responses={200: ("text/javascript", "script")},
)
def analytics():
    return Response(ANALYTICS % url_for("demo.pixel"), mimetype="text/javascript")


@bp.get("/pv.gif")
@describe("The demo's page-view pixel", tag="demo", responses={200: ("image/gif", "1x1 GIF")})
def pixel():
    return Response(TRANSPARENT_GIF, mimetype="image/gif")


@bp.get("/video")
@describe("The demo's video player", tag="demo", responses={200: PAGE})
def video():
    return render_template("demo_video.html")


@bp.get("")
@describe("The demo site's support page, embedding the banner", tag="demo", responses={200: PAGE}, errors=(404,))
def demo():
    site = _demo_site()
    return render_template("demo.html", site=site)
