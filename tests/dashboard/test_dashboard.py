"""The dashboard as an auditor reads it: recorded numbers in every table, valid charts, no identifiers."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
import sqlalchemy as sa

from cmp.dashboard import age
from cmp.extensions import db
from cmp.models import ConsentEvent, LogCheckpoint, LogTile, LogVerification
from cmp.models.types import utcnow
from cmp.services import chain, notes, notices, sites, tlog
from cmp.services.export_verify import verify_file
from tests.conftest import running_app
from tests.dashboard.pages import new_key, sign_in, table
from tests.geoip import write_geoip_database
from tests.helpers import events, post_consent

GERMANY, USA, NOWHERE = "192.0.2.10", "198.51.100.20", "8.8.8.8"
CHARTS = ("purposes", "days", "countries", "modes")
SVG = "{http://www.w3.org/2000/svg}"
PAGE_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture(scope="module")
def geoip(tmp_path_factory) -> str:
    return str(write_geoip_database(tmp_path_factory.mktemp("geoip-dashboard") / "country.mmdb"))


@pytest.fixture
def app(database_url, geoip):
    """The service placing visitors in countries by address, as behind a real GeoIP database."""
    with running_app(database_url, CMP_GEOIP_DATABASE=geoip) as app:
        yield app


def decide(client, address: str, **body):
    client.environ_base["REMOTE_ADDR"] = address
    response = post_consent(client, page_url="https://shop.example/orders/ada-lovelace", **body)
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def recorded(client, site):
    """Four banner decisions from Germany, the US (twice) and an address no database knows; what they returned."""
    return [
        decide(client, GERMANY, action="accept_all"),
        decide(client, USA, action="reject_all"),
        decide(client, USA, action="save", decisions={"analytics": "granted"}),
        decide(client, NOWHERE, action="save", decisions={"preferences": "granted", "analytics": "denied"}),
    ]


@pytest.fixture
def auditor(client, site):
    """The test client, signed in with an audit:read key."""
    assert sign_in(client, new_key("audit:read")).status_code == 303
    return client


def test_the_tables_show_what_was_recorded(recorded, auditor):
    page = auditor.get("/audit")
    assert page.status_code == 200

    assert "<strong>4</strong> banner decisions" in page.text
    assert table(page.text, "purposes-table") == [
        ["preferences", "3", "2 (66.7%)", "1 (33.3%)"],
        ["analytics", "4", "2 (50.0%)", "2 (50.0%)"],
    ]
    #                                         accepted all  chose some   rejected all  withdrew    refused by GPC
    assert table(page.text, "countries-table") == [
        ["US", "2", "0 (0.0%)", "1 (50.0%)", "1 (50.0%)", "0 (0.0%)", "0 (0.0%)"],
        ["DE", "1", "1 (100.0%)", "0 (0.0%)", "0 (0.0%)", "0 (0.0%)", "0 (0.0%)"],
        ["unknown", "1", "0 (0.0%)", "1 (100.0%)", "0 (0.0%)", "0 (0.0%)", "0 (0.0%)"],
    ]
    assert table(page.text, "modes-table") == [
        ["opt_in", "2", "1 (50.0%)", "1 (50.0%)", "0 (0.0%)", "0 (0.0%)", "0 (0.0%)"],
        ["opt_out", "2", "0 (0.0%)", "1 (50.0%)", "1 (50.0%)", "0 (0.0%)", "0 (0.0%)"],
    ]
    [today] = table(page.text, "days-table")
    assert today[1:] == ["4", "1 (25.0%)", "2 (50.0%)", "1 (25.0%)", "0 (0.0%)", "0 (0.0%)"]
    assert today[0] == events()[0].received_at.date().isoformat()


def test_the_page_defines_its_measures(auditor):
    page = auditor.get("/audit").text
    assert "What the figures mean" in page
    for action in ("accept_all", "save", "reject_all", "withdraw", "gpc", "default"):
        assert f"<code>{action}</code>" in page


def test_the_default_period_is_the_last_30_utc_days(recorded, auditor):
    today = events()[0].received_at.date()
    page = auditor.get("/audit").text
    assert f'name="to" type="date" value="{today.isoformat()}"' in page
    assert "from " + (today.fromordinal(today.toordinal() - 29)).isoformat() in page


def test_another_period_leaves_todays_decisions_out(recorded, auditor):
    page = auditor.get("/audit?site=shop&from=2020-01-01&to=2020-01-31").text
    assert "<strong>0</strong> banner decisions" in page
    assert table(page, "days-table") == [["No banner decisions in this period."]]
    assert table(page, "purposes-table")[0] == ["preferences", "0", "0 (0.0%)", "0 (0.0%)"]


def test_each_chart_is_an_image_followed_by_its_table(recorded, auditor):
    page = auditor.get("/audit").text
    for name in CHARTS:
        start = page.index(f'<img src="/audit/charts/{name}.svg?site=shop&amp;from=')
        assert 'alt="' in page[start : page.index(">", start)]
        assert page.index(f'id="{name}-table"', start) > start


@pytest.mark.parametrize("name", CHARTS)
def test_charts_are_valid_svg_without_script(recorded, auditor, name):
    response = auditor.get(f"/audit/charts/{name}.svg?site=shop")

    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src" not in response.headers["Content-Security-Policy"]
    root = ET.fromstring(response.data)
    assert root.tag == f"{SVG}svg"
    assert int(root.get("width")) > 0 and int(root.get("height")) > 0
    assert not [element for element in root.iter() if element.tag.endswith("script")]
    assert b"javascript" not in response.data.lower()


def test_the_purposes_chart_draws_the_purposes(recorded, auditor):
    svg = auditor.get("/audit/charts/purposes.svg?site=shop").text
    assert "preferences" in svg and "analytics" in svg


def test_an_unknown_chart_is_404(auditor):
    assert auditor.get("/audit/charts/subjects.svg?site=shop").status_code == 404


def test_nothing_identifies_a_person(recorded, auditor):
    """Policy §1.3: statistics carry no identifiers; not in the page, the charts, or the chain's page."""
    stored = events()
    secrets = {"ada-lovelace", "shop.example/orders"}
    for event in stored:
        secrets |= {event.id, event.subject_id, event.ip_prefix, event.evidence_digest, event.hash}
    for answer in recorded:
        secrets |= {answer["visitor_id"], answer["visitor_id"].split(".")[0], answer["event_id"]}
    assert {"192.0.2.0", "198.51.100.0", "8.8.8.0"} <= secrets
    secrets.discard(None)
    # The head hash on the chain's page is the last event's hash: a proof, published on purpose.
    head = stored[-1].hash

    shown = [auditor.get("/audit").text, auditor.get("/audit/verify?site=shop").text]
    shown += [auditor.get(f"/audit/charts/{name}.svg?site=shop").text for name in CHARTS]

    for text in shown:
        leaked = sorted(secret for secret in secrets - {head} if secret in text)
        assert leaked == []


def test_notice_versions_with_their_publication_and_materiality(site, auditor):
    sites.add_purpose(site, "partner_sharing", texts={"en": {"name": "Partners"}}, gpc=True)
    second = notices.publish_notice(site, material=False, note="typo fixed")
    db.session.commit()
    rows = table(auditor.get("/audit").text, "notices-table")

    assert [(row[0], row[2], row[4]) for row in rows] == [("2", "no", "typo fixed"), ("1", "yes", "")]
    assert rows[0][1] == second.published_at.strftime("%Y-%m-%d %H:%M")
    assert rows[0][3] == second.content_hash


def test_export_links_for_both_formats(auditor):
    page = auditor.get("/audit").text
    assert 'href="/audit/export?site=shop&amp;format=jsonl"' in page
    assert 'href="/audit/export?site=shop&amp;format=csv"' in page


def verify_page(auditor) -> str:
    response = auditor.get("/audit/verify?site=shop")
    assert response.status_code == 200
    return response.text


def test_verify_checks_the_latest_checkpoint_against_the_one_before(recorded, auditor):
    page = auditor.get("/audit?site=shop").text
    assert 'href="/audit/verify?site=shop"' in page

    result = verify_page(auditor)
    latest = tlog.latest_checkpoint(events()[0].site_id)
    assert "The latest checkpoint of <code>shop</code> verifies" in result and "does not verify" not in result
    assert "<dt>Tree size</dt><dd>4</dd>" in result and latest.root in result
    assert "<dt>Consistent with</dt><dd>the checkpoint of size 3</dd>" in result
    assert "has never been verified in full" in result


def test_verify_catches_a_tree_rewritten_since_the_previous_checkpoint(recorded, auditor):
    """A stored tree whose first leaf was replaced no longer proves the previous checkpoint a prefix of the latest."""
    tiles = LogTile.__table__
    where = (tiles.c.level == 0) & (tiles.c.idx == 0)
    stored = db.session.scalar(sa.select(tiles.c.hashes).where(where))
    db.session.execute(sa.update(tiles).where(where).values(hashes=bytes([stored[0] ^ 1]) + stored[1:]))
    db.session.commit()

    result = verify_page(auditor)

    assert "does not verify" in result
    assert "the tree of the checkpoint of size 4 does not extend the one of size 3" in result


def test_verify_catches_a_checkpoint_that_does_not_sign_the_stored_tree(recorded, auditor):
    checkpoint = tlog.latest_checkpoint(events()[0].site_id)
    checkpoint_table = LogCheckpoint.__table__
    db.session.execute(sa.update(checkpoint_table).where(checkpoint_table.c.id == checkpoint.id).values(root="00" * 32))
    db.session.commit()

    db.session.expire_all()

    assert "the checkpoint of size 4 does not sign the tree stored for this site" in verify_page(auditor)


def test_verify_shows_the_last_full_verification_with_its_age(recorded, auditor, runner):
    assert runner.invoke(args=["verify", "--site", "shop"]).exit_code == 0

    result = verify_page(auditor)
    assert "verified in full 0 s ago" in result
    assert "<dt>Events checked</dt><dd>4</dd>" in result
    assert "<dt>Against the checkpoint of size</dt><dd>4</dd>" in result

    target = events()[1]
    table_ = ConsentEvent.__table__
    db.session.execute(sa.update(table_).where(table_.c.id == target.id).values(action="accept_all"))
    db.session.commit()
    assert runner.invoke(args=["verify", "--site", "shop"]).exit_code == 1

    result = verify_page(auditor)
    assert "did not verify in full 0 s" in result and "the event was altered" in result
    assert "<dt>Events checked</dt><dd>2</dd>" in result
    assert f"event <code>{target.id}</code>, position {target.seq} in the log" in result
    # The latest checkpoint still verifies: an edited event is what the full verification is for.
    assert "The latest checkpoint of <code>shop</code> verifies" in result


def test_each_full_verification_is_kept(recorded, runner):
    site_id = events()[0].site_id
    for _ in range(2):
        assert runner.invoke(args=["verify"]).exit_code == 0
    rows = db.session.execute(
        sa.select(
            LogVerification.ok,
            LogVerification.checked,
            LogVerification.reason,
            LogVerification.checkpoint_size,
            LogVerification.first_bad_event,
            LogVerification.first_bad_seq,
        ).where(LogVerification.site_id == site_id)
    ).all()
    assert [tuple(row) for row in rows] == [(True, 4, None, 4, None, None)] * 2


def test_a_site_without_checkpoint_says_so(auditor):
    assert "has no signed checkpoint yet" in verify_page(auditor)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0 s"), (59, "59 s"), (61, "1 min 1 s"), (3600 * 5 + 120, "5 h 2 min"), (86400 * 3 + 3600, "3 d 1 h")],
)
def test_ages_read_as_the_two_largest_units(seconds, shown):
    assert age(timedelta(seconds=seconds)) == shown


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("from=2026-03-05&to=2026-03-01", "must not be after to"),
        ("from=yesterday", "Not a valid date"),
        ("from=2024-01-01&to=2025-12-31", "at most 366 days"),
        ("site=Not%20A%20Site", "not a site key"),
    ],
)
def test_an_invalid_selection_is_explained(auditor, query, problem):
    response = auditor.get(f"/audit?{query}")
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert problem in response.text


def test_a_key_with_no_site_to_audit(client):
    sign_in(client, new_key("audit:read"))
    page = client.get("/audit")
    assert page.status_code == 200
    assert "There is no site this key may audit yet." in page.text
    assert client.get("/audit/charts/days.svg").status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/audit", "/audit/verify?site=shop", "/audit/login", "/audit?from=nonsense", "/audit?site=nowhere"],
)
def test_pages_carry_a_strict_policy_and_are_never_stored(auditor, path):
    response = auditor.get(path)
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == PAGE_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in response.text and "style=" not in response.text and "<style" not in response.text


def test_the_stylesheet_is_served_by_the_dashboard(client):
    response = client.get("/audit/dashboard.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.headers["Cache-Control"] == "no-store"
    assert b".num" in response.data


def test_the_routes_are_described(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/audit/login"]) == {"get", "post"}
    assert "get" in paths["/audit"] and "post" in paths["/audit/logout"]
    chart = paths["/audit/charts/{name}.svg"]["get"]
    assert "image/svg+xml" in chart["responses"]["200"]["content"]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_the_export_links_download_the_log_and_it_verifies_offline(recorded, auditor, tmp_path, fmt):
    page = auditor.get("/audit?site=shop").text
    link = re.search(rf'href="(/audit/export\?[^"]*format={fmt}[^"]*)"', page).group(1).replace("&amp;", "&")
    response = auditor.get(link)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(response.data)
    report = verify_file(path)
    assert report.ok and [s.result.checked for s in report.sites] == [len(recorded)]
    assert {event["event_id"] for event in recorded} <= set(re.findall(r"01[0-9A-HJKMNP-TV-Z]{24}", response.text))


def test_the_export_needs_a_signed_in_auditor_of_that_site(client, site, recorded):
    assert client.get("/audit/export?site=shop&format=jsonl").status_code == 303
    sites.create_site("blog", "Blog")
    db.session.commit()
    assert sign_in(client, new_key("audit:read", bound_to=["blog"])).status_code == 303
    refused = client.get("/audit/export?site=shop&format=jsonl")
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert client.get("/audit/export?site=blog&format=xml").status_code == 422


def test_overrides_that_weaken_prior_consent_are_shown_with_their_acknowledgement(site, auditor):
    reason = "Legal opinion LO-2026-14 <Kanzlei Weber>: audience measurement exemption"
    acknowledgement = sites.Acknowledgement(reason, "cli")
    sites.update_site(
        site, jurisdiction={"DE": "opt_out", "AT": "opt_out", "US": "opt_in"}, acknowledge_weaker=acknowledgement
    )
    db.session.commit()
    acknowledged_at = sites.weakened_countries(site)[0].acknowledgement.created_at.strftime("%Y-%m-%d %H:%M")

    page = auditor.get("/audit").text

    assert table(page, "overrides-table") == [
        ["AT", "opt_out", acknowledged_at, "cli", reason],
        ["DE", "opt_out", acknowledged_at, "cli", reason],
    ]
    assert "&lt;Kanzlei Weber&gt;" in page  # the operator's words are escaped, never markup


def test_an_override_stored_before_acknowledgements_is_flagged(site, auditor):
    site.jurisdiction_overrides = {"FR": "notice_only", "JP": "notice_only"}  # as a site created before the guard
    db.session.commit()

    assert table(auditor.get("/audit").text, "overrides-table") == [["FR", "notice_only", "Not acknowledged"]]


def test_without_weakening_overrides_the_table_says_so(site, auditor):
    sites.update_site(site, jurisdiction={"US": "opt_in", "*": "notice_only"})
    db.session.commit()

    assert table(auditor.get("/audit").text, "overrides-table") == [
        ["No override weakens the mode of a country whose law requires prior consent."]
    ]


def test_the_log_panel_shows_the_latest_checkpoint_its_witnesses_and_the_lag(recorded, auditor, site):
    """What a witness cosigned, and what still waits for the sequencer, as an auditor reads them on the page."""
    signer = notes.CosignatureSigner.generate("auditor.example")
    tlog.add_witness(site, signer.verifier_key)
    db.session.commit()
    checkpoint = tlog.latest_checkpoint(site.id)
    line = notes.cosign(checkpoint.note, signer, 1_800_000_000)
    assert (
        auditor.post(
            "/api/v1/sites/shop/log/cosignatures", json={"size": checkpoint.size, "cosignature": line}
        ).status_code
        == 201
    )

    page = auditor.get("/audit")
    assert f"<strong>{checkpoint.size}</strong> events, root" in page.text and checkpoint.root in page.text
    assert table(page.text, "witnesses-table") == [["auditor.example", "2027-01-15 08:00:00"]]
    assert "No event waits for the sequencer." in page.text

    # An event written here, not by a request, waits for the sequencer: the page says so.
    waiting = ConsentEvent(
        id="01ZZZZZZZZZZZZZZZZZZZZZZZZ",
        subject_id=events()[0].subject_id,
        action="withdraw",
        source="api",
        decisions={},
        mode="opt_in",
        gpc=False,
        received_at=utcnow(),
        evidence_digest=chain.evidence_digest(None, None, None, None),
    )
    chain.seal(waiting, site)
    db.session.commit()
    lag = re.search(r'id="integration-lag">(.*?)</p>', auditor.get("/audit").text, re.S).group(1)
    assert lag.split(";")[0].strip() == "1 events wait for the sequencer"
