"""Serves the banner and the demo page that embeds it."""

from flask import Blueprint, render_template, url_for

from cmp.errors import NotFound
from cmp.services import notices
from cmp.services.demo import DEMO_SITE
from cmp.services.sites import get_site

bp = Blueprint("banner", __name__)


def _demo_site():
    site = get_site(DEMO_SITE)
    if site is None:
        raise NotFound("unknown_site", "the demo site is not seeded: run `cmp demo`")
    return site


@bp.get("/demo/privacy")
def demo_privacy():
    """The demo site's cookie notice, rendered from its published notice version."""
    site = _demo_site()
    notice = notices.current_notice(site)
    if notice is None:
        raise NotFound("no_notice", "the demo site has no published notice")
    content = notices.localise(notice.content, notice.content["default_locale"])
    return render_template("demo_privacy.html", name=site.name, notice=notice, content=content)


@bp.get("/demo")
def demo():
    site = _demo_site()
    return render_template(
        "demo.html",
        site=site,
        config_url=url_for("sites.banner_config", site_key=site.key),
        consents_url=url_for("sites.record", site_key=site.key),
    )
