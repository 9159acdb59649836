"""`cmp export` and `cmp verify --file`, as an operator and an auditor run them."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

import cmp as cmp_package
from cmp.cli import cli
from cmp.extensions import db
from cmp.services import notes, tlog
from tests.helpers import events, post_consent


@pytest.fixture
def logged(client, site):
    for action in ("accept_all", "reject_all", "accept_all"):
        assert post_consent(client, action=action).status_code == 201
    db.session.expire_all()
    return events()


def run(runner, command: str):
    return runner.invoke(args=shlex.split(command))


def test_export_to_stdout_keeps_progress_on_stderr(runner, site, logged):
    result = run(runner, "export --site shop")
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["entry"] for e in entries] == ["export", "event", "event", "event", "end"]
    assert "exporting events" in result.stderr


def test_export_to_a_file_then_verify_it(tmp_path, runner, site, logged):
    path = tmp_path / "export.csv"
    assert run(runner, f"export --format csv --output {path}").exit_code == 0
    result = run(runner, f"verify --file {path}")
    assert result.exit_code == 0, result.output
    assert result.output == "shop: ok, 3 events checked (tree checked against the signed checkpoint of 3)\n"


def test_export_notices_and_verify_with_them(tmp_path, runner, site, logged):
    events_path, notices_path = tmp_path / "events.jsonl", tmp_path / "notices.jsonl"
    assert run(runner, f"export -o {events_path}").exit_code == 0
    assert run(runner, f"export --notices -o {notices_path}").exit_code == 0
    assert json.loads(notices_path.read_text())["content_hash"] == logged[0].notice_hash
    result = run(runner, f"verify --file {events_path} --notices {notices_path} --json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True


def test_a_filtered_export_says_links_were_not_checkable(tmp_path, runner, site, logged):
    path = tmp_path / "export.jsonl"
    since = logged[1].received_at.isoformat()
    assert run(runner, f"export --from {since} --purpose analytics -o {path}").exit_code == 0
    result = run(runner, f"verify --file {path}")
    assert result.exit_code == 0
    assert "2 events checked (each event checked, its place in the log not checkable)" in result.output
    assert "its place in the log was not checkable" in result.output


def test_verify_file_exits_1_naming_the_first_bad_event(tmp_path, runner, site, logged):
    path = tmp_path / "export.jsonl"
    assert run(runner, f"export -o {path}").exit_code == 0
    text = path.read_text().splitlines()
    entry = json.loads(text[2])
    entry["decisions"]["analytics"] = "granted"
    text[2] = json.dumps(entry)
    path.write_text("\n".join(text) + "\n")
    result = run(runner, f"verify --file {path}")
    assert result.exit_code == 1
    assert f"shop: FAILED at event {logged[1].id} (seq 2): hash does not match" in result.output


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("export --from yesterday", "not an ISO 8601 time"),
        ("export --subject email:nope", "cannot be read"),
        ("export --from 2026-02-01 --to 2026-01-01", "before"),
        ("export --site nope", "no site"),
        ("export --format xml", "xml"),
        ("export --notices --purpose analytics", "--notices"),
    ],
)
def test_bad_export_options_write_nothing(tmp_path, runner, site, logged, command, message):
    path = tmp_path / "out.jsonl"
    result = run(runner, f"{command} -o {path}")
    assert result.exit_code != 0
    assert message in result.output
    assert not path.exists()


def test_offline_verify_needs_neither_settings_nor_a_database(tmp_path, runner, site, logged, monkeypatch):
    path = tmp_path / "export.jsonl"
    assert run(runner, f"export -o {path}").exit_code == 0

    def no_app(*args, **kwargs):
        raise AssertionError("offline verification built the app")

    # The console script as an auditor runs it elsewhere: no CMP_* settings, and no app may be built.
    monkeypatch.setattr(cmp_package, "create_app", no_app)
    offline = CliRunner(
        env={"CMP_DATABASE_URL": None, "CMP_SECRET_KEY": None, "CMP_HMAC_KEY": None, "CMP_LOG_KEY": None}
    )
    key = tlog.log_key().verifier_key  # the log's public key, which an auditor gets from the operator
    result = offline.invoke(cli, ["verify", "--file", str(path), "--key", key])
    assert result.exit_code == 0, result.output
    assert "shop: ok, 3 events checked" in result.output
    other = notes.generate_key("cmp.test")[1]
    result = offline.invoke(cli, ["verify", "--file", str(path), "--key", other])
    assert result.exit_code == 1 and "the checkpoint does not verify under the log's key cmp.test" in result.output
    path.write_text(path.read_text().replace(logged[0].hash, "f" * 64, 1))
    assert offline.invoke(cli, ["verify", "--file", str(path), "--key", key]).exit_code == 1


def test_verify_file_without_a_key_uses_the_apps_log_key(tmp_path, runner, site, logged):
    path = tmp_path / "export.jsonl"
    assert run(runner, f"export -o {path}").exit_code == 0
    assert run(runner, f"verify --file {path}").exit_code == 0
    forged = notes.generate_key("cmp.test")[1]
    result = run(runner, f"verify --file {path} --key {forged}")
    assert result.exit_code == 1 and "does not verify" in result.output
    assert run(runner, f"verify --file {path} --key not-a-key").exit_code == 2


def test_verify_without_a_file_still_checks_the_database(runner, site, logged):
    result = run(runner, "verify --site shop")
    assert (
        result.exit_code == 0
        and result.output == "shop: ok, 3 events checked (tree checked against the signed checkpoint of 3)\n"
    )
    assert run(runner, "verify --notices x.jsonl").exit_code != 0
