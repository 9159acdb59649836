"""What erasure promises, checked in the database: nothing reachable only by a lost link, nothing after an erasure.

The hash chain (`chain.verify_site`) proves no event was changed; it cannot see records that should not exist.
An erased subject keeps its events and nothing else (policy section 4, GDPR Art. 17): a current-state row or
email activity of a subject no identifier names is data about a person that access and erasure can no longer
reach, and an event after a subject's `erase` event was recorded about someone already erased.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select

from cmp.extensions import db
from cmp.models import (
    ConsentEvent,
    ConsentState,
    EmailActivity,
    Site,
    Subject,
    SubjectIdentifier,
    UnsubscribeLink,
)
from cmp.services.rights import ERASED_WITH_LINKS, FLAGS
from cmp.vocabulary import Action

# How many ids a finding names: enough to start looking, never a dump of the table.
EXAMPLES = 5


@dataclass(frozen=True)
class Finding:
    code: str
    description: str
    count: int  # rows found
    examples_of: str  # "subjects" or "events"
    examples: list[str]  # random subject or event ids, never an identifier

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "description": self.description,
            "count": self.count,
            "examples_of": self.examples_of,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class Integrity:
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {"ok": self.ok, "findings": [finding.as_dict() for finding in self.findings]}


# Each kind of record erasure deletes with the identifier links (rights.ERASED_WITH_LINKS), as a finding names it.
FINDINGS = {
    ConsentState: ("state_without_identifier", "current-state rows of subjects no identifier names"),
    EmailActivity: ("email_activity_without_identifier", "email opens or clicks of subjects no identifier names"),
    UnsubscribeLink: ("unsubscribe_link_without_identifier", "unsubscribe links of subjects no identifier names"),
}
# A kind erasure learns to delete without a finding here fails at import, not silently in an audit.
UNLINKED = tuple((model, *FINDINGS[model]) for model in ERASED_WITH_LINKS)


def check_site(site: Site) -> Integrity:
    """Every finding for one site; none when erasure kept its promises."""
    checks = [(code, description, "subjects", _unlinked(model, site.id)) for model, code, description in UNLINKED]
    checks.append(
        (
            "marks_without_identifier",
            "subjects no identifier names still marked restricted or a child",
            "subjects",
            _marked_unlinked(site.id),
        )
    )
    checks.append(
        ("event_after_erasure", "events recorded after their subject's erasure", "events", _after_erasure(site.id))
    )
    findings = [_finding(*check) for check in checks]
    return Integrity([finding for finding in findings if finding.count])


def _unlinked(model, site_id: int) -> Select:
    """The subject id of each `model` row whose subject has no identifier link."""
    linked = select(SubjectIdentifier.id).where(
        SubjectIdentifier.site_id == model.site_id, SubjectIdentifier.subject_id == model.subject_id
    )
    return select(model.subject_id.label("id")).where(model.site_id == site_id, ~linked.exists())


def _marked_unlinked(site_id: int) -> Select:
    """The id of each subject still marked (rights.FLAGS: restricted, a child) while no identifier names it."""
    linked = select(SubjectIdentifier.id).where(
        SubjectIdentifier.site_id == Subject.site_id, SubjectIdentifier.subject_id == Subject.id
    )
    marked = or_(*(getattr(Subject, flag).is_(True) for flag in FLAGS))
    return select(Subject.id.label("id")).where(Subject.site_id == site_id, marked, ~linked.exists())


def _after_erasure(site_id: int) -> Select:
    """The id of each event whose subject has an `erase` event earlier in the log.

    An event still pending (no place yet) comes after every integrated one, so it is found as soon as it is
    written; an erasure still pending is compared once the sequencer places it.
    """
    events = ConsentEvent.__table__
    erased = (
        select(events.c.subject_id, func.min(events.c.seq).label("seq"))
        .where(events.c.site_id == site_id, events.c.action == Action.ERASE.value, events.c.seq.is_not(None))
        .group_by(events.c.subject_id)
        .subquery()
    )
    return (
        select(events.c.id)
        .join(
            erased,
            (events.c.subject_id == erased.c.subject_id) & (events.c.seq.is_(None) | (events.c.seq > erased.c.seq)),
        )
        .where(events.c.site_id == site_id)
    )


def _finding(code: str, description: str, examples_of: str, query: Select) -> Finding:
    found = query.subquery()
    count = db.session.scalar(select(func.count()).select_from(found))
    examples = db.session.scalars(select(found.c.id).distinct().order_by(found.c.id).limit(EXAMPLES)) if count else []
    return Finding(code, description, count, examples_of, list(examples))
