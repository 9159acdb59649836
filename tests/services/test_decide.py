"""The lookup rule, case by case: what each state row and subject answers, and which reason wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from cmp.services.lookup import ADULT, SubjectFlags, decide
from cmp.vocabulary import Action, Decision, GivenBy

NOW = datetime(2026, 6, 1, tzinfo=UTC)
RESTRICTED, CHILD = SubjectFlags(restricted=True), SubjectFlags(child=True)


def row(decision="granted", action="accept_all", *, expires_in=timedelta(days=30), version=2, given_by=None):
    return SimpleNamespace(
        decision=decision,
        action=action,
        event_id="01JEVENT",
        notice_version=version,
        decided_at=NOW - timedelta(days=1),
        expires_at=NOW + expires_in,
        given_by=given_by,
    )


CASES = [
    (row(), ADULT, 2, True, "granted"),
    (None, ADULT, 2, False, "no_record"),
    (row(expires_in=timedelta(0)), ADULT, 2, False, "expired"),
    (row(version=1), ADULT, 2, False, "notice_changed"),
    (row("denied", "reject_all"), ADULT, 2, False, "denied"),
    (row("denied", "withdraw"), ADULT, 2, False, "withdrawn"),
    (row("denied", "unsubscribe"), ADULT, 2, False, "withdrawn"),
    (row("denied", "gpc"), ADULT, 2, False, "gpc"),
    (row("denied", "expire"), ADULT, 2, False, "expired"),
    # Restriction (GDPR Art. 18) stops everything, recorded or not, granted or not.
    (row(), RESTRICTED, 2, False, "restricted"),
    (None, RESTRICTED, 2, False, "restricted"),
    (row("denied", "gpc"), RESTRICTED, 2, False, "restricted"),
    (row(given_by="guardian"), SubjectFlags(restricted=True, child=True), 2, False, "restricted"),
    # A child's grant counts only when a guardian gave it (GDPR Art. 8).
    (row(), CHILD, 2, False, "guardian_required"),
    (row(given_by="guardian"), CHILD, 2, True, "granted"),
    (row("denied", "reject_all"), CHILD, 2, False, "denied"),
    (None, CHILD, 2, False, "no_record"),
    # A grant that would not count anyway says why first: asking the guardian again would not be enough.
    (row(expires_in=timedelta(0)), CHILD, 2, False, "expired"),
    (row(version=1, given_by="guardian"), CHILD, 2, False, "notice_changed"),
    # An adult's grant counts whoever gave it.
    (row(given_by="guardian"), ADULT, 2, True, "granted"),
]


@pytest.mark.parametrize(("state", "flags", "material", "allowed", "reason"), CASES)
def test_each_case_answers_as_the_rule_says(state, flags, material, allowed, reason):
    answer = decide(state, flags, NOW, material)
    assert (answer.allowed, answer.reason) == (allowed, reason)
    if state is not None:
        assert (answer.event_id, answer.decided_at, answer.expires_at) == (
            state.event_id,
            state.decided_at,
            state.expires_at,
        )


@pytest.mark.parametrize(("state", "flags", "material", "allowed", "reason"), [c for c in CASES if c[0] is not None])
def test_a_row_holding_the_vocabulary_members_answers_as_one_holding_their_values(
    state, flags, material, allowed, reason
):
    """The rule compares plain strings; a row read through the ORM or built by hand may hold the members."""
    members = SimpleNamespace(
        **{
            **vars(state),
            "decision": Decision(state.decision),
            "action": Action(state.action),
            "given_by": GivenBy(state.given_by) if state.given_by else None,
        }
    )
    assert decide(members, flags, NOW, material) == decide(state, flags, NOW, material)
    assert decide(members, flags, NOW, material)[:2] == (allowed, reason)
