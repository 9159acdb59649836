"""Two clicks on one confirmation button at the same moment record one confirmation."""

from __future__ import annotations

from types import SimpleNamespace

import sqlalchemy as sa

from cmp.extensions import db
from cmp.models import ConsentEvent
from cmp.services import email
from tests.api.test_email import ask, confirm, pending
from tests.helpers import bearer, counts


def test_a_click_that_read_the_pending_state_before_another_confirmed_records_nothing(client, site, monkeypatch):
    sender, reader = bearer("email:write"), bearer("consent:read")
    confirmation = pending(client, sender)
    subscribed = db.session.scalar(sa.select(ConsentEvent.id).where(ConsentEvent.action == "subscribe"))
    assert confirm(client, confirmation).status_code == 200
    before = counts()

    read_state = email._state

    def as_read_before_the_first_click_committed(site_, subject_id, purpose):
        row = read_state(site_, subject_id, purpose)
        if row is not None and row.action == "confirm" and not stale.used:
            stale.used = True
            return SimpleNamespace(**{**row._asdict(), "action": "subscribe", "event_id": subscribed})
        return row

    stale = SimpleNamespace(used=False)
    monkeypatch.setattr(email, "_state", as_read_before_the_first_click_committed)

    again = confirm(client, confirmation)
    assert stale.used  # the second click did pass the early check
    assert again.status_code == 200
    assert counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).where(ConsentEvent.action == "confirm")) == 1
    assert ask(client, reader)["allowed"] is True
