"""Serves the banner and the demo page that embeds it."""

from flask import Blueprint, render_template_string, url_for

from cmp.errors import NotFound
from cmp.services.demo import DEMO_SITE
from cmp.services.sites import get_site

bp = Blueprint("banner", __name__)

DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{{ site.name }} — cmp demo</title>
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
    code { background: #f2f2f2; padding: .1rem .3rem; border-radius: 3px; }
  </style>
</head>
<body>
  <h1>{{ site.name }}</h1>
  <p>This page will embed the cookie banner of site <code>{{ site.key }}</code>.
     Until the banner ships, the consent API it calls is live:</p>
  <ul>
    <li><a href="{{ config_url }}">Banner configuration</a> (texts, purposes, cookie inventory, notice version, mode)</li>
    <li><code>POST {{ consents_url }}</code> records a decision set</li>
    <li><a href="{{ url_for('health.readyz') }}">Readiness</a></li>
  </ul>
</body>
</html>
"""


@bp.get("/demo")
def demo():
    site = get_site(DEMO_SITE)
    if site is None:
        raise NotFound("unknown_site", "the demo site is not seeded: run `cmp demo`")
    return render_template_string(
        DEMO_PAGE,
        site=site,
        config_url=url_for("sites.banner_config", site_key=site.key),
        consents_url=url_for("sites.record", site_key=site.key),
    )
