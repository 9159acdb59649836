"""Country and mode through HTTP: GeoIP, trusted proxies, CDN country header, GPC and site overrides."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cmp import ConfigError
from cmp.extensions import db
from cmp.models import ConsentState
from cmp.services import notices, sites
from tests.conftest import make_app, running_app
from tests.geoip import SHARED_DATABASES, write_geoip_database
from tests.helpers import ORIGIN, events, post_consent

PROXY = "10.0.0.1"
GERMANY, USA, JAPAN, NOWHERE = "192.0.2.10", "198.51.100.20", "203.0.113.30", "8.8.8.8"


@pytest.fixture(scope="session")
def geoip_databases(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("geoip-http")
    kinds = ("GeoLite2-Country", "GeoLite2-City")
    return {kind: str(write_geoip_database(folder / f"{kind}.mmdb", kind)) for kind in kinds}


@pytest.fixture
def database_type() -> str:
    return "GeoLite2-Country"


@pytest.fixture
def trusted_proxies() -> str:
    return "10.0.0.0/8, 2001:db8:ffff::/48"


@pytest.fixture
def geo_settings(geoip_databases, database_type, trusted_proxies) -> dict:
    return {
        "CMP_GEOIP_DATABASE": geoip_databases[database_type],
        "CMP_TRUSTED_PROXIES": trusted_proxies,
        "CMP_COUNTRY_HEADER": "CF-IPCountry",
    }


@pytest.fixture
def geo_app(database_url, geo_settings):
    with running_app(database_url, **geo_settings) as app:
        yield app


@pytest.fixture
def geo_client(geo_app):
    return geo_app.test_client()


@pytest.fixture
def shop(geo_app):
    site = sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
    notices.publish_notice(site)
    return site


def banner_config(client, address, **headers):
    return client.get("/api/v1/sites/shop/banner-config", environ_base={"REMOTE_ADDR": address}, headers=headers)


def consent_from(client, address, headers=None, **body):
    client.environ_base["REMOTE_ADDR"] = address
    return post_consent(client, headers=headers, **body)


def located(response) -> tuple[str | None, str]:
    assert response.status_code in (200, 201), response.json
    return response.json["country"], response.json["mode"]


def state_actions(subject_id: str) -> dict[str, tuple[str, str]]:
    rows = db.session.scalars(sa.select(ConsentState).where(ConsentState.subject_id == subject_id))
    return {row.purpose: (row.decision, row.action) for row in rows}


@pytest.mark.parametrize("database_type", ["GeoLite2-Country", "GeoLite2-City"])
@pytest.mark.parametrize(
    ("address", "country", "mode"),
    [
        (GERMANY, "DE", "opt_in"),
        (USA, "US", "opt_out"),
        (JAPAN, "JP", "opt_in"),
        ("127.0.0.1", "FR", "opt_in"),
        ("2001:db8::1", "NL", "opt_in"),
        (NOWHERE, None, "opt_in"),
    ],
)
def test_banner_config_answers_country_and_mode(geo_client, shop, address, country, mode):
    response = banner_config(geo_client, address)
    assert located(response) == (country, mode)
    assert response.headers["Cache-Control"].startswith("private")


def test_consent_records_country_mode_and_ipv4_prefix(geo_client, shop):
    response = consent_from(geo_client, "198.51.100.77", action="reject_all")
    assert located(response) == ("US", "opt_out")
    [event] = events()
    assert (event.country, event.mode, event.ip_prefix) == ("US", "opt_out", "198.51.100.0")
    stored = [str(getattr(event, column.key)) for column in sa.inspect(event).mapper.column_attrs]
    assert not any("198.51.100.77" in value for value in stored)


def test_consent_records_ipv6_prefix(geo_client, shop):
    response = consent_from(geo_client, "2001:db8:1234:5678::9", action="reject_all")
    assert located(response) == ("NL", "opt_in")
    [event] = events()
    assert event.ip_prefix == "2001:db8:1234::"


def test_forwarded_for_ignored_from_untrusted_peer(geo_client, shop):
    assert located(banner_config(geo_client, GERMANY, **{"X-Forwarded-For": USA})) == ("DE", "opt_in")
    consent_from(geo_client, GERMANY, headers={"X-Forwarded-For": USA}, action="reject_all")
    [event] = events()
    assert (event.country, event.mode, event.ip_prefix) == ("DE", "opt_in", "192.0.2.0")


def test_forwarded_for_believed_from_trusted_proxy(geo_client, shop):
    assert located(banner_config(geo_client, PROXY, **{"X-Forwarded-For": USA})) == ("US", "opt_out")
    consent_from(geo_client, PROXY, headers={"X-Forwarded-For": USA}, action="reject_all")
    [event] = events()
    assert (event.country, event.mode, event.ip_prefix) == ("US", "opt_out", "198.51.100.0")


def test_every_listed_proxy_is_trusted(geo_client, shop):
    assert located(banner_config(geo_client, "2001:db8:ffff::1", **{"X-Forwarded-For": USA})) == ("US", "opt_out")
    assert located(banner_config(geo_client, "2001:db8:fffe::1", **{"X-Forwarded-For": USA})) == ("NL", "opt_in")


def test_spoofed_left_most_forwarded_for_not_believed(geo_client, shop):
    chain = f"{USA}, {JAPAN}, 10.9.9.9"
    assert located(banner_config(geo_client, PROXY, **{"X-Forwarded-For": chain})) == ("JP", "opt_in")


@pytest.mark.parametrize("trusted_proxies", [""])
def test_forwarded_for_ignored_without_trusted_proxies(geo_client, shop):
    assert located(banner_config(geo_client, PROXY, **{"X-Forwarded-For": USA})) == (None, "opt_in")
    assert located(banner_config(geo_client, GERMANY, **{"X-Forwarded-For": USA})) == ("DE", "opt_in")


def test_country_header_honoured_from_trusted_proxy(geo_client, shop):
    headers = {"X-Forwarded-For": GERMANY, "CF-IPCountry": "US"}
    assert located(banner_config(geo_client, PROXY, **headers)) == ("US", "opt_out")
    consent_from(geo_client, PROXY, headers=headers, action="reject_all")
    [event] = events()
    assert (event.country, event.mode, event.ip_prefix) == ("US", "opt_out", "192.0.2.0")


@pytest.mark.parametrize(("address", "country"), [(GERMANY, "DE"), (NOWHERE, None)])
def test_country_header_ignored_from_untrusted_peer(geo_client, shop, address, country):
    assert located(banner_config(geo_client, address, **{"CF-IPCountry": "US"})) == (country, "opt_in")


@pytest.mark.parametrize("marker", ["XX", "T1"])
def test_country_header_unknown_marker_is_opt_in(geo_client, shop, marker):
    headers = {"X-Forwarded-For": USA, "CF-IPCountry": marker}
    assert located(banner_config(geo_client, PROXY, **headers)) == (None, "opt_in")
    consent_from(geo_client, PROXY, headers=headers, action="reject_all")
    [event] = events()
    assert (event.country, event.mode) == (None, "opt_in")


@pytest.fixture
def sharing_shop(shop):
    sites.add_purpose(shop, "partner_sharing", texts={"en": {"name": "Partners"}}, default_opt_out="granted", gpc=True)
    notice = notices.publish_notice(shop)
    assert notice.version == 2
    return shop


def test_gpc_denies_sharing_in_opt_out_mode(geo_client, sharing_shop):
    gpc = {"Sec-GPC": "1"}
    config = banner_config(geo_client, USA, **gpc)
    assert located(config) == ("US", "opt_out") and config.json["gpc"] is True
    response = consent_from(geo_client, USA, headers=gpc, action="accept_all", notice_version=2)
    assert response.status_code == 201
    assert response.json["decisions"]["partner_sharing"] == "denied"
    assert response.json["decisions"]["analytics"] == "granted"
    [event] = events()
    assert event.gpc is True and event.mode == "opt_out" and event.decisions["partner_sharing"] == "denied"
    actions = state_actions(event.subject_id)
    assert actions["partner_sharing"] == ("denied", "gpc")
    assert actions["analytics"] == ("granted", "accept_all")


def test_gpc_does_not_deny_in_opt_in_mode(geo_client, sharing_shop):
    response = consent_from(geo_client, GERMANY, headers={"Sec-GPC": "1"}, action="accept_all", notice_version=2)
    assert response.status_code == 201
    [event] = events()
    assert event.gpc is True and event.mode == "opt_in"
    assert state_actions(event.subject_id)["partner_sharing"] == ("granted", "accept_all")


def test_accept_all_grants_sharing_without_gpc(geo_client, sharing_shop):
    response = consent_from(geo_client, USA, action="accept_all", notice_version=2)
    assert response.json["decisions"]["partner_sharing"] == "granted"
    [event] = events()
    assert event.gpc is False
    assert state_actions(event.subject_id)["partner_sharing"] == ("granted", "accept_all")


def test_site_override_changes_the_mode(geo_client, shop):
    sites.update_site(shop, jurisdiction={"US": "opt_in"})
    assert located(banner_config(geo_client, USA)) == ("US", "opt_in")
    consent_from(geo_client, USA, action="reject_all")
    [event] = events()
    assert (event.country, event.mode) == ("US", "opt_in")


def test_site_star_override_leaves_listed_and_unknown_countries(geo_client, shop):
    sites.update_site(shop, jurisdiction={"*": "notice_only"})
    assert located(banner_config(geo_client, JAPAN)) == ("JP", "notice_only")
    assert located(banner_config(geo_client, GERMANY)) == ("DE", "opt_in")
    assert located(banner_config(geo_client, USA)) == ("US", "opt_out")
    assert located(banner_config(geo_client, NOWHERE)) == (None, "opt_in")


@pytest.mark.parametrize("geo_settings", [{}])
@pytest.mark.parametrize(
    ("address", "prefix"),
    [(GERMANY, "192.0.2.0"), (USA, "198.51.100.0"), ("127.0.0.1", "127.0.0.0"), ("2001:db8::1", "2001:db8::")],
)
def test_without_database_every_request_is_opt_in(geo_client, shop, address, prefix):
    assert located(banner_config(geo_client, address)) == (None, "opt_in")
    consent_from(geo_client, address, action="reject_all")
    [event] = events()
    assert (event.country, event.mode, event.ip_prefix) == (None, "opt_in", prefix)


def test_missing_database_stops_the_app(database_url, tmp_path):
    with pytest.raises(ConfigError, match="CMP_GEOIP_DATABASE"):
        make_app(database_url, CMP_GEOIP_DATABASE=str(tmp_path / "missing.mmdb"))


class TestMaxMindTestDatabases:
    @pytest.fixture(params=SHARED_DATABASES)
    def geo_settings(self, request, shared_geoip) -> dict:
        return {"CMP_GEOIP_DATABASE": str(shared_geoip / request.param)}

    @pytest.mark.parametrize(
        ("address", "country", "mode"),
        [("89.160.20.112", "SE", "opt_in"), ("216.160.83.56", "US", "opt_out"), (NOWHERE, None, "opt_in")],
    )
    def test_banner_config_and_consent(self, geo_client, shop, address, country, mode):
        assert located(banner_config(geo_client, address)) == (country, mode)
        consent_from(geo_client, address, action="reject_all")
        [event] = events()
        assert (event.country, event.mode) == (country, mode)
