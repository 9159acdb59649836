"""A witness of a site's log: it cosigns a checkpoint only if it is consistent with every one it accepted before.

The witness runs on the auditor's machine, away from the log's database, and keeps one thing: the last checkpoint
it accepted. A newer one of the same size must have the same root; a larger one must come with a consistency
proof that the accepted tree is its prefix; a smaller one is a rollback. Anything else means the log showed two
histories (a split view) or rewrote its own, and the witness refuses to sign, keeping what it holds as the
evidence. A log that rewrites its database and re-signs its checkpoints therefore cannot get them cosigned.

The HTTP side is passed in (`Fetch`, `Post`), so the same logic runs against a server or a test client.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cmp.services import merkle, notes

Fetch = Callable[[str], bytes]
"""GET a path below the log's address (`checkpoint`, `proofs/consistency?old=1&new=2`); the body, or WitnessError."""

Post = Callable[[str, dict], None]
"""POST a JSON body to a path below the log's address; WitnessError unless the log accepted it."""

TIMEOUT_SECONDS = 30


class WitnessError(Exception):
    """The witness will not cosign; the message says why."""


class SplitView(WitnessError):
    """Two different trees of the same size, both signed by the log."""


class Rollback(WitnessError):
    """A checkpoint smaller than one the witness already accepted."""


class Inconsistent(WitnessError):
    """A larger tree that does not extend the accepted one."""


@dataclass(frozen=True)
class Accepted:
    """A checkpoint the witness accepted: the note as served, its parsed body, and the witness's cosignature."""

    note: str
    checkpoint: notes.Checkpoint
    cosignature: str
    previous_size: int | None


def load_state(path: Path) -> notes.Checkpoint | None:
    """The last accepted checkpoint, or None before the first one."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        return notes.Checkpoint.parse(saved["checkpoint"])
    except (ValueError, KeyError, TypeError) as exc:
        raise WitnessError(f"the state file {path} is not a witness state: {exc}") from None


def save_state(path: Path, checkpoint: notes.Checkpoint) -> None:
    """Replace the state in one rename, so a crash leaves either the old state or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"checkpoint": checkpoint.body()}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_checkpoint(note: str, log_verifier: notes.Verifier) -> notes.Checkpoint:
    """The checkpoint in a note the log signed (other signatures, such as cosignatures, are left unchecked)."""
    try:
        return notes.Checkpoint.parse(notes.open_note(note, [log_verifier]).text)
    except notes.NoteError as exc:
        raise WitnessError(f"the checkpoint does not verify under the log key: {exc}") from None


def check_extends(old: notes.Checkpoint, new: notes.Checkpoint, fetch: Fetch) -> None:
    """Raise unless `new` is `old` or a tree that contains it as a prefix."""
    if new.origin != old.origin:
        raise WitnessError(f"the checkpoint is of origin {new.origin!r}, the witness follows {old.origin!r}")
    if new.size < old.size:
        raise Rollback(f"the log shows a tree of {new.size} entries after one of {old.size} was accepted (rollback)")
    if new.size == old.size:
        if new.root != old.root:
            raise SplitView(
                f"split view: two different trees of size {new.size} are signed by the log "
                f"(accepted root {b64(old.root)}, now {b64(new.root)})"
            )
        return
    if old.size == 0:
        return
    proof = _consistency_proof(fetch, old.size, new.size)
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise Inconsistent(
            f"the tree of {new.size} entries does not extend the accepted tree of {old.size} "
            "(the consistency proof fails: the log's history was rewritten)"
        )


def _consistency_proof(fetch: Fetch, old: int, new: int) -> list[bytes]:
    try:
        body = json.loads(fetch(f"proofs/consistency?old={old}&new={new}"))
        return [base64.b64decode(h, validate=True) for h in body["hashes"]]
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise Inconsistent(f"the log's consistency proof from {old} to {new} is unreadable: {exc}") from None


def witness(
    fetch: Fetch,
    log_verifier: notes.Verifier,
    signer: notes.CosignatureSigner,
    state: Path,
    now: int,
    post: Post | None = None,
) -> Accepted:
    """Fetch the log's latest checkpoint, check it against the accepted one, keep it, cosign it (and post it)."""
    note = fetch("checkpoint").decode("utf-8")
    checkpoint = open_checkpoint(note, log_verifier)
    previous = load_state(state)
    if previous is not None:
        check_extends(previous, checkpoint, fetch)
    save_state(state, checkpoint)
    cosignature = notes.cosign(note, signer, now)
    if post is not None:
        post("cosignatures", {"size": checkpoint.size, "cosignature": cosignature})
    return Accepted(note, checkpoint, cosignature, previous.size if previous else None)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- over HTTP ----------------------------------------------------------------------------------------------------


def http_fetch(log_url: str) -> Fetch:
    """GET below `log_url` (the site's log address, such as https://cmp.example/api/v1/sites/shop/log)."""
    base = log_url.rstrip("/")

    def fetch(path: str) -> bytes:
        return _send(urllib.request.Request(f"{base}/{path}", method="GET"))

    return fetch


def http_post(log_url: str) -> Post:
    base = log_url.rstrip("/")

    def post(path: str, body: dict) -> None:
        request = urllib.request.Request(
            f"{base}/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        _send(request)

    return post


def _send(request: urllib.request.Request) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - the auditor's URL
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise WitnessError(f"{request.method} {request.full_url}: HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise WitnessError(f"{request.method} {request.full_url}: {exc.reason}") from None
