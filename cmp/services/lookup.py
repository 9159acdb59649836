"""May we act for this person and purpose? Answers from the current state, never from the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select

from cmp.errors import Conflict, Invalid
from cmp.extensions import db
from cmp.models import ConsentState, Site, Subject, SubjectIdentifier
from cmp.models.types import utcnow
from cmp.services.identifiers import Identifier, InvalidIdentifier, VisitorIds, new_subject_id
from cmp.services.notices import last_material_version
from cmp.vocabulary import Action, Decision

MAX_SUBJECTS = 10_000

WITHDRAWN = frozenset({Action.WITHDRAW.value, Action.UNSUBSCRIBE.value})


@dataclass(frozen=True)
class Answer:
    allowed: bool
    reason: str  # granted denied withdrawn expired notice_changed no_record gpc
    decided_at: datetime | None = None
    event_id: str | None = None
    notice_version: int | None = None
    expires_at: datetime | None = None

    def as_dict(self) -> dict:
        """Plain JSON-ready fields (AnswerSchema documents them; bulk answers skip marshmallow for speed)."""
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "decided_at": self.decided_at and self.decided_at.isoformat(),
            "event_id": self.event_id,
            "notice_version": self.notice_version,
            "expires_at": self.expires_at and self.expires_at.isoformat(),
        }


NO_RECORD = Answer(False, "no_record")


def answer(row, now: datetime, material_version: int | None) -> Answer:
    """The answer a current-state row gives; no row is never allowed."""
    if row is None:
        return NO_RECORD

    def made(allowed: bool, reason: str) -> Answer:
        return Answer(allowed, reason, row.decided_at, row.event_id, row.notice_version, row.expires_at)

    if row.decision == Decision.GRANTED:
        if row.expires_at is not None and row.expires_at <= now:
            return made(False, "expired")
        if material_version and (row.notice_version or 0) < material_version:
            return made(False, "notice_changed")
        return made(True, "granted")
    if row.action == Action.GPC:
        return made(False, "gpc")
    if row.action in WITHDRAWN:
        return made(False, "withdrawn")
    if row.action == Action.EXPIRE:
        return made(False, "expired")
    return made(False, "denied")


def _identifiers(site: Site, subjects: Sequence[str], visitor_ids: VisitorIds) -> list[Identifier]:
    """Parse every subject, or refuse them all, naming each bad one by its position (never echoing it)."""
    identifiers, invalid = [], {}
    for index, text in enumerate(subjects):
        try:
            identifiers.append(visitor_ids.identifier(site.key, text))
        except InvalidIdentifier as exc:
            invalid[str(index)] = str(exc)
    if invalid:
        raise Invalid("invalid_subject", f"{len(invalid)} subject(s) cannot be read", {"subjects": invalid})
    return identifiers


def lookup(
    site: Site,
    subjects: Sequence[str],
    purposes: Sequence[str],
    *,
    hmac_key: str,
    visitor_ids: VisitorIds,
    now: datetime | None = None,
) -> list[dict[str, Answer]]:
    """For each subject, in order, the answer per purpose: one query for the whole batch."""
    if len(subjects) > MAX_SUBJECTS:
        raise Invalid("too_many_subjects", f"at most {MAX_SUBJECTS} subjects per call", {"max": MAX_SUBJECTS})
    unknown = sorted(set(purposes) - {p.key for p in site.purposes})
    if unknown:
        raise Invalid("unknown_purpose", f"unknown purpose: {', '.join(unknown)}", {"purposes": unknown})
    digests = [identifier.digest(hmac_key, site.key) for identifier in _identifiers(site, subjects, visitor_ids)]
    rows: dict[tuple[str, str], object] = {}
    if digests:
        parameters = {"site_id": site.id, "digests": list(set(digests)), "purposes": list(purposes)}
        for row in db.session.execute(_STATE_BY_DIGEST, parameters):
            rows[(row.digest, row.purpose)] = row
    now = now or utcnow()
    material = last_material_version(site)
    return [{p: answer(rows.get((digest, p)), now, material) for p in purposes} for digest in digests]


_STATE_BY_DIGEST = (
    select(
        SubjectIdentifier.digest,
        ConsentState.purpose,
        ConsentState.decision,
        ConsentState.action,
        ConsentState.event_id,
        ConsentState.notice_version,
        ConsentState.decided_at,
        ConsentState.expires_at,
    )
    .join(
        ConsentState,
        (ConsentState.site_id == SubjectIdentifier.site_id) & (ConsentState.subject_id == SubjectIdentifier.subject_id),
    )
    .where(
        SubjectIdentifier.site_id == bindparam("site_id"),
        SubjectIdentifier.digest.in_(bindparam("digests", expanding=True)),
        ConsentState.purpose.in_(bindparam("purposes", expanding=True)),
    )
)


def link(site: Site, subjects: Sequence[str], *, hmac_key: str, visitor_ids: VisitorIds) -> str:
    """Make several identifiers name one subject (a logged-in visitor's banner consent then answers by user id).

    Identifiers already linked to two different subjects are refused rather than merged: their histories stay apart.
    """
    identifiers = _identifiers(site, subjects, visitor_ids)
    digests = {identifier.digest(hmac_key, site.key): identifier for identifier in identifiers}
    known = dict(
        db.session.execute(
            select(SubjectIdentifier.digest, SubjectIdentifier.subject_id).where(
                SubjectIdentifier.site_id == site.id, SubjectIdentifier.digest.in_(list(digests))
            )
        ).all()
    )
    owners = set(known.values())
    if len(owners) > 1:
        raise Conflict(
            "identifiers_conflict",
            "these identifiers already belong to different subjects; they are not merged",
            {"kinds": sorted({digests[d].kind.value for d in known})},
        )
    if owners:
        subject_id = owners.pop()
    else:
        subject_id = new_subject_id()
        db.session.execute(insert(Subject), {"id": subject_id, "site_id": site.id})
    missing = [d for d in digests if d not in known]
    if missing:
        db.session.execute(
            insert(SubjectIdentifier),
            [
                {"site_id": site.id, "subject_id": subject_id, "kind": digests[d].kind.value, "digest": d}
                for d in missing
            ],
        )
    return subject_id
