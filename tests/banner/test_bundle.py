"""GET /banner/v1/cmp.js: the banner bundle as served, its caching, its size budget; and the demo site."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess

import pytest
import rcssmin
import rjsmin

from cmp.banner import EMBED_CACHE, PINNED_CACHE, bundle
from cmp.extensions import db
from cmp.services import notices
from cmp.services.demo import seed_demo

BUDGET = 8192  # bytes gzipped: what a page downloads for the banner, script and stylesheet


@pytest.fixture(scope="module")
def built() -> bundle.Bundle:
    return bundle.current()


def _get(client, path: str = "/banner/v1/cmp.js", gzipped: bool = True, **headers):
    if gzipped:
        headers["Accept-Encoding"] = "gzip, deflate, br"
    return client.get(path, headers=headers)


def test_gzip_is_served_to_clients_that_accept_it(client, built):
    response = _get(client)
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.data == built.gzipped
    assert gzip.decompress(response.data) == built.script


def test_plain_script_without_accept_encoding(client, built):
    response = _get(client, gzipped=False)
    assert response.status_code == 200
    assert "Content-Encoding" not in response.headers
    assert response.data == built.script


def test_a_client_that_refuses_gzip_gets_plain_script(client, built):
    response = client.get("/banner/v1/cmp.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in response.headers
    assert response.data == built.script


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_headers(client, built, gzipped):
    response = _get(client, gzipped=gzipped)
    assert response.mimetype == "text/javascript"
    assert "Accept-Encoding" in response.vary
    assert response.headers["Cache-Control"] == EMBED_CACHE
    assert response.headers["Cache-Control"] == "public, max-age=86400, stale-while-revalidate=604800"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert response.headers["X-Banner-Bundle"] == hashlib.sha256(built.script).hexdigest() == built.digest
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_gzip_and_plain_responses_have_different_etags(client, built):
    gzipped, plain = _get(client).get_etag(), _get(client, gzipped=False).get_etag()
    assert gzipped == (f"{built.short}-gz", False)
    assert plain == (built.short, False)


@pytest.mark.parametrize("gzipped", [True, False], ids=["gzip", "plain"])
def test_if_none_match_gets_304_with_empty_body(client, gzipped):
    etag = _get(client, gzipped=gzipped).headers["ETag"]
    response = _get(client, gzipped=gzipped, **{"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    assert "Accept-Encoding" in response.vary


def test_a_stale_etag_gets_the_full_script(client, built):
    response = _get(client, **{"If-None-Match": '"000000000000-gz"'})
    assert response.status_code == 200
    assert response.data == built.gzipped


def test_pinned_url_is_immutable(client, built):
    response = _get(client, f"/banner/v1/cmp.{built.short}.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == PINNED_CACHE
    assert "immutable" in response.headers["Cache-Control"]
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data) == built.script
    assert response.headers["X-Banner-Bundle"] == built.digest
    plain = _get(client, f"/banner/v1/cmp.{built.short}.js", gzipped=False)
    assert plain.data == built.script and "immutable" in plain.headers["Cache-Control"]


@pytest.mark.parametrize("digest", ["0123456789ab", "deadbeef", "full-digest"])
def test_unknown_pinned_digest_is_404(client, built, digest):
    if digest == "full-digest":
        digest = built.digest  # only the 12-character short form names the bundle
    response = _get(client, f"/banner/v1/cmp.{digest}.js")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "unknown_bundle"
    assert built.short in error["message"]
    assert error["details"] == {}


def test_bundle_is_valid_javascript(built, tmp_path, node):
    path = tmp_path / "cmp.js"
    path.write_bytes(built.script)
    done = subprocess.run([node, "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_gzipped_bundle_is_within_budget(built):
    # A size, not a time: the banner's whole download (script with its CSS) stays within 8 KiB gzipped.
    assert len(built.gzipped) <= BUDGET, f"{len(built.gzipped)} bytes gzipped, budget {BUDGET}"


def test_served_gzip_is_within_budget(client):
    assert len(_get(client).data) <= BUDGET


def test_every_module_and_the_stylesheet_go_into_the_bundle(built):
    for name in (*bundle.MODULES, bundle.STYLESHEET):
        assert (bundle.SOURCE / name).is_file(), name
    # A module added to static/banner but not to MODULES would silently be left out.
    assert sorted(path.name for path in bundle.SOURCE.glob("*.js")) == sorted(bundle.MODULES)
    script = built.script.decode("utf-8")
    css = rcssmin.cssmin((bundle.SOURCE / bundle.STYLESHEET).read_text(encoding="utf-8"))
    assert json.dumps(css) in script
    # Each module, minified on its own, appears whole, in the order MODULES gives (each uses those before it).
    positions = [
        script.find(rjsmin.jsmin((bundle.SOURCE / name).read_text(encoding="utf-8")).strip()) for name in bundle.MODULES
    ]
    assert -1 not in positions, dict(zip(bundle.MODULES, positions, strict=True))
    assert positions == sorted(positions)
    assert script.find(json.dumps(css)) < positions[0]


def test_bundle_leaks_no_names_into_the_page(built):
    script = built.script.decode("utf-8")
    assert script.startswith("(function(){'use strict';")
    assert script.rstrip().endswith("})();")


def test_build_is_deterministic(built):
    again = bundle.build()
    assert again == built
    assert len(built.short) == 12 and built.digest.startswith(built.short)


def test_published_notice_records_the_bundle_digest(app, site, built):
    notice = notices.current_notice(site)
    assert notice.content["banner"]["bundle"] == bundle.current().digest == built.digest


@pytest.fixture
def demo(app):
    seed_demo()
    db.session.commit()


def test_demo_page_embeds_the_banner_as_documented(client, demo):
    response = client.get("/demo")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    # The first script in <head>, synchronous: Consent Mode's default comes before any other tag (docs/banner.md).
    head = html[: html.index("</head>")]
    first_script = head[head.index("<script") : head.index("</script>")]
    assert first_script == '<script src="/banner/v1/cmp.js" data-site="demo">'


def test_demo_page_without_the_demo_site_is_404(client):
    response = client.get("/demo")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_site"


def test_demo_analytics_script(client, demo):
    response = client.get("/demo/analytics.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert "/demo/pv.gif?page=" in response.get_data(as_text=True)


def test_demo_pixel_is_an_uncached_gif(client, demo):
    response = client.get("/demo/pv.gif?page=storage-pool")
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data.startswith(b"GIF89a")
    assert response.headers["Cache-Control"] == "no-store"


def test_demo_video(client, demo):
    response = client.get("/demo/video")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "Video walkthrough" in response.get_data(as_text=True)


def test_gzip_refused_with_q0_gets_plain_script(client, built):
    response = client.get("/banner/v1/cmp.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in response.headers
    assert response.data == built.script
