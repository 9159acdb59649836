"""The banner code a visitor runs is the code its notice version names: an upgrade is recorded at start-up.

Each notice version records the SHA-256 of the banner code (CNIL 2020-092 §48: proof by hash of code and texts).
After an upgrade, a serving process starting up publishes, for each site whose current notice names other code,
a non-material version that differs from it only in that hash.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cmp.banner import bundle, record_code
from cmp.cli import cli
from cmp.extensions import db
from cmp.models import NoticeVersion
from cmp.services import notices, sites
from tests.conftest import clear_database, make_app
from tests.helpers import ORIGIN, events, post_consent

ROOT = Path(__file__).resolve().parents[2]


def next_release(tmp_path: Path) -> Path:
    """The banner's sources as the next release ships them: one statement more, so the code's hash changes."""
    source = tmp_path / "banner"
    shutil.copytree(bundle.SOURCE, source)
    main = source / "main.js"
    main.write_text(main.read_text(encoding="utf-8") + "\nvoid 'next release';\n", encoding="utf-8")
    return source


def upgrade(monkeypatch, tmp_path: Path) -> bundle.Bundle:
    """From now on this process serves the next release's banner code."""
    new = bundle.build(next_release(tmp_path))
    assert new.digest != bundle.current().digest
    monkeypatch.setattr(bundle, "current", lambda: new)
    return new


@pytest.fixture
def upgraded(site, monkeypatch, tmp_path) -> bundle.Bundle:
    """The `shop` site's notice v1 names the code of this release; the process then serves the next one's."""
    return upgrade(monkeypatch, tmp_path)


def versions(site_id: int) -> list[NoticeVersion]:
    return list(
        db.session.scalars(
            sa.select(NoticeVersion).where(NoticeVersion.site_id == site_id).order_by(NoticeVersion.version)
        )
    )


def without_code(content: dict) -> dict:
    return {**content, "banner": {**content["banner"], "bundle": None}}


def test_start_up_after_an_upgrade_publishes_the_notice_again_naming_the_new_code(app, site, upgraded):
    before = notices.current_notice(site)
    old = before.content["banner"]["bundle"]

    record_code(app)

    first, second = versions(site.id)
    assert first.content_hash == before.content_hash  # the earlier version stays as it was
    assert second.version == 2
    assert second.material is False
    assert second.content["banner"]["bundle"] == upgraded.digest
    assert without_code(second.content) == without_code(before.content)
    assert second.content_hash == notices.content_hash(second.content) != before.content_hash
    assert second.note == f"banner code changed: {old[:12]} -> {upgraded.short}"


def test_a_decision_after_the_upgrade_records_the_notice_naming_the_code_served(app, client, site, reader, upgraded):
    earlier = post_consent(client, action="accept_all", notice_version=1).json
    record_code(app)

    config = client.get("/api/v1/sites/shop/banner-config").json["notice"]
    # Not material: visitors who decided on version 1 are not asked again, and their consent still holds.
    assert (config["version"], config["material"], config["last_material_version"]) == (2, False, 1)
    answer = client.get(
        "/api/v1/consents/lookup",
        query_string={"site": "shop", "subject": f"visitor:{earlier['visitor_id']}", "purpose": "analytics"},
        headers=reader,
    ).json
    assert (answer["allowed"], answer["reason"], answer["notice_version"]) == (True, "granted", 1)
    response = post_consent(client, action="accept_all", notice_version=config["version"])
    assert response.status_code == 201, response.json

    event = events(site.id)[-1]
    assert (event.notice_version, event.notice_hash) == (2, config["hash"])
    script = client.get("/banner/v1/cmp.js")
    assert script.headers["X-Banner-Bundle"] == upgraded.digest
    assert notices.get_notice(site, event.notice_version).content["banner"]["bundle"] == upgraded.digest


def test_starting_again_publishes_nothing(app, site, upgraded):
    record_code(app)
    record_code(app)
    assert [n.version for n in versions(site.id)] == [1, 2]


def test_starting_on_the_code_the_notices_name_publishes_nothing(app, site):
    record_code(app)
    assert [n.version for n in versions(site.id)] == [1]


def test_every_site_with_a_notice_gets_one_and_a_site_without_gets_none(app, site, monkeypatch, tmp_path):
    other = sites.create_site("blog", "Blog", origins=["https://blog.example"])
    notices.publish_notice(other)
    sites.create_site("draft", "Draft", origins=["https://draft.example"])
    db.session.commit()
    upgrade(monkeypatch, tmp_path)

    record_code(app)

    published = db.session.execute(
        sa.select(NoticeVersion.site_id, sa.func.max(NoticeVersion.version)).group_by(NoticeVersion.site_id)
    ).all()
    assert dict(published) == {site.id: 2, other.id: 2}


def test_unpublished_configuration_edits_stay_unpublished(app, site, upgraded):
    before = notices.current_notice(site)
    sites.add_cookie(site, "lang", purpose="preferences", provider="Shop", storage="persistent", lifetime_seconds=86400)
    site.name = "Shop (renamed, not yet published)"
    db.session.commit()

    record_code(app)

    after = notices.current_notice(site)
    assert after.version == 2
    assert without_code(after.content) == without_code(before.content)
    assert after.content["name"] == "Shop"
    assert "lang" not in {cookie["name"] for cookie in after.content["cookies"]}
    # The edits are the operator's to publish, and with them a notice that names the new code as well.
    edited = notices.publish_notice(site, material=True)
    assert edited.content["name"] == "Shop (renamed, not yet published)"
    assert edited.content["banner"]["bundle"] == upgraded.digest


def test_a_notice_from_before_the_code_was_recorded_gets_it(app, site, upgraded):
    content = {key: value for key, value in notices.current_notice(site).content.items() if key != "banner"}
    db.session.add(
        NoticeVersion(site_id=site.id, version=2, content=content, content_hash=notices.content_hash(content))
    )
    db.session.commit()

    record_code(app)

    latest = notices.current_notice(site)
    assert latest.version == 3
    assert latest.content == {**content, "banner": {"bundle": upgraded.digest}}
    assert latest.note == f"banner code changed: unrecorded -> {upgraded.short}"


def start_together(database_url: str, site_id: int, digest: str, monkeypatch) -> list[int]:
    """Two processes' start-ups at once, as gunicorn's workers start: each its own app, engine and connections.

    Both read the current notice before either writes (they meet where each hashes the content it will publish),
    so both race for the same version number. Returns how many versions each start-up published.
    """
    meet = threading.Barrier(2)
    content_hash = notices.content_hash
    raced = []

    def hash_together(content):
        meet.wait(timeout=30)
        raced.append(True)
        return content_hash(content)

    monkeypatch.setattr(notices, "content_hash", hash_together)
    published: list[int] = []
    failures: list[BaseException] = []

    def start(app):
        with app.app_context():
            try:
                published.append(len(notices.record_banner_code(digest)))
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                failures.append(exc)
            finally:
                db.session.remove()
                db.engine.dispose()

    threads = [threading.Thread(target=start, args=(make_app(database_url),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert raced == [True, True]  # both meant to publish version 2
    return sorted(published)


def test_two_start_ups_at_once_publish_one_version(app, database_url, site, upgraded, monkeypatch):
    assert start_together(database_url, site.id, upgraded.digest, monkeypatch) == [0, 1]
    assert [(n.version, n.content["banner"]["bundle"]) for n in versions(site.id)][1:] == [(2, upgraded.digest)]


@pytest.mark.postgres
def test_two_start_ups_at_once_publish_one_version_on_postgresql(postgres_url, monkeypatch, tmp_path):
    app = make_app(postgres_url)
    try:
        with app.app_context():
            site = sites.create_site("shop", "Shop", origins=[ORIGIN])
            notices.publish_notice(site)
            db.session.commit()
            upgraded = upgrade(monkeypatch, tmp_path)
            assert start_together(postgres_url, site.id, upgraded.digest, monkeypatch) == [0, 1]
            assert [n.version for n in versions(site.id)] == [1, 2]
            db.session.remove()
            db.engine.dispose()
    finally:
        clear_database(postgres_url)


@pytest.mark.parametrize(
    "url, reason",
    [
        # `cmp db upgrade` runs on a database like this one.
        ("sqlite:///{tmp}/empty.sqlite3", "no such table: notice_versions"),
        # Nothing listens on the discard port.
        ("postgresql+psycopg://postgres@127.0.0.1:9/cmp", "connection"),
    ],
    ids=["unmigrated", "unreachable"],
)
def test_a_database_not_ready_does_not_stop_the_start_and_the_log_says_why(tmp_path, url, reason):
    app = make_app(url.format(tmp=tmp_path))
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger = logging.getLogger("cmp.banner")
    logger.addHandler(handler)
    try:
        record_code(app)
    finally:
        logger.removeHandler(handler)
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in seen] == [
        ("WARNING", "banner code not recorded in the notices")
    ]
    assert reason in seen[0].getMessage()


def _environment(database_url: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CMP_")}
    environment.update(CMP_ENV="testing", CMP_DATABASE_URL=database_url, CMP_LOG_LEVEL="WARNING")
    return environment


def test_the_wsgi_entry_point_records_the_code_it_serves(app, database_url, site, tmp_path):
    """gunicorn's start: `import wsgi` in a process whose banner sources are the next release's."""
    source = next_release(tmp_path)
    probe = (
        "import functools, pathlib, sys\n"
        "from cmp.banner import bundle\n"
        "bundle.current = functools.cache(lambda: bundle.build(pathlib.Path(sys.argv[1])))\n"
        "import wsgi\n"
        "print(bundle.current().digest)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, str(source)],
        cwd=ROOT,
        env=_environment(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    served = result.stdout.strip()
    assert served == bundle.build(source).digest
    assert [(n.version, n.content["banner"]["bundle"]) for n in versions(site.id)][1:] == [(2, served)]


def test_cmp_run_records_the_code_before_serving(app, database_url, site, upgraded, monkeypatch):
    served = []

    def run_simple(host, port, application, **options):
        # The development server would start here: the notice must already name the code.
        with application.app_context():
            served.append(notices.current_notice(sites.get_site("shop")).content["banner"]["bundle"])
            db.session.remove()

    monkeypatch.setattr("flask.cli.run_simple", run_simple)
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    result = CliRunner(env=_environment(url)).invoke(cli, ["run", "--no-reload", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert served == [upgraded.digest]
    assert [n.version for n in versions(site.id)] == [1, 2]
