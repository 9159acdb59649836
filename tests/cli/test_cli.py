"""The `cmp` command line, checked the way an operator or auditor would: by what it leaves in the database.

Commands are written as an operator types them and run through Flask's CLI runner inside the test app.
The session is expired after each command, so assertions read the rows it committed, not objects it left
in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex

import pytest
import rfc8785
import sqlalchemy as sa

from cmp.errors import Unauthenticated
from cmp.extensions import db
from cmp.models import (
    ApiKey,
    ChainHead,
    ConsentEvent,
    Cookie,
    ImmutableRecordError,
    JurisdictionAcknowledgement,
    NoticeVersion,
    Purpose,
    Site,
)
from cmp.services import keys
from cmp.services.chain import GENESIS_HASH
from cmp.services.sites import get_site
from cmp.vocabulary import Scope
from tests.helpers import events, post_consent

SEEDED_PURPOSES = ["necessary", "preferences", "analytics", "marketing_email", "email_tracking"]
BUILTIN_LOCALES = ["en", "zh-CN", "de", "fr"]
TOKEN = re.compile(r"^cmp_([0-9a-f]{16})_(\S+)$")


def cmp(runner, command: str, *more: str):
    """Run `cmp COMMAND MORE...`, then forget every loaded row."""
    result = runner.invoke(args=[*shlex.split(command), *more])
    db.session.expire_all()
    return result


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def purpose_keys(site_key: str) -> list[str]:
    return [p.key for p in get_site(site_key).purposes]


def notice_versions(site_key: str) -> list[NoticeVersion]:
    query = sa.select(NoticeVersion).where(NoticeVersion.site_id == get_site(site_key).id)
    return list(db.session.scalars(query.order_by(NoticeVersion.version)))


def canonical_sha256(content: dict) -> str:
    return hashlib.sha256(rfc8785.dumps(content)).hexdigest()


def create_shop(runner, options: str = "") -> Site:
    result = cmp(runner, f"site create shop --name Shop --origin https://shop.example {options}")
    assert result.exit_code == 0, result.output
    return get_site("shop")


def create_key(runner, options: str) -> tuple[str, str, str]:
    """The printed token, its key id and its secret."""
    result = cmp(runner, f"key create {options}")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    match = TOKEN.match(token)
    assert match, token
    return token, match.group(1), match.group(2)


def record_consents(client, n: int) -> None:
    for action in ["accept_all", "reject_all", "accept_all", "reject_all"][:n]:
        response = post_consent(client, action=action)
        assert response.status_code == 201, response.json


# site create


def test_site_create_normalises_origins_and_seeds_the_policy_purposes(runner):
    result = cmp(
        runner,
        "site create shop --name Shop --origin HTTPS://Shop.Example:443/ --origin http://localhost:8080"
        " --locale en --locale zh-CN --locale de --locale fr"
        " --policy-url https://shop.example/privacy --jurisdiction US=opt_in",
    )

    assert result.exit_code == 0, result.output
    site = get_site("shop")
    assert site.name == "Shop"
    assert site.allowed_origins == ["https://shop.example", "http://localhost:8080"]
    assert site.locales == BUILTIN_LOCALES
    assert site.default_locale == "en"
    assert site.policy_url == "https://shop.example/privacy"
    assert site.jurisdiction_overrides == {"US": "opt_in"}
    assert [p.key for p in site.purposes] == SEEDED_PURPOSES
    assert [p.position for p in site.purposes] == [0, 1, 2, 3, 4]
    for purpose in site.purposes:
        assert sorted(purpose.texts) == sorted(BUILTIN_LOCALES), purpose.key
        for locale in BUILTIN_LOCALES:
            assert purpose.texts[locale]["name"] and purpose.texts[locale]["description"], (purpose.key, locale)
    necessary = site.purpose("necessary")
    assert necessary.refusable is False
    assert (necessary.default_opt_in, necessary.default_opt_out, necessary.default_notice_only) == ("granted",) * 3
    assert site.purpose("marketing_email").double_opt_in is True
    head = db.session.get(ChainHead, site.id)
    assert (head.seq, head.hash) == (0, GENESIS_HASH)
    assert count(NoticeVersion) == 0


def test_site_create_without_locales_offers_the_builtin_ones(runner):
    site = create_shop(runner)

    assert site.locales == BUILTIN_LOCALES
    assert site.default_locale == "en"
    assert site.jurisdiction_overrides == {}


def test_site_create_bare_seeds_no_purposes_but_starts_the_chain(runner):
    result = cmp(runner, "site create blank --name Blank --bare")

    assert result.exit_code == 0, result.output
    site = get_site("blank")
    assert site.purposes == []
    assert count(Purpose) == 0
    assert db.session.get(ChainHead, site.id).seq == 0


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("Shop_1 --name Shop", "'Shop_1' is not a site key"),
        ("shop --name Shop --origin https://shop.example/app", "is not an origin"),
        ("shop --name Shop --origin shop.example", "is not an origin"),
        ("shop --name Shop --jurisdiction US=strict", "'strict' is not a mode"),
        ("shop --name Shop --jurisdiction USA=opt_in", "is not an ISO 3166 country code"),
        ("shop --name Shop --jurisdiction US", "is not NAME=VALUE"),
        ("shop --name Shop --locale english!", "is not a language tag"),
        ("shop --name Shop --policy-url ftp://shop.example/privacy", "is not an http(s) URL"),
        ("shop --name Shop --jurisdiction DE=opt_out", "refused: DE on opt_out"),
        ("shop --name Shop --jurisdiction DE=opt_out --acknowledge-weaker ''", "the reason for a weaker mode is 1 to"),
        ("shop --name Shop --jurisdiction US=opt_in --acknowledge-weaker 'Opinion'", "nothing to acknowledge"),
        ("shop --name Shop --child-age DE=12", "12 is not an age of digital consent"),
        ("shop --name Shop --child-age DE=sixteen", "'sixteen' is not an age of digital consent"),
        ("shop --name Shop --child-age Germany=16", "'GERMANY' is not an ISO 3166 country code"),
    ],
    ids=[
        "key",
        "origin-with-path",
        "origin-without-scheme",
        "mode",
        "country",
        "pair",
        "locale",
        "policy-url",
        "weaker-unacknowledged",
        "weaker-without-reason",
        "nothing-to-acknowledge",
        "child-age-below-13",
        "child-age-words",
        "child-age-country",
    ],
)
def test_site_create_refuses_invalid_settings_and_creates_nothing(runner, command, message):
    result = cmp(runner, f"site create {command}")

    assert result.exit_code != 0
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert (count(Site), count(Purpose), count(ChainHead), count(JurisdictionAcknowledgement)) == (0, 0, 0, 0)


def test_site_create_refuses_a_duplicate_key_and_leaves_the_first_site_alone(runner):
    create_shop(runner)

    result = cmp(runner, "site create shop --name 'Other shop' --origin https://other.example")

    assert result.exit_code == 1
    assert "site 'shop' already exists" in result.output
    assert count(Site) == 1
    site = get_site("shop")
    assert site.name == "Shop"
    assert site.allowed_origins == ["https://shop.example"]
    assert count(Purpose) == len(SEEDED_PURPOSES)
    assert count(ChainHead) == 1


# site update


def test_site_update_replaces_origins_and_merges_jurisdiction(runner):
    create_shop(runner, "--origin https://www.shop.example --jurisdiction US=opt_in --jurisdiction JP=opt_out")

    result = cmp(
        runner,
        "site update shop --origin HTTPS://New.Shop.Example --jurisdiction JP=opt_in --jurisdiction mx=notice_only",
    )

    assert result.exit_code == 0, result.output
    site = get_site("shop")
    assert site.allowed_origins == ["https://new.shop.example"]
    assert site.jurisdiction_overrides == {"US": "opt_in", "JP": "opt_in", "MX": "notice_only"}
    assert site.name == "Shop"
    assert [p.key for p in site.purposes] == SEEDED_PURPOSES


def test_site_update_without_origins_keeps_them(runner):
    create_shop(runner)

    result = cmp(runner, "site update shop --name 'Shop GmbH' --policy-url https://shop.example/datenschutz")

    assert result.exit_code == 0, result.output
    site = get_site("shop")
    assert site.name == "Shop GmbH"
    assert site.policy_url == "https://shop.example/datenschutz"
    assert site.allowed_origins == ["https://shop.example"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("--name Renamed --origin https://shop.example/path", "is not an origin"),
        ("--name Renamed --jurisdiction US=never", "'never' is not a mode"),
        ("--name Renamed --locale de", "default locale 'en' is not one of ['de']"),
        ("--name Renamed --jurisdiction FR=notice_only --jurisdiction CN=opt_out", "refused: CN on opt_out; FR on"),
        ("--name Renamed --acknowledge-weaker 'Legal opinion'", "nothing to acknowledge"),
        ("--name Renamed --child-age FR=17", "17 is not an age of digital consent"),
    ],
    ids=["origin", "mode", "default-locale", "weaker-unacknowledged", "nothing-to-acknowledge", "child-age"],
)
def test_site_update_refused_changes_nothing(runner, command, message):
    create_shop(runner, "--jurisdiction US=opt_in --child-age FR=15")

    result = cmp(runner, f"site update shop {command}")

    assert result.exit_code == 1
    assert message in result.output
    site = get_site("shop")
    assert site.name == "Shop"
    assert site.allowed_origins == ["https://shop.example"]
    assert site.locales == BUILTIN_LOCALES
    assert site.jurisdiction_overrides == {"US": "opt_in"}
    assert site.child_ages == {"FR": 15}
    assert count(JurisdictionAcknowledgement) == 0


def test_site_update_weakens_prior_consent_only_with_an_acknowledgement_that_site_show_prints(runner):
    create_shop(runner)
    reason = "Legal opinion LO-2026-14 (Kanzlei Weber): audience measurement exemption"

    refused = cmp(runner, "site update shop --jurisdiction DE=opt_out")
    assert refused.exit_code == 1 and "--acknowledge-weaker REASON" in refused.output
    assert get_site("shop").jurisdiction_overrides == {}

    result = cmp(
        runner, "site update shop --jurisdiction DE=opt_out --jurisdiction US=opt_in", "--acknowledge-weaker", reason
    )

    assert result.exit_code == 0, result.output
    assert get_site("shop").jurisdiction_overrides == {"DE": "opt_out", "US": "opt_in"}
    [acknowledgement] = db.session.scalars(sa.select(JurisdictionAcknowledgement)).all()
    assert (acknowledgement.countries, acknowledgement.mode, acknowledgement.reason) == (["DE"], "opt_out", reason)
    assert acknowledgement.recorded_by == "cli"
    shown = cmp(runner, "site show shop").output
    acknowledged_at = acknowledgement.created_at.isoformat()
    assert f"DE opt_out weakens prior consent; acknowledged {acknowledged_at} (cli): {reason}" in shown
    info = json.loads(cmp(runner, "site show shop --json").output)
    assert info["weakened_countries"] == [
        {
            "country": "DE",
            "mode": "opt_out",
            "acknowledgement": {"reason": reason, "recorded_by": "cli", "created_at": acknowledged_at},
        }
    ]


def test_site_create_with_a_weaker_mode_records_the_acknowledgement(runner):
    create_shop(runner, "--jurisdiction kr=notice_only --acknowledge-weaker 'Notice-only legal basis, opinion 7'")

    assert get_site("shop").jurisdiction_overrides == {"KR": "notice_only"}
    [acknowledgement] = db.session.scalars(sa.select(JurisdictionAcknowledgement)).all()
    assert (acknowledgement.countries, acknowledgement.mode) == (["KR"], "notice_only")


def test_site_show_flags_an_override_stored_before_acknowledgements(runner):
    site = create_shop(runner)
    site.jurisdiction_overrides = {"FR": "notice_only"}  # as a site created before the guard holds it
    db.session.commit()

    shown = cmp(runner, "site show shop").output

    assert "FR notice_only weakens prior consent; NOT ACKNOWLEDGED: set it again with --acknowledge-weaker" in shown
    info = json.loads(cmp(runner, "site show shop --json").output)
    assert info["weakened_countries"] == [{"country": "FR", "mode": "notice_only", "acknowledgement": None}]


def test_site_child_ages_are_set_merged_and_shown(runner):
    site = create_shop(runner, "--child-age de=16 --child-age '*=13'")
    assert site.child_ages == {"DE": 16, "*": 13}

    result = cmp(runner, "site update shop --child-age FR=15 --child-age DE=14")

    assert result.exit_code == 0, result.output
    assert get_site("shop").child_ages == {"DE": 14, "FR": 15, "*": 13}
    assert "child ages: DE=14, FR=15, 13 elsewhere" in cmp(runner, "site show shop").output
    assert json.loads(cmp(runner, "site show shop --json").output)["child_ages"] == {"DE": 14, "FR": 15, "*": 13}


def test_site_show_without_child_ages_says_16_everywhere(runner):
    create_shop(runner)
    assert "child ages: 16 everywhere" in cmp(runner, "site show shop").output
    assert json.loads(cmp(runner, "site show shop --json").output)["child_ages"] == {}


CONTROLLER = (
    "--controller-name 'Shop GmbH' --controller-email privacy@shop.example --controller-country de "
    "--controller-address 'Gleimstraße 1, 10437 Berlin' --controller-phone '+49 30 1234567' "
    "--controller-dpo 'Dr. Ada Weber, dpo@shop.example'"
)


def test_site_update_sets_the_controller_that_site_show_prints(runner):
    create_shop(runner)

    result = cmp(runner, f"site update shop {CONTROLLER}")

    assert result.exit_code == 0, result.output
    assert get_site("shop").controller == {
        "name": "Shop GmbH",
        "email": "privacy@shop.example",
        "country": "DE",
        "address": "Gleimstraße 1, 10437 Berlin",
        "phone": "+49 30 1234567",
        "dpo": "Dr. Ada Weber, dpo@shop.example",
    }
    shown = cmp(runner, "site show shop")
    assert "controller: Shop GmbH" in shown.output and "privacy@shop.example" in shown.output
    assert json.loads(cmp(runner, "site show shop --json").output)["controller"]["country"] == "DE"

    # One field changed, one removed (given empty); the others stay.
    result = cmp(runner, "site update shop --controller-phone '' --controller-email dpo@shop.example")
    assert result.exit_code == 0, result.output
    controller = get_site("shop").controller
    assert "phone" not in controller and controller["email"] == "dpo@shop.example"
    assert controller["name"] == "Shop GmbH"


def test_site_show_says_when_no_controller_is_set(runner):
    create_shop(runner)
    assert "controller: (not set" in cmp(runner, "site show shop").output
    assert json.loads(cmp(runner, "site show shop --json").output)["controller"] is None


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("--controller-email privacy@shop.example", "the controller needs a name"),
        ("--controller-name 'Shop GmbH'", "the controller needs a email"),
        ("--controller-name 'Shop GmbH' --controller-email not-an-address", "is not an email address"),
        ("--controller-name Shop --controller-email a@shop.example --controller-country Germany", "ISO 3166"),
        ("--controller-name Shop --controller-email a@shop.example --controller-phone 'call us'", "phone number"),
        ("--controller-name Shop --controller-email a@shop.example --controller-phone '*'", "phone number"),
        ("--controller-name Shop --controller-email a@shop.example --controller-country '*'", "ISO 3166"),
        ("--name Renamed --controller-name Shop --controller-email a@shop.example --controller-dpo 'A\nB'", "line"),
    ],
    ids=["no-name", "no-email", "bad-email", "bad-country", "bad-phone", "star-phone", "star-country", "newline"],
)
def test_an_invalid_controller_is_refused_and_changes_nothing(runner, command, message):
    create_shop(runner)

    result = cmp(runner, f"site update shop {command}")

    assert result.exit_code == 1
    assert message in result.output
    site = get_site("shop")
    assert site.controller is None and site.name == "Shop"


def test_purpose_add_records_data_categories_and_recipients_for_the_next_notice(runner):
    create_shop(runner)

    result = cmp(
        runner,
        "purpose add shop partner_sharing --name 'en=Sharing with partners' --gpc "
        "--pii-category 'Contact details' --pii-category 'Purchase history' --recipient 'Authorised partners'",
    )

    assert result.exit_code == 0, result.output
    purpose = get_site("shop").purpose("partner_sharing")
    assert purpose.pii_categories == ["Contact details", "Purchase history"]
    assert purpose.recipients == [{"name": "Authorised partners", "contact": None}]
    assert cmp(runner, "notice publish shop").exit_code == 0
    [published] = [p for p in notice_versions("shop")[-1].content["purposes"] if p["key"] == "partner_sharing"]
    assert published["pii_categories"] == ["Contact details", "Purchase history"]
    assert published["recipients"] == [{"name": "Authorised partners", "contact": None}]


# site list and site show


def test_site_list_shows_every_site_with_its_origins(runner):
    create_shop(runner, "--origin https://www.shop.example")
    cmp(runner, "site create blog --name Blog --bare")

    result = cmp(runner, "site list")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "blog\tBlog\t(no origins)",
        "shop\tShop\thttps://shop.example, https://www.shop.example",
    ]


def test_site_list_without_sites_says_how_to_create_one(runner):
    result = cmp(runner, "site list")

    assert result.exit_code == 0
    assert "no sites yet" in result.output


def test_site_show_json_reports_origins_purposes_cookies_notices_and_events(runner, client, site):
    record_consents(client, 2)
    notice = notice_versions("shop")[0]

    result = cmp(runner, "site show shop --json")

    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["key"] == "shop"
    assert info["allowed_origins"] == ["https://shop.example"]
    assert info["policy_url"] == "https://shop.example/privacy"
    assert [p["key"] for p in info["purposes"]] == SEEDED_PURPOSES
    assert info["purposes"][0]["refusable"] is False
    assert info["cookies"] == [
        {
            "name": "_ga",
            "provider": "Google",
            "domain": None,
            "purpose": "analytics",
            "kind": "cookie",
            "storage": "persistent",
            "lifetime_seconds": 730 * 86400,
            "descriptions": {},
        }
    ]
    assert [(n["version"], n["hash"], n["material"]) for n in info["notices"]] == [(1, notice.content_hash, True)]
    assert info["events"] == 2 == count(ConsentEvent)


def test_site_show_prints_origins_purposes_cookies_notices_and_events(runner, client, site):
    record_consents(client, 3)
    notice = notice_versions("shop")[0]

    result = cmp(runner, "site show shop")

    assert result.exit_code == 0, result.output
    out = result.output
    assert "origins:  https://shop.example" in out
    for key in SEEDED_PURPOSES:
        assert re.search(rf"^\s+{key}\s", out, re.M), key
    assert re.search(r"^\s+_ga\s+analytics\s+cookie\s+2y\s+Google$", out, re.M)
    assert f"v1 {notice.content_hash} material" in out
    assert out.rstrip().endswith("events:   3")


def test_site_show_of_a_site_without_notices_says_none_published(runner):
    create_shop(runner)

    result = cmp(runner, "site show shop")

    assert result.exit_code == 0
    assert "(none published)" in result.output
    assert "events:   0" in result.output


@pytest.mark.parametrize(
    "command",
    [
        "site show nope",
        "site show nope --json",
        "site update nope --name Nope",
        "purpose add nope social_login --name 'en=Social login'",
        "cookie add nope sid --purpose necessary --provider Nope --session",
        "notice publish nope",
        "verify --site nope",
    ],
)
def test_commands_on_an_unknown_site_exit_non_zero(runner, command):
    result = cmp(runner, command)

    assert result.exit_code != 0
    assert "no site 'nope'" in result.output
    assert count(Site) == 0


# purpose add


def test_purpose_add_stores_texts_defaults_gpc_and_consent_mode(runner):
    create_shop(runner)

    result = cmp(
        runner,
        "purpose add shop partner_sharing --name 'en=Sharing with partners' --name 'de=Weitergabe an Partner'"
        " --description 'en=Sharing your data with authorised partners.'"
        " --gpc --consent-mode ad_storage --default-opt-out granted",
    )

    assert result.exit_code == 0, result.output
    site = get_site("shop")
    assert [p.key for p in site.purposes] == [*SEEDED_PURPOSES, "partner_sharing"]
    purpose = site.purpose("partner_sharing")
    assert purpose.texts == {
        "en": {"name": "Sharing with partners", "description": "Sharing your data with authorised partners."},
        "de": {"name": "Weitergabe an Partner"},
    }
    assert purpose.gpc is True
    assert purpose.consent_mode == ["ad_storage"]
    defaults = (purpose.default_opt_in, purpose.default_opt_out, purpose.default_notice_only)
    assert defaults == ("denied", "granted", "granted")
    assert purpose.refusable is True
    assert purpose.double_opt_in is False
    assert purpose.channel == "web"
    assert purpose.position == len(SEEDED_PURPOSES)


def test_purpose_add_accepts_a_consistent_non_refusable_or_double_opt_in_purpose(runner):
    create_shop(runner)

    always_on = cmp(
        runner,
        "purpose add shop fraud_prevention --name 'en=Fraud prevention' --not-refusable"
        " --default-opt-in granted --default-opt-out granted --default-notice-only granted",
    )
    newsletter = cmp(
        runner,
        "purpose add shop newsletter --name en=Newsletter --channel email --double-opt-in --default-notice-only denied",
    )

    assert always_on.exit_code == 0, always_on.output
    assert newsletter.exit_code == 0, newsletter.output
    site = get_site("shop")
    assert site.purpose("fraud_prevention").refusable is False
    assert site.purpose("newsletter").double_opt_in is True
    assert site.purpose("newsletter").channel == "email"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("social_login --name 'de=Soziale Anmeldung'", "needs a name in the site's default locale 'en'"),
        ("social_login --name en=", "needs a name in the site's default locale 'en'"),
        ("Social-Login --name 'en=Social login'", "'Social-Login' is not a purpose key"),
        ("analytics --name 'en=Analytics again'", "site 'shop' already has purpose 'analytics'"),
        (
            "security --name en=Security --not-refusable --default-opt-in denied",
            "cannot be refused is granted in every mode",
        ),
        (
            "newsletter --name en=Newsletter --double-opt-in --default-notice-only denied --default-opt-out granted",
            "needs double opt-in cannot be granted by default",
        ),
        ("social_login --name 'en=Social login' --consent-mode ad_tracking", "Invalid value for '--consent-mode'"),
    ],
    ids=[
        "no-default-locale-name",
        "empty-name",
        "key",
        "duplicate",
        "not-refusable-denied",
        "double-opt-in-granted",
        "consent-mode",
    ],
)
def test_purpose_add_refuses_inconsistent_purposes_and_stores_nothing(runner, command, message):
    create_shop(runner)
    analytics_texts = get_site("shop").purpose("analytics").texts

    result = cmp(runner, f"purpose add shop {command}")

    assert result.exit_code != 0
    assert message in result.output
    assert purpose_keys("shop") == SEEDED_PURPOSES
    assert count(Purpose) == len(SEEDED_PURPOSES)
    assert get_site("shop").purpose("analytics").texts == analytics_texts


# cookie add


def test_cookie_add_persistent_stores_the_lifetime_in_seconds(runner):
    create_shop(runner)

    result = cmp(
        runner,
        "cookie add shop _pv_uid --purpose analytics --provider Shop --persistent --lifetime 390d"
        " --domain shop.example --description 'en=Counts unique visitors.'",
    )

    assert result.exit_code == 0, result.output
    cookie = db.session.scalars(sa.select(Cookie)).one()
    assert cookie.name == "_pv_uid"
    assert cookie.provider == "Shop"
    assert cookie.purpose.key == "analytics"
    assert cookie.site.key == "shop"
    assert cookie.storage == "persistent"
    assert cookie.lifetime_seconds == 390 * 86400
    assert cookie.kind == "cookie"
    assert cookie.domain == "shop.example"
    assert cookie.descriptions == {"en": "Counts unique visitors."}


@pytest.mark.parametrize(
    ("lifetime", "seconds"),
    [("45s", 45), ("30m", 1800), ("12h", 12 * 3600), ("2w", 14 * 86400), ("1y", 365 * 86400)],
)
def test_cookie_add_understands_each_duration_unit(runner, lifetime, seconds):
    create_shop(runner)

    result = cmp(
        runner, f"cookie add shop lang --purpose preferences --provider Shop --persistent --lifetime {lifetime}"
    )

    assert result.exit_code == 0, result.output
    assert db.session.scalars(sa.select(Cookie.lifetime_seconds)).one() == seconds


def test_cookie_add_session_stores_no_lifetime(runner):
    create_shop(runner)

    result = cmp(runner, "cookie add shop SESSION --purpose necessary --provider Shop --session")

    assert result.exit_code == 0, result.output
    cookie = db.session.scalars(sa.select(Cookie)).one()
    assert (cookie.name, cookie.storage, cookie.lifetime_seconds, cookie.kind) == ("SESSION", "session", None, "cookie")
    assert cookie.purpose.key == "necessary"


def test_cookie_add_records_a_pixel(runner):
    create_shop(runner)

    result = cmp(runner, "cookie add shop open.gif --purpose email_tracking --provider Shop --session --kind pixel")

    assert result.exit_code == 0, result.output
    assert "added pixel open.gif" in result.output
    cookie = db.session.scalars(sa.select(Cookie)).one()
    assert (cookie.kind, cookie.storage, cookie.purpose.key) == ("pixel", "session", "email_tracking")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("--purpose analytics --persistent", "a persistent cookie needs a lifetime"),
        ("--purpose analytics --session --lifetime 1d", "a session cookie has no lifetime"),
        ("--purpose advertising --persistent --lifetime 1d", "site 'shop' has no purpose 'advertising'"),
        ("--purpose analytics --persistent --lifetime '10 parsecs'", "'10 parsecs' is not a duration"),
        ("--purpose analytics", "say either --session or --persistent"),
        ("--purpose analytics --session --persistent --lifetime 1d", "say either --session or --persistent"),
        ("--purpose analytics --persistent --lifetime 70y", "between one second and 68 years"),
        ("--purpose analytics --session --kind beacon", "Invalid value for '--kind'"),
    ],
    ids=[
        "persistent-without-lifetime",
        "session-with-lifetime",
        "unknown-purpose",
        "bad-duration",
        "no-storage",
        "both-storages",
        "lifetime-too-long",
        "bad-kind",
    ],
)
def test_cookie_add_refuses_inconsistent_entries_and_stores_nothing(runner, command, message):
    create_shop(runner)

    result = cmp(runner, f"cookie add shop _pv_uid --provider Shop {command}")

    assert result.exit_code != 0
    assert message in result.output
    assert count(Cookie) == 0


def test_cookie_add_refuses_the_same_cookie_from_the_same_provider_twice(runner):
    create_shop(runner)
    command = "cookie add shop _ga --purpose analytics --provider Google --persistent --lifetime 2y"
    assert cmp(runner, command).exit_code == 0

    result = cmp(runner, command)

    assert result.exit_code == 1
    assert "already in the inventory" in result.output
    assert count(Cookie) == 1


# notice publish


def test_notice_publish_first_version_is_material_and_hashes_its_canonical_content(runner):
    create_shop(runner, "--policy-url https://shop.example/privacy")
    cmp(runner, "cookie add shop _ga --purpose analytics --provider Google --persistent --lifetime 2y")

    result = cmp(runner, "notice publish shop")

    assert result.exit_code == 0, result.output
    [notice] = notice_versions("shop")
    assert notice.version == 1
    assert notice.material is True
    assert notice.content_hash == canonical_sha256(notice.content)
    assert f"v1 sha256:{notice.content_hash}" in result.output
    assert notice.content["site"] == "shop"
    assert notice.content["policy_url"] == "https://shop.example/privacy"
    assert [p["key"] for p in notice.content["purposes"]] == SEEDED_PURPOSES
    assert sorted(notice.content["texts"]) == sorted(BUILTIN_LOCALES)
    assert [(c["name"], c["lifetime_seconds"]) for c in notice.content["cookies"]] == [("_ga", 2 * 365 * 86400)]


def test_notice_publish_with_nothing_changed_is_refused_and_creates_nothing(runner, site):
    [before] = notice_versions("shop")

    result = cmp(runner, "notice publish shop --material --note again")

    assert result.exit_code == 1
    assert f"nothing changed since version 1 ({before.content_hash})" in result.output
    assert [(n.version, n.content_hash, n.note) for n in notice_versions("shop")] == [(1, before.content_hash, None)]


def test_notice_publish_material_after_a_cookie_change_creates_version_2(runner, site):
    [v1] = notice_versions("shop")
    v1_hash, v1_content = v1.content_hash, v1.content
    cmp(runner, "cookie add shop _fbp --purpose analytics --provider Meta --persistent --lifetime 90d")

    result = cmp(runner, "notice publish shop --material --note 'Added the Meta pixel cookie'")

    assert result.exit_code == 0, result.output
    assert "material: visitors are asked again" in result.output
    first, second = notice_versions("shop")
    assert (first.version, first.content_hash, first.content) == (1, v1_hash, v1_content)
    assert second.version == 2
    assert second.material is True
    assert second.note == "Added the Meta pixel cookie"
    assert second.content_hash == canonical_sha256(second.content) != v1_hash
    assert [c["name"] for c in second.content["cookies"]] == ["_ga", "_fbp"]


def test_notice_publish_without_material_records_a_minor_change(runner, site):
    cmp(runner, "site update shop --policy-url https://shop.example/privacy-v2")

    result = cmp(runner, "notice publish shop --note 'New policy address'")

    assert result.exit_code == 0, result.output
    assert "material" not in result.output
    second = notice_versions("shop")[-1]
    assert (second.version, second.material, second.note) == (2, False, "New policy address")
    assert second.content["policy_url"] == "https://shop.example/privacy-v2"


def test_notice_versions_cannot_be_updated_through_the_orm(site):
    [notice] = notice_versions("shop")
    original = notice.content_hash

    notice.content_hash = "0" * 64
    notice.note = "rewritten"
    with pytest.raises(ImmutableRecordError):
        db.session.commit()
    db.session.rollback()

    [notice] = notice_versions("shop")
    assert (notice.content_hash, notice.note) == (original, None)


def test_notice_versions_cannot_be_deleted_through_the_orm(site):
    [notice] = notice_versions("shop")

    db.session.delete(notice)
    with pytest.raises(ImmutableRecordError):
        db.session.flush()
    db.session.rollback()

    assert [n.version for n in notice_versions("shop")] == [1]


# key create, list, revoke


def test_key_create_prints_the_token_once_and_stores_only_its_digest(runner, site):
    result = cmp(runner, "key create --name 'shop backend' --scope consent:write --site shop")

    assert result.exit_code == 0, result.output
    [token] = result.stdout.splitlines()
    match = TOKEN.match(token)
    assert match, token
    key_id, secret = match.groups()
    assert secret not in result.stderr
    assert f"key {key_id} (consent:write; sites: shop)" in result.stderr
    row = db.session.execute(sa.select(ApiKey.__table__)).one()._mapping
    assert row["key_id"] == key_id
    assert row["secret_digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert [column for column, value in row.items() if secret in str(value)] == []
    assert row["name"] == "shop backend"
    key = db.session.scalars(sa.select(ApiKey)).one()
    assert key.scopes == ["consent:write"]
    assert key.sites == ["shop"]
    assert key.revoked_at is None


def test_key_create_stores_every_scope_and_site(runner, site):
    cmp(runner, "site create blog --name Blog --bare")

    _, key_id, _ = create_key(runner, "--name ops --scope dsr --scope audit:read --scope dsr --site shop --site blog")

    key = db.session.scalars(sa.select(ApiKey).where(ApiKey.key_id == key_id)).one()
    assert key.scopes == ["audit:read", "dsr"]
    assert key.sites == ["blog", "shop"]


def test_key_create_without_sites_binds_the_key_to_every_site(runner, site):
    token, _, _ = create_key(runner, "--name admin --scope admin")

    key = keys.authenticate(token)
    assert key.sites == []
    keys.authorise(key, Scope.CONSENT_WRITE, "shop")
    keys.authorise(key, Scope.CONSENT_WRITE, "any-other-site")


def test_authenticate_accepts_the_printed_token_and_rejects_a_modified_one(runner, site):
    token, key_id, secret = create_key(runner, "--name 'shop backend' --scope consent:write --site shop")

    assert keys.authenticate(token).key_id == key_id
    tampered = [
        token[:-1] + ("B" if token.endswith("A") else "A"),
        token + "x",
        f"cmp_{'0' * 16}_{secret}",
        f"xyz_{key_id}_{secret}",
        f"cmp_{key_id}_",
    ]
    for bad in tampered:
        with pytest.raises(Unauthenticated):
            keys.authenticate(bad)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("--scope consent:delete", "Invalid value for '--scope'"),
        ("--scope consent:write --site nope", "no site 'nope'"),
        ("", "Missing option '--scope'"),
    ],
    ids=["unknown-scope", "unknown-site", "no-scope"],
)
def test_key_create_refuses_unknown_scopes_and_sites_and_stores_nothing(runner, site, command, message):
    result = cmp(runner, f"key create --name 'shop backend' {command}")

    assert result.exit_code != 0
    assert message in result.output
    assert "cmp_" not in result.stdout
    assert count(ApiKey) == 0


def test_key_list_shows_keys_but_never_their_secrets(runner, site):
    _, first_id, first_secret = create_key(runner, "--name 'shop backend' --scope consent:write --site shop")
    _, second_id, second_secret = create_key(runner, "--name auditor --scope audit:read")
    cmp(runner, f"key revoke {second_id}")

    result = cmp(runner, "key list")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{first_id}\tshop backend\tconsent:write\tshop\tactive\t")
    assert lines[1].startswith(f"{second_id}\tauditor\taudit:read\tall sites\trevoked ")
    assert first_secret not in result.output
    assert second_secret not in result.output


def test_key_revoke_makes_authentication_fail(runner, site):
    token, key_id, _ = create_key(runner, "--name 'shop backend' --scope consent:write")
    assert keys.authenticate(token).key_id == key_id

    result = cmp(runner, f"key revoke {key_id}")

    assert result.exit_code == 0, result.output
    assert f"revoked {key_id}" in result.output
    assert db.session.scalars(sa.select(ApiKey)).one().revoked_at is not None
    with pytest.raises(Unauthenticated):
        keys.authenticate(token)


def test_key_revoke_of_an_unknown_key_exits_non_zero(runner):
    result = cmp(runner, "key revoke 0123456789abcdef")

    assert result.exit_code == 1
    assert "no key '0123456789abcdef'" in result.output


# demo


def test_demo_seeds_the_policy_site_with_its_inventory_and_first_notice(runner):
    result = cmp(runner, "demo --base-url http://127.0.0.1:5000/ --origin https://demo.example")

    assert result.exit_code == 0, result.output
    site = get_site("demo")
    assert site.allowed_origins == ["http://127.0.0.1:5000", "http://localhost:5000", "https://demo.example"]
    assert site.policy_url == "http://127.0.0.1:5000/demo/privacy"
    assert [p.key for p in site.purposes] == [*SEEDED_PURPOSES, "partner_sharing", "cross_border_transfer"]
    partner_sharing = site.purpose("partner_sharing")
    assert partner_sharing.gpc is True
    assert partner_sharing.default_opt_out == "granted"
    assert sorted(partner_sharing.texts) == sorted(BUILTIN_LOCALES)
    assert site.purpose("cross_border_transfer").default_notice_only == "denied"
    cookies = site.cookies
    assert any(c.kind == "cookie" and c.storage == "session" for c in cookies)
    assert any(c.kind == "cookie" and c.storage == "persistent" for c in cookies)
    assert all(c.lifetime_seconds for c in cookies if c.storage == "persistent")
    assert all(c.lifetime_seconds is None for c in cookies if c.storage == "session")
    assert {c.purpose.key for c in cookies if c.kind == "pixel"} == {"analytics", "email_tracking"}
    [notice] = notice_versions("demo")
    assert (notice.version, notice.material) == (1, True)
    assert notice.content_hash == canonical_sha256(notice.content)
    assert len(notice.content["cookies"]) == len(cookies)
    assert f"{len(site.purposes)} purposes, {len(cookies)} cookies, notice v1" in result.output


def test_demo_twice_is_harmless_and_says_so(runner):
    assert cmp(runner, "demo").exit_code == 0
    counts = (count(Site), count(Purpose), count(Cookie), count(NoticeVersion), count(ChainHead))
    [notice] = notice_versions("demo")

    result = cmp(runner, "demo")

    assert result.exit_code == 0, result.output
    assert "demo site already seeded" in result.output
    assert (count(Site), count(Purpose), count(Cookie), count(NoticeVersion), count(ChainHead)) == counts
    assert [(n.version, n.content_hash) for n in notice_versions("demo")] == [(1, notice.content_hash)]


# verify


def tamper_with_seq_2(site_key: str) -> str:
    """Rewrite event 2's decisions behind the application's back, as direct SQL would; return its id."""
    table = ConsentEvent.__table__
    where = (table.c.site_id == get_site(site_key).id) & (table.c.seq == 2)
    event_id = db.session.scalar(sa.select(table.c.id).where(where))
    db.session.execute(sa.update(table).where(where).values(decisions={"analytics": "granted"}))
    db.session.commit()
    db.session.expire_all()
    return event_id


def test_verify_reports_ok_on_an_untouched_chain(runner, client, site):
    record_consents(client, 3)
    assert [e.seq for e in events()] == [1, 2, 3]

    result = cmp(runner, "verify")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "shop: ok, 3 events checked (tree checked against the signed checkpoint of 3)"


def test_verify_fails_naming_the_event_that_was_altered(runner, client, site):
    record_consents(client, 3)
    altered = tamper_with_seq_2("shop")

    result = cmp(runner, "verify")

    assert result.exit_code == 1
    assert f"shop: FAILED at event {altered} (seq 2)" in result.output
    assert "the event was altered" in result.output


def test_verify_checks_only_the_site_asked_for(runner, client, site):
    record_consents(client, 3)
    cmp(runner, "demo")
    tamper_with_seq_2("shop")

    demo_only = cmp(runner, "verify --site demo")
    every_site = cmp(runner, "verify")

    assert demo_only.exit_code == 0
    assert demo_only.output.strip() == "demo: ok, 0 events checked (no signed checkpoint yet)"
    assert every_site.exit_code == 1
    assert "demo: ok, 0 events checked (no signed checkpoint yet)" in every_site.output
    assert "shop: FAILED" in every_site.output


def test_verify_json_reports_ok_checked_first_bad_and_reason(runner, client, site):
    record_consents(client, 3)

    before = cmp(runner, "verify --json")
    altered = tamper_with_seq_2("shop")
    after = cmp(runner, "verify --json")

    assert before.exit_code == 0
    clean = json.loads(before.output)
    assert (clean["site"], clean["ok"], clean["checked"]) == ("shop", True, 3)
    assert (clean["first_bad"], clean["first_bad_seq"], clean["reason"]) == (None, None, None)
    assert after.exit_code == 1
    report = json.loads(after.output)
    assert (report["site"], report["ok"], report["checked"]) == ("shop", False, 2)
    assert (report["first_bad"], report["first_bad_seq"]) == (altered, 2)
    assert "altered" in report["reason"]


def test_verify_fails_on_a_decision_no_identifier_leads_to(runner, client, site):
    """State rows whose subject lost its identifier links: access and erasure can no longer reach them."""
    record_consents(client, 2)
    orphan = events()[0].subject_id
    db.session.execute(sa.text("DELETE FROM subject_identifiers WHERE subject_id = :s"), {"s": orphan})
    db.session.commit()
    rows = db.session.scalar(sa.text("SELECT count(*) FROM consent_state WHERE subject_id = :s"), {"s": orphan})

    text, as_json = cmp(runner, "verify"), cmp(runner, "verify --json")

    assert text.exit_code == 1
    assert "shop: ok, 2 events checked" in text.output  # the chain itself is intact
    finding = f"shop: FAILED: {rows} current-state rows of subjects no identifier names (subjects: {orphan})"
    assert finding in text.output
    assert as_json.exit_code == 1
    report = json.loads(as_json.output)
    assert (report["ok"], report["reason"]) == (False, None)
    assert [(f["code"], f["count"], f["examples"]) for f in report["integrity"]["findings"]] == [
        ("state_without_identifier", rows, [orphan])
    ]


# --- input an operator gets wrong -----------------------------------------------------------------------------


def test_origins_are_deduplicated_and_stored_as_browsers_send_them(runner):
    result = cmp(
        runner,
        "site create shop --name Shop --origin https://a.example --origin HTTPS://A.example:443/ "
        "--origin https://bücher.example:8443",
    )
    assert result.exit_code == 0, result.output
    assert get_site("shop").allowed_origins == ["https://a.example", "https://xn--bcher-kva.example:8443"]


@pytest.mark.parametrize("origin", ["https://a.example:0", "https://a.example:99999", "https://a.example/path"])
def test_impossible_origins_are_refused(runner, origin):
    result = cmp(runner, f"site create shop --name Shop --origin {origin}")
    assert result.exit_code == 1
    assert f"{origin!r} is not an origin" in result.output
    assert count(Site) == 0


def test_keys_with_a_trailing_newline_are_refused(runner):
    assert cmp(runner, "site create", "bad\n", "--name", "Bad").exit_code == 1
    create_shop(runner)
    assert cmp(runner, "purpose add shop", "analytics\n", "--name", "en=Again").exit_code == 1
    assert count(Site) == 1
    assert purpose_keys("shop") == SEEDED_PURPOSES


def test_jurisdiction_modes_are_case_insensitive(runner):
    create_shop(runner, "--jurisdiction us=OPT_IN")
    assert get_site("shop").jurisdiction_overrides == {"US": "opt_in"}


def test_flags_alone_give_consistent_defaults(runner):
    create_shop(runner)
    assert cmp(runner, "purpose add shop security --name en=Security --not-refusable").exit_code == 0
    assert cmp(runner, "purpose add shop newsletter --name en=Newsletter --double-opt-in").exit_code == 0
    security, newsletter = (get_site("shop").purpose(key) for key in ("security", "newsletter"))
    defaults = lambda p: (p.default_opt_in, p.default_opt_out, p.default_notice_only)  # noqa: E731
    assert defaults(security) == ("granted", "granted", "granted")
    assert defaults(newsletter) == ("denied", "denied", "denied")


def test_site_show_prints_lifetimes_in_their_own_unit(runner):
    create_shop(runner)
    cmp(runner, "cookie add shop _gat --purpose analytics --provider Google --persistent --lifetime 30m")
    assert re.search(r"^\s+_gat\s+analytics\s+cookie\s+30m\s", cmp(runner, "site show shop").output, re.M)


def test_demo_with_a_bad_origin_explains_and_leaves_nothing(runner):
    result = cmp(runner, "demo --origin not-an-origin")
    assert result.exit_code == 1
    assert "'not-an-origin' is not an origin" in result.output
    assert "Traceback" not in result.output
    assert count(Site) == 0 and count(Purpose) == 0 and count(NoticeVersion) == 0


def test_demo_on_an_ipv6_address_sets_the_cookie_domain(runner):
    assert cmp(runner, "demo --base-url http://[::1]:5000").exit_code == 0
    assert {c.domain for c in get_site("demo").cookies} == {"::1"}
    assert "http://[::1]:5000" in get_site("demo").allowed_origins


def test_verify_without_sites_says_so(runner):
    result = cmp(runner, "verify")
    assert result.exit_code == 0
    assert "no sites to verify" in result.output


def test_verify_of_an_unknown_site_is_a_usage_error_not_a_broken_chain(runner):
    result = cmp(runner, "verify --site nowhere")
    assert result.exit_code == 2
    assert "no site 'nowhere'" in result.output
