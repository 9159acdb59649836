"""Global Privacy Control on a server's write: CCPA regulations 7025(c)(3) make it an opt-out of sale and sharing."""

from __future__ import annotations

import pytest

from cmp.extensions import db
from cmp.services import notices, sites
from tests.helpers import bearer, counts, post_consent

CONSENTS = "/api/v1/sites/shop/consents"
LOOKUP = "/api/v1/consents/lookup"


@pytest.fixture
def sharing(site):
    """The shop sells or shares through a partner: a purpose Global Privacy Control refuses in opt-out regions."""
    sites.add_purpose(
        site, "partner_sharing", texts={"en": {"name": "Sharing with partners"}}, default_opt_out="granted", gpc=True
    )
    notices.publish_notice(site)
    db.session.commit()
    return site


def server_write(client, headers=None, **body):
    body = {"subject": "user:7", "country": "US", **body}
    return client.post(CONSENTS, json=body, headers={**bearer("consent:write"), **(headers or {})})


@pytest.mark.parametrize(
    "signal",
    [{"headers": {"Sec-GPC": "1"}}, {"gpc": True}],
    ids=["header", "body"],
)
@pytest.mark.parametrize(
    "decision",
    [{"action": "accept_all"}, {"decisions": {"partner_sharing": "granted"}}],
    ids=["accept_all", "save"],
)
def test_a_server_grant_of_sharing_with_gpc_in_opt_out_is_refused(client, sharing, signal, decision):
    before = counts()
    response = server_write(client, **signal, **decision)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "gpc_opt_out"
    assert response.json["error"]["details"] == {"purposes": ["partner_sharing"]}
    assert counts() == before


def test_a_server_grant_without_sharing_or_outside_opt_out_still_records(client, sharing):
    """Only sale/sharing is refused, and only where the signal is an opt-out (opt-out regions)."""
    analytics = server_write(client, headers={"Sec-GPC": "1"}, decisions={"analytics": "granted"})
    assert analytics.status_code == 201, analytics.json
    assert analytics.json["decisions"] == {"analytics": "granted"}
    # In opt-in regions nothing is shared without a grant anyway: the grant is the person's own opt-in.
    germany = server_write(
        client, subject="user:8", country="DE", headers={"Sec-GPC": "1"}, decisions={"partner_sharing": "granted"}
    )
    assert germany.status_code == 201, germany.json


def test_a_gpc_event_after_a_grant_is_looked_up_as_gpc(client, sharing):
    """A visitor granted sharing, then came back with the signal on: the banner's `gpc` event denies it at once."""
    granted = post_consent(client, action="save", decisions={"partner_sharing": "granted"}, notice_version=2)
    assert granted.status_code == 201, granted.json
    visitor = granted.json["visitor_id"]
    reader = bearer("consent:read")
    query = {"site": "shop", "subject": f"visitor:{visitor}", "purpose": "partner_sharing"}
    assert client.get(LOOKUP, query_string=query, headers=reader).json["reason"] == "granted"

    signal = post_consent(client, action="gpc", visitor_id=visitor, notice_version=2, headers={"Sec-GPC": "1"})
    assert signal.status_code == 201, signal.json
    assert signal.json["decisions"]["partner_sharing"] == "denied" and signal.json["action"] == "gpc"
    answer = client.get(LOOKUP, query_string=query, headers=reader).json
    assert (answer["allowed"], answer["reason"], answer["event_id"]) == (False, "gpc", signal.json["event_id"])
