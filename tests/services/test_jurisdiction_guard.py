"""Guard rails on jurisdictions: weakening prior consent takes a recorded acknowledgement; ages of digital consent.

Checked the way an auditor would: by the mode a visitor from the country is put on, the acknowledgement rows left
behind, and what a refused change leaves unchanged.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from cmp.extensions import db
from cmp.models import ImmutableRecordError, JurisdictionAcknowledgement, Site
from cmp.services import notices, sites
from cmp.services.jurisdiction import PRIOR_CONSENT
from cmp.services.sites import Acknowledgement, SiteError
from tests.conftest import running_app
from tests.helpers import ORIGIN
from tests.test_migrations import migrations_app

PROXY = "10.0.0.1"
OPINION = Acknowledgement("Legal opinion LO-2026-14: strictly necessary analytics exemption", "cli")


@pytest.fixture
def app(database_url):
    """The service behind a trusted CDN that names each visitor's country."""
    with running_app(database_url, CMP_TRUSTED_PROXIES="10.0.0.0/8", CMP_COUNTRY_HEADER="CF-IPCountry") as app:
        yield app


@pytest.fixture
def shop(app) -> Site:
    site = sites.create_site("shop", "Shop", origins=[ORIGIN])
    notices.publish_notice(site)
    db.session.commit()
    return site


def mode_in(client, country: str) -> str:
    """The mode the banner is configured with for a visitor from `country`."""
    response = client.get(
        "/api/v1/sites/shop/banner-config", environ_base={"REMOTE_ADDR": PROXY}, headers={"CF-IPCountry": country}
    )
    assert response.status_code == 200, response.json
    assert response.json["country"] == country
    return response.json["mode"]


def acknowledgements() -> list[JurisdictionAcknowledgement]:
    query = sa.select(JurisdictionAcknowledgement).order_by(JurisdictionAcknowledgement.id)
    return list(db.session.scalars(query))


@pytest.mark.parametrize("mode", ["opt_out", "notice_only"])
def test_weakening_an_eu_country_without_acknowledgement_is_refused_and_changes_nothing(client, shop, mode):
    with pytest.raises(SiteError) as refused:
        sites.update_site(shop, name="Renamed", jurisdiction={"US": "opt_in", "de": mode, "FR": mode})
    db.session.rollback()

    assert f"DE, FR on {mode}" in str(refused.value)
    assert "prior consent" in str(refused.value) and "--acknowledge-weaker" in str(refused.value)
    assert (shop.name, shop.jurisdiction_overrides) == ("Shop", {})
    assert acknowledgements() == []
    assert mode_in(client, "DE") == "opt_in"


@pytest.mark.parametrize("country", sorted(PRIOR_CONSENT))
def test_every_prior_consent_country_is_guarded(app, country):
    with pytest.raises(SiteError, match=f"{country} on opt_out"):
        sites.create_site("shop", "Shop", jurisdiction={country: "opt_out"})
    db.session.rollback()
    assert sites.get_site("shop") is None


def test_an_acknowledged_weakening_applies_and_is_recorded(client, shop):
    overrides = {"DE": "opt_out", "AT": "opt_out", "FR": "notice_only"}
    sites.update_site(shop, jurisdiction=overrides, acknowledge_weaker=OPINION)
    db.session.commit()

    assert {country: mode_in(client, country) for country in overrides} == overrides
    assert mode_in(client, "IT") == "opt_in"
    recorded = [(a.site_id, a.countries, a.mode, a.reason, a.recorded_by) for a in acknowledgements()]
    assert sorted(recorded) == [
        (shop.id, ["AT", "DE"], "opt_out", OPINION.reason, "cli"),
        (shop.id, ["FR"], "notice_only", OPINION.reason, "cli"),
    ]
    assert all(a.created_at is not None for a in acknowledgements())


def test_a_site_created_with_a_weaker_mode_records_its_acknowledgement(client, app):
    site = sites.create_site(
        "shop", "Shop", origins=[ORIGIN], jurisdiction={"GB": "opt_out"}, acknowledge_weaker=OPINION
    )
    notices.publish_notice(site)
    db.session.commit()

    assert mode_in(client, "GB") == "opt_out"
    [acknowledgement] = acknowledgements()
    assert (acknowledgement.site_id, acknowledgement.countries, acknowledgement.mode) == (site.id, ["GB"], "opt_out")


def test_strengthening_and_other_countries_need_no_acknowledgement(client, shop):
    sites.update_site(shop, jurisdiction={"US": "opt_in", "JP": "notice_only", "DE": "opt_in", "*": "opt_out"})
    db.session.commit()

    assert [mode_in(client, country) for country in ("US", "JP", "DE")] == ["opt_in", "notice_only", "opt_in"]
    assert acknowledgements() == []


def test_a_wildcard_cannot_reach_a_prior_consent_country_so_needs_no_acknowledgement(client, shop):
    """`*` applies only to countries the default map does not name, and the map names every prior-consent one."""
    sites.update_site(shop, jurisdiction={"*": "notice_only"})
    db.session.commit()

    assert mode_in(client, "ZA") == "notice_only"
    assert {mode_in(client, country) for country in sorted(PRIOR_CONSENT)} == {"opt_in"}
    assert acknowledgements() == []


@pytest.mark.parametrize(
    ("overrides", "reason", "message"),
    [
        ({"US": "opt_in"}, "Legal opinion", "nothing to acknowledge"),
        ({}, "Legal opinion", "nothing to acknowledge"),
        ({"DE": "opt_out"}, "   ", "the reason for a weaker mode is 1 to 1000 printable characters"),
        ({"DE": "opt_out"}, "line one\nline two", "the reason for a weaker mode is 1 to 1000 printable characters"),
        ({"DE": "opt_out"}, "x" * 1001, "the reason for a weaker mode is 1 to 1000 printable characters"),
    ],
    ids=["nothing-weakened", "no-override", "blank-reason", "two-lines", "too-long"],
)
def test_an_acknowledgement_that_cannot_stand_is_refused_and_changes_nothing(client, shop, overrides, reason, message):
    with pytest.raises(SiteError, match=message):
        sites.update_site(shop, jurisdiction=overrides, acknowledge_weaker=Acknowledgement(reason, "cli"))
    db.session.rollback()

    assert shop.jurisdiction_overrides == {}
    assert acknowledgements() == []
    assert mode_in(client, "DE") == "opt_in"


def test_acknowledgements_are_append_only(shop):
    sites.update_site(shop, jurisdiction={"DE": "opt_out"}, acknowledge_weaker=OPINION)
    db.session.commit()
    [acknowledgement] = acknowledgements()

    acknowledgement.reason = "a better-sounding reason"
    with pytest.raises(ImmutableRecordError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(acknowledgement)
    with pytest.raises(ImmutableRecordError):
        db.session.flush()
    db.session.rollback()
    with pytest.raises(ImmutableRecordError):
        db.session.execute(sa.delete(JurisdictionAcknowledgement))
    db.session.rollback()

    assert [(a.reason, a.countries) for a in acknowledgements()] == [(OPINION.reason, ["DE"])]


def test_weakened_countries_pair_each_override_in_force_with_its_latest_acknowledgement(shop):
    sites.update_site(shop, jurisdiction={"DE": "opt_out", "FR": "opt_out"}, acknowledge_weaker=OPINION)
    later = Acknowledgement("Regulator's guidance of 2026-11-02 for first-party audience measurement", "cli")
    sites.update_site(shop, jurisdiction={"FR": "notice_only", "AT": "notice_only"}, acknowledge_weaker=later)
    sites.update_site(shop, jurisdiction={"US": "notice_only"})
    db.session.commit()

    weakened = [(w.country, w.mode, w.acknowledgement.reason) for w in sites.weakened_countries(shop)]
    assert weakened == [
        ("AT", "notice_only", later.reason),
        ("DE", "opt_out", OPINION.reason),
        ("FR", "notice_only", later.reason),
    ]


def test_setting_a_country_back_to_opt_in_ends_its_weakening(shop):
    sites.update_site(shop, jurisdiction={"DE": "opt_out"}, acknowledge_weaker=OPINION)
    sites.update_site(shop, jurisdiction={"DE": "opt_in"})
    db.session.commit()

    assert sites.weakened_countries(shop) == []
    assert len(acknowledgements()) == 1  # the record of what was once relied on stays


def test_an_override_stored_before_the_guard_keeps_applying_and_shows_as_not_acknowledged(client, shop):
    # What a site created before acknowledgements were recorded holds: no service call could store it now.
    shop.jurisdiction_overrides = {"DE": "opt_out"}
    db.session.commit()

    assert mode_in(client, "DE") == "opt_out"
    [weakened] = sites.weakened_countries(shop)
    assert (weakened.country, weakened.mode, weakened.acknowledgement) == ("DE", "opt_out", None)

    sites.update_site(shop, jurisdiction={"DE": "opt_out"}, acknowledge_weaker=OPINION)
    db.session.commit()
    [weakened] = sites.weakened_countries(shop)
    assert weakened.acknowledgement.reason == OPINION.reason


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'guard.sqlite3'}"
    return request.getfixturevalue("postgres_databases").create()


def test_revision_0015_keeps_overrides_stored_before_it(empty_database):
    with migrations_app(empty_database):
        upgrade(revision="0014")
        db.session.execute(
            sa.text(
                "INSERT INTO sites (key, name, allowed_origins, locales, default_locale, jurisdiction_overrides, texts,"
                " created_at) VALUES ('old', 'Old', '[]', '[\"en\"]', 'en', '{\"DE\": \"notice_only\"}', '{}',"
                " CURRENT_TIMESTAMP)"
            )
        )
        db.session.commit()
        upgrade()

        site = sites.get_site("old")
        assert site.jurisdiction_overrides == {"DE": "notice_only"}
        assert [(w.country, w.mode, w.acknowledgement) for w in sites.weakened_countries(site)] == [
            ("DE", "notice_only", None)
        ]


# The age of digital consent (GDPR Art. 8(1)): 16 unless a member state sets 13, 14 or 15.


def test_child_ages_are_set_and_merged(shop):
    sites.update_site(shop, child_ages={"de": 16, "FR": "15", "*": 13})
    sites.update_site(shop, child_ages={"FR": 15, "AT": 14})
    db.session.commit()
    db.session.expire_all()

    assert shop.child_ages == {"DE": 16, "FR": 15, "*": 13, "AT": 14}


def test_a_site_is_created_with_child_ages(app):
    site = sites.create_site("shop", "Shop", child_ages={"ES": 14})
    db.session.commit()
    db.session.expire_all()
    assert site.child_ages == {"ES": 14}


@pytest.mark.parametrize(
    ("ages", "message"),
    [
        ({"DE": 12}, "12 is not an age of digital consent: a whole number from 13 to 16"),
        ({"DE": 17}, "17 is not an age of digital consent"),
        ({"DE": "fifteen"}, "'fifteen' is not an age of digital consent"),
        ({"DE": "15.5"}, "'15.5' is not an age of digital consent"),
        ({"DE": 15.0}, "15.0 is not an age of digital consent"),
        ({"DE": True}, "True is not an age of digital consent"),
        ({"DEU": 15}, "'DEU' is not an ISO 3166 country code"),
        ({"": 15}, "'' is not an ISO 3166 country code"),
    ],
    ids=["below-13", "above-16", "words", "fraction-text", "float", "bool", "alpha-3", "empty-country"],
)
def test_an_invalid_child_age_is_refused_and_changes_nothing(shop, ages, message):
    sites.update_site(shop, child_ages={"FR": 15})
    db.session.commit()

    with pytest.raises(SiteError, match=message):
        sites.update_site(shop, name="Renamed", child_ages=ages)
    db.session.rollback()

    assert (shop.name, shop.child_ages) == ("Shop", {"FR": 15})
