"""`cmp log`, `cmp sequencer`, `cmp verify-receipt` and `cmp witness`, run as an operator, a visitor or an auditor
would run them. The offline commands are run where the app could not even start (production settings missing)."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cmp import ConfigError, create_app
from cmp.cli import cli
from cmp.extensions import db
from cmp.models import ChainHead, ConsentEvent, LogCosignature, LogWitness
from cmp.sequencer import Sequencer
from cmp.services import chain, notes, notices, sites, tlog
from cmp.services import witness as witnessing
from tests.conftest import running_app
from tests.helpers import ORIGIN, post_consent, receipt_paths, serving

CMP_SCRIPT = Path(sys.executable).with_name("cmp")


@pytest.fixture
def offline(monkeypatch):
    """Run the top-level `cmp` where building the app would fail: production, and no keys configured."""
    for name in ("CMP_SECRET_KEY", "CMP_HMAC_KEY", "CMP_LOG_KEY", "CMP_DATABASE_URL", "FLASK_APP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CMP_ENV", "production")

    def run(command: str, *more: str):
        return CliRunner().invoke(cli, [*shlex.split(command), *more], catch_exceptions=False)

    return run


def cmp(runner, command: str, *more: str):
    result = runner.invoke(args=[*shlex.split(command), *more])
    db.session.expire_all()
    return result


def line_after(output: str, prefix: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith(prefix)]
    return line[len(prefix) :]


# --- keys ---------------------------------------------------------------------------------------------------------


def test_keygen_makes_a_log_key_pair_without_the_app(offline):
    result = offline("log keygen --name cmp.example/log")

    assert result.exit_code == 0, result.output
    key = tlog.LogKey.load(line_after(result.output, "CMP_LOG_KEY="))
    assert key.name == "cmp.example/log"
    assert line_after(result.output, "verifier key: ") == key.verifier_key
    body = notes.Checkpoint(key.origin("shop"), 1, b"\0" * 32).body()
    notes.open_note(notes.sign_note(body, key.signer), [notes.Verifier.from_key(key.verifier_key)])


def test_the_printed_log_key_is_what_production_starts_with(offline, tmp_path):
    printed = offline("log keygen --name cmp.example/log").output
    settings = {
        "CMP_ENV": "production",
        "CMP_SECRET_KEY": "s" * 32,
        "CMP_HMAC_KEY": "h" * 32,
        "CMP_PUBLIC_URL": "https://cmp.example",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}",
    }

    with pytest.raises(ConfigError, match="CMP_LOG_KEY must be set in production"):
        create_app(settings)
    started = create_app({**settings, "CMP_LOG_KEY": line_after(printed, "CMP_LOG_KEY=")})

    assert started.extensions["cmp.log_key"].verifier_key == line_after(printed, "verifier key: ")


def test_keygen_makes_a_witness_key_pair(offline):
    result = offline("log keygen --witness --name auditor.example")

    assert result.exit_code == 0, result.output
    signer = notes.CosignatureSigner.from_private(line_after(result.output, "CMP_WITNESS_KEY="))
    assert line_after(result.output, "verifier key: ") == signer.verifier_key == signer.verifier().verifier_key
    assert "CMP_LOG_KEY" not in result.output


def test_keygen_refuses_a_name_no_note_can_carry(offline):
    result = offline("log keygen", "--name", "has space")

    assert result.exit_code == 2 and "must not contain spaces" in result.output


# --- witnesses and checkpoints ---------------------------------------------------------------------------------------


def test_witnesses_are_added_and_listed(runner, site):
    _, public = notes.generate_cosignature_key("auditor.example")

    added = cmp(runner, "log witness add shop", public)
    again = cmp(runner, "log witness add shop", public)
    listed = cmp(runner, "log witness list shop")

    assert added.exit_code == 0 and "witness auditor.example added" in added.output
    assert again.exit_code == 1 and "already accepts" in again.output
    assert listed.output == f"auditor.example\t{public}\n"
    assert [w.key for w in db.session.scalars(sa.select(LogWitness))] == [public]


@pytest.mark.parametrize("key", ["not-a-key", notes.generate_key("log.example")[1]])
def test_a_key_that_is_not_a_cosignature_key_is_refused(runner, site, key):
    result = cmp(runner, "log witness add shop", key)

    assert result.exit_code == 1 and "not a cosignature verifier key" in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LogWitness)) == 0


def test_witness_commands_name_an_unknown_site(runner, site):
    assert cmp(runner, "log witness list nowhere").exit_code == 2


def test_log_checkpoint_prints_the_latest_cosigned_checkpoint(runner, client, site):
    assert cmp(runner, "log checkpoint shop").exit_code == 1
    for _ in range(2):
        assert post_consent(client, action="accept_all").status_code == 201
    private, public = notes.generate_cosignature_key("auditor.example")
    cmp(runner, "log witness add shop", public)
    note = tlog.latest_cosigned(site.id).note
    line = notes.cosign(note, notes.CosignatureSigner.from_private(private), 1_700_000_000)
    assert client.post("/api/v1/sites/shop/log/cosignatures", json={"size": 2, "cosignature": line}).status_code == 201

    result = cmp(runner, "log checkpoint shop")

    assert result.exit_code == 0
    opened = notes.open_note(result.output, [tlog.log_key().verifier, notes.CosignatureVerifier.from_key(public)])
    assert len(opened.verified) == 2
    assert notes.Checkpoint.parse(opened.text).size == 2


# --- the sequencer -------------------------------------------------------------------------------------------------


@pytest.fixture
def unsequenced(database_url):
    """An app whose requests leave their events pending (CMP_SEQUENCER=off), with the `shop` site."""
    with running_app(database_url, CMP_SEQUENCER="off") as app:
        site = sites.create_site("shop", "Shop", origins=[ORIGIN], policy_url="https://shop.example/privacy")
        notices.publish_notice(site)
        db.session.commit()
        yield app


def pending_decisions(app, count: int) -> list[str]:
    """Record decisions that the sequencer has not integrated; the path of each one's receipt."""
    paths = receipt_paths(app.test_client(), count)
    db.session.expire_all()
    return paths


def pending_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ConsentEvent).where(ConsentEvent.seq.is_(None)))


def test_sequencer_once_integrates_what_is_pending_and_signs_a_checkpoint(unsequenced):
    pending_decisions(unsequenced, 3)
    assert pending_count() == 3

    result = cmp(unsequenced.test_cli_runner(), "sequencer --once")

    assert result.exit_code == 0 and "integrated 3 events" in result.output
    site = sites.get_site("shop")
    assert pending_count() == 0 and db.session.get(ChainHead, site.id).seq == 3
    assert tlog.latest_checkpoint(site.id).size == 3
    assert chain.verify_site(site).ok


def test_the_sequencer_runs_rounds_until_interrupted(unsequenced, monkeypatch):
    pending_decisions(unsequenced, 2)
    rounds = []
    one_round = Sequencer.run_once

    def interrupted_after_one(self):
        if rounds:
            raise KeyboardInterrupt
        rounds.append(one_round(self))
        return rounds[-1]

    monkeypatch.setattr(Sequencer, "run_once", interrupted_after_one)

    result = cmp(unsequenced.test_cli_runner(), "sequencer --interval 0.01")

    assert result.exit_code == 0 and "sequencer stopped" in result.output
    assert rounds == [2] and pending_count() == 0


# --- receipts ------------------------------------------------------------------------------------------------------


@pytest.fixture
def integrated_receipt(client, site) -> dict:
    """The receipt of the second of three decisions: integrated, with an inclusion proof of two hashes."""
    paths = []
    for _ in range(3):
        response = post_consent(client, action="accept_all")
        parts = urlsplit(response.json["receipt_url"])
        paths.append(f"{parts.path}?{parts.query}")
    receipt = client.get(paths[1]).json
    assert receipt["log"]["status"] == "integrated" and len(receipt["log"]["inclusionProof"]) == 2
    return receipt


def write(tmp_path: Path, receipt: dict) -> str:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    return str(path)


def verify(offline, tmp_path, receipt: dict, *more: str, key: str | None = None):
    return offline("verify-receipt", write(tmp_path, receipt), "--key", key or tlog.log_key().verifier_key, *more)


def test_an_integrated_receipt_verifies_from_the_file_alone(tmp_path, integrated_receipt):
    key = tlog.log_key().verifier_key

    result = run_cmp("verify-receipt", write(tmp_path, integrated_receipt), "--key", key, "--require-integrated")

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"ok: event {integrated_receipt['consentReceiptID']} is integrated in {tlog.log_key().origin('shop')} "
        "at index 1 of the signed tree of size 3\n"
    )


def test_a_pending_receipt_verifies_as_pending_unless_integration_is_required(unsequenced, offline, tmp_path):
    [path] = pending_decisions(unsequenced, 1)
    receipt = unsequenced.test_client().get(path).json
    assert receipt["log"]["status"] == "pending"

    accepted = verify(offline, tmp_path, receipt)
    required = verify(offline, tmp_path, receipt, "--require-integrated")

    assert accepted.exit_code == 0 and accepted.output.startswith("ok (pending): event ")
    assert required.exit_code == 1 and required.output.startswith("FAILED: event ") and "is pending" in required.output


def analytics(receipt: dict) -> dict:
    [purpose] = [p for p in receipt["services"][0]["purposes"] if p["purposeCategory"] == ["analytics"]]
    return purpose


def rehash(receipt: dict) -> None:
    receipt["eventHash"] = chain.sha256_hex(chain.canonical_json(receipt["log"]["entry"]))


def forge_entry(receipt: dict) -> None:
    """A consistent lie: the entry, its hash and the Kantara field all say denied; only the log's signature differs."""
    receipt["log"]["entry"]["decisions"]["analytics"] = "denied"
    analytics(receipt)["decision"] = "denied"
    rehash(receipt)


def signed_elsewhere(receipt: dict) -> None:
    other = notes.Signer.generate(tlog.log_key().name)
    text = notes.parse_note(receipt["log"]["signedEntry"]).text
    receipt["log"]["signedEntry"] = notes.sign_note(text, other)


def resized_checkpoint(receipt: dict) -> None:
    note = receipt["log"]["checkpoint"]
    receipt["log"]["checkpoint"] = note.replace("\n3\n", "\n4\n", 1)


def set_field(path: str, value) -> Callable[[dict], None]:
    def change(receipt: dict) -> None:
        *parents, last = path.split(".")
        target = receipt
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def replace_proof_hash(receipt: dict) -> None:
    receipt["log"]["inclusionProof"][0] = receipt["log"]["inclusionProof"][1]


TAMPERING = {
    "receipt id": (set_field("consentReceiptID", "evt_other"), "consentReceiptID 'evt_other' is not the logged"),
    "principal": (set_field("piiPrincipalId", "sub_other"), "piiPrincipalId 'sub_other' is not the logged"),
    "decision": (lambda r: analytics(r).update(decision="denied"), "decision for purpose 'analytics' reads 'denied'"),
    "action": (set_field("action", "reject_all"), "action 'reject_all' is not the logged entry's action"),
    "received at": (set_field("receivedAt", "2020-01-01T00:00:00.000000Z"), "receivedAt '2020-01-01T00:00:00"),
    "notice hash": (set_field("noticeHash", "0" * 64), "noticeHash '000"),
    "event hash": (set_field("eventHash", "0" * 64), "eventHash is not the SHA-256 of log.entry"),
    "entry": (set_field("log.entry.decisions", {"analytics": "denied"}), "eventHash is not the SHA-256 of log.entry"),
    "entry and hash": (forge_entry, "log.signedEntry names another event hash than eventHash"),
    "origin": (set_field("log.origin", "cmp.test/other"), "log.origin 'cmp.test/other' is not this key's log"),
    "signed entry": (signed_elsewhere, "log.signedEntry does not verify under the log key"),
    "status": (set_field("log.status", "done"), "log.status 'done' is neither"),
    "index": (set_field("log.index", 0), "does not place eventHash at index 0 of the signed tree of size 3"),
    "tree size": (set_field("log.treeSize", 4), "log.treeSize 4 is not the signed checkpoint's size 3"),
    "proof hash": (replace_proof_hash, "does not place eventHash at index 1"),
    "proof encoding": (set_field("log.inclusionProof", ["not base64!"]), "not base64"),
    "checkpoint": (resized_checkpoint, "log.checkpoint does not verify under the log key"),
    "no log": (set_field("log", None), "log is missing or not an object"),
}


@pytest.mark.parametrize("change", TAMPERING.values(), ids=TAMPERING.keys())
def test_every_altered_field_is_caught(offline, tmp_path, integrated_receipt, change):
    alter, message = change
    receipt = copy.deepcopy(integrated_receipt)
    alter(receipt)

    result = verify(offline, tmp_path, receipt)

    assert result.exit_code == 1
    assert result.output.startswith("FAILED: ") and message in result.output, result.output


def test_a_receipt_checked_with_another_key_fails(offline, tmp_path, integrated_receipt):
    same_name = notes.Signer.generate(tlog.log_key().name).verifier_key
    other_name = notes.generate_key("other.example")[1]

    impostor = verify(offline, tmp_path, integrated_receipt, key=same_name)
    elsewhere = verify(offline, tmp_path, integrated_receipt, key=other_name)
    garbage = verify(offline, tmp_path, integrated_receipt, key="garbage")

    assert impostor.exit_code == 1 and "log.signedEntry does not verify under the log key" in impostor.output
    assert elsewhere.exit_code == 1 and "is not this key's log of site 'shop'" in elsewhere.output
    assert garbage.exit_code == 1 and "the log key is not a signed-note verifier key" in garbage.output


def test_a_file_that_is_not_a_receipt_is_refused(offline, tmp_path):
    path = tmp_path / "receipt.json"
    path.write_text("[1, 2]")

    result = offline("verify-receipt", str(path), "--key", notes.generate_key("log.example")[1])

    assert result.exit_code == 1 and "is not a receipt" in result.output


# --- the witness, over HTTP ------------------------------------------------------------------------------------------


def run_cmp(*args: str) -> subprocess.CompletedProcess:
    """The installed `cmp` in a fresh process whose environment could not build the app."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("CMP_", "FLASK_"))}
    env["CMP_ENV"] = "production"
    return subprocess.run([str(CMP_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_witness_command_cosigns_a_growing_log_over_http_and_refuses_a_split_view(app, client, site, tmp_path):
    private, public = notes.generate_cosignature_key("auditor.example")
    tlog.add_witness(site, public)
    db.session.commit()
    state = tmp_path / "state.json"
    log_key = tlog.log_key().verifier_key

    with serving(app) as base:
        log_url = f"{base}/api/v1/sites/shop/log"
        key_file = tmp_path / "witness.key"
        key_file.write_text(private + "\n")
        witness = ("witness", "--log", log_url, "--log-key", log_key, "--key-file", str(key_file))
        witness += ("--state", str(state))
        outcomes = []
        for _ in range(2):
            for _ in range(2):
                assert post_consent(client, action="accept_all").status_code == 201
            db.session.close()
            outcomes.append(run_cmp(*witness, "--post"))
        forged = notes.Checkpoint(tlog.log_key().origin("shop"), 4, b"\x05" * 32)
        witnessing.save_state(state, forged)
        refused = run_cmp(*witness, "--post")

    assert [o.returncode for o in outcomes] == [0, 0], [o.stderr for o in outcomes]
    assert "size 2 (first checkpoint)" in outcomes[0].stderr
    assert "size 4 (consistent with size 2)" in outcomes[1].stderr
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LogCosignature)) == 2
    served = client.get("/api/v1/sites/shop/log/checkpoint").text
    assert served.endswith(outcomes[1].stdout)
    notes.open_note(served, [notes.CosignatureVerifier.from_key(public)])
    assert refused.returncode == 1 and "REFUSED: split view" in refused.stderr
    assert witnessing.load_state(state) == forged


def test_the_witness_command_reports_an_unreachable_log(tmp_path):
    _, log_key = notes.generate_key("log.example")
    private, _ = notes.generate_cosignature_key("auditor.example")

    result = CliRunner().invoke(
        cli,
        [
            "witness",
            "--log",
            "http://127.0.0.1:9/api/v1/sites/shop/log",
            "--log-key",
            log_key,
            "--state",
            str(tmp_path / "state.json"),
        ],
        env={"CMP_WITNESS_KEY": private},
    )

    assert result.exit_code == 1 and "REFUSED: GET http://127.0.0.1:9/api/v1/sites/shop/log/checkpoint" in result.output
    assert not (tmp_path / "state.json").exists()


def test_the_witness_command_takes_its_private_key_from_a_file_or_the_environment_never_an_argument(tmp_path):
    _, log_key = notes.generate_key("log.example")
    private, _ = notes.generate_cosignature_key("auditor.example")
    args = ["witness", "--log", "http://127.0.0.1:9/api/v1/sites/shop/log", "--log-key", log_key]
    args += ["--state", str(tmp_path / "state.json")]

    missing = CliRunner().invoke(cli, args, env={"CMP_WITNESS_KEY": ""})
    as_argument = CliRunner().invoke(cli, [*args, "--key", private])
    malformed = tmp_path / "witness.key"
    malformed.write_text("not a key\n")
    bad_file = CliRunner().invoke(cli, [*args, "--key-file", str(malformed)])

    assert missing.exit_code == 2 and "--key-file FILE, or CMP_WITNESS_KEY" in missing.output
    assert as_argument.exit_code == 2 and "No such option '--key'" in as_argument.output
    assert bad_file.exit_code == 2 and "bad key" in bad_file.output
    assert not (tmp_path / "state.json").exists()
