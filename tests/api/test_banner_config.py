"""GET /api/v1/sites/<site>/banner-config: what the banner shows, in the visitor's language."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785

from cmp.services import notices, sites
from tests.helpers import ORIGIN


def _config(client, query: str = "", **headers):
    return client.get(f"/api/v1/sites/shop/banner-config{query}", headers=headers)


def test_config_carries_texts_purposes_cookies_notice_and_mode(client, site):
    response = _config(client, "?locale=en", Origin=ORIGIN)
    assert response.status_code == 200
    body = response.json
    assert body["locale"] == "en"
    assert body["locales"] == ["en", "zh-CN", "de", "fr"]
    assert body["texts"]["accept_all"] == "Accept all"
    assert body["texts"]["reject_all"] == "Reject all"
    assert body["policy_url"] == "https://shop.example/privacy"
    # Email purposes are collected by the email lifecycle, not by the banner.
    assert [p["key"] for p in body["purposes"]] == ["necessary", "preferences", "analytics"]
    necessary, preferences, analytics = body["purposes"]
    assert necessary["refusable"] is False and analytics["refusable"] is True
    assert analytics["defaults"] == {"opt_in": "denied", "opt_out": "granted", "notice_only": "granted"}
    assert body["consent_mode"]["analytics"] == ["analytics_storage"]
    assert body["cookies"] == [
        {
            "name": "_ga",
            "provider": "Google",
            "domain": None,
            "kind": "cookie",
            "storage": "persistent",
            "lifetime_seconds": 730 * 86400,
            "purpose": "analytics",
            "description": None,
        }
    ]
    assert body["mode"] == "opt_in" and body["country"] is None and body["gpc"] is False
    assert body["lifetimes"] == {"consent_days": 365, "refusal_days": 182}
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_notice_hash_is_the_sha256_of_the_published_content(client, site):
    body = _config(client).json
    notice = notices.current_notice(site)
    assert body["notice"]["version"] == 1
    assert body["notice"]["hash"] == hashlib.sha256(rfc8785.dumps(notice.content)).hexdigest()
    assert body["notice"]["material"] is True


@pytest.mark.parametrize(
    ("query", "accept", "expected", "accept_all"),
    [
        ("?locale=de", None, "de", "Alle akzeptieren"),
        ("?locale=de-AT", None, "de", "Alle akzeptieren"),
        ("?locale=zh-cn", None, "zh-CN", "全部接受"),
        ("?locale=zh", None, "zh-CN", "全部接受"),
        ("?locale=fr-CA", None, "fr", "Tout accepter"),
        ("", "fr-FR,fr;q=0.9,en;q=0.5", "fr", "Tout accepter"),
        ("?locale=ja", "de;q=0.9", "de", "Alle akzeptieren"),
        ("?locale=ja", None, "en", "Accept all"),
    ],
)
def test_best_matching_locale(client, site, query, accept, expected, accept_all):
    headers = {"Accept-Language": accept} if accept else {}
    body = _config(client, query, **headers).json
    assert body["locale"] == expected
    assert body["texts"]["accept_all"] == accept_all
    assert body["purposes"][2]["name"] != ""


def test_purpose_texts_are_localised(client, site):
    en = {p["key"]: p["name"] for p in _config(client, "?locale=en").json["purposes"]}
    de = {p["key"]: p["name"] for p in _config(client, "?locale=de").json["purposes"]}
    assert en["analytics"] == "Analytics" and de["analytics"] == "Statistik"


def test_gpc_header_is_reported(client, site):
    assert _config(client, **{"Sec-GPC": "1"}).json["gpc"] is True


def test_changes_show_only_once_published(client, site):
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}})
    assert "partner_sharing" not in [p["key"] for p in _config(client).json["purposes"]]
    notices.publish_notice(site, material=True)
    body = _config(client).json
    assert "partner_sharing" in [p["key"] for p in body["purposes"]]
    assert body["notice"]["version"] == 2 and body["notice"]["last_material_version"] == 2


def test_disallowed_origin_gets_no_cors_header(client, site):
    response = _config(client, Origin="https://evil.example")
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_config_is_never_cached_by_shared_caches(client, site):
    response = _config(client)
    assert "private" in response.headers["Cache-Control"]


def test_unknown_site_is_404(client, site):
    response = client.get("/api/v1/sites/nowhere/banner-config")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_site"


def test_site_without_notice_is_404(client, app):
    sites.create_site("fresh", "Fresh")
    response = client.get("/api/v1/sites/fresh/banner-config")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "no_notice"
