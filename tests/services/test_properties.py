"""Properties of the services that must hold for any input, checked with hypothesis (bounded runs)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmp.errors import Invalid
from cmp.services import chain, notices
from cmp.services.consent import ConsentRequest, resolve_decisions
from cmp.services.evidence import Evidence, strip_query
from cmp.services.identifiers import Identifier, InvalidIdentifier, parse_identifier
from cmp.services.jurisdiction import client_ip, truncate_ip
from cmp.vocabulary import Action, Decision, IdentifierKind, Mode, Source

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@BOUNDED
@given(st.ip_addresses())
def test_a_stored_address_never_identifies_one_host(address):
    """IPv4 keeps its /24 and IPv6 its /48: everything after is zero, so no full address is ever stored."""
    prefix = ipaddress.ip_address(truncate_ip(str(address)))
    if prefix.version == 4:
        assert int(prefix) & 0xFF == 0
        assert prefix in ipaddress.ip_network(f"{address}/24", strict=False) or address.version == 6
    else:
        assert int(prefix) & ((1 << 80) - 1) == 0


@BOUNDED
@given(st.ip_addresses(v=4).map(str), st.lists(st.ip_addresses().map(str), max_size=4).map(", ".join))
def test_an_untrusted_client_cannot_choose_its_address(peer, forwarded):
    assert client_ip(peer, forwarded, []) == peer


@BOUNDED
@given(
    st.from_regex(
        r"https?://[a-z]{1,10}\.example(/[a-z0-9/]{0,20})?(\?[a-z=&@.]{0,30})?(#[a-z]{0,10})?", fullmatch=True
    )
)
def test_page_urls_lose_query_and_fragment(url):
    stored = strip_query(url)
    assert "?" not in stored and "#" not in stored
    assert url.startswith(stored)


@BOUNDED
@given(st.text(max_size=60))
def test_any_text_parses_to_an_identifier_or_a_clear_refusal(text):
    try:
        identifier = parse_identifier(text)
    except InvalidIdentifier:
        return
    assert identifier.kind in set(IdentifierKind)
    if identifier.kind is IdentifierKind.EMAIL:
        assert identifier.value == identifier.value.lower()
    # Digests are stable per site and differ between sites.
    one = identifier.digest("key", "shop")
    assert one == identifier.digest("key", "shop") != identifier.digest("key", "blog")


ACTIONS = [a for a in Action if a not in (Action.ERASE,)]


@pytest.fixture
def content(site):
    return notices.notice_content(site)


def test_no_decision_set_breaks_the_consent_rules(site, content):
    purposes = {p["key"]: p for p in content["purposes"]}
    choices = st.dictionaries(st.sampled_from(sorted(purposes)), st.sampled_from(["granted", "denied"]), max_size=6)

    @BOUNDED
    @given(
        st.sampled_from(ACTIONS),
        st.sampled_from([Source.BANNER, Source.API]),
        choices,
        st.sampled_from(list(Mode)),
        st.booleans(),
    )
    def check(action, source, given_decisions, mode, gpc):
        request = ConsentRequest(
            site=site,
            identifier=Identifier(IdentifierKind.USER, "1"),
            action=action,
            source=source,
            decisions=given_decisions,
            evidence=replace(Evidence(), gpc=gpc),
        )
        try:
            decisions, by_gpc = resolve_decisions(request, content, mode)
        except Invalid:
            return  # refused as a whole: nothing is written
        for key, value in decisions.items():
            purpose = purposes[key]
            # What cannot be refused is never recorded as refused.
            assert purpose["refusable"] or value == Decision.GRANTED
            # A double opt-in purpose is granted only by a confirmation.
            if purpose["double_opt_in"] and value == Decision.GRANTED:
                assert action == Action.CONFIRM
            # Global Privacy Control in opt-out mode leaves no sale/sharing purpose granted, and never grants.
            if gpc and mode == Mode.OPT_OUT and purpose["gpc"]:
                assert value == Decision.DENIED
            if key in by_gpc:
                assert value == Decision.DENIED
        if source == Source.BANNER:
            assert all(purposes[key]["channel"] == "web" for key in decisions)
        if action in (Action.REJECT_ALL, Action.WITHDRAW):
            assert {v for k, v in decisions.items() if purposes[k]["refusable"]} == {Decision.DENIED}

    check()


def _sealed_chain(length: int) -> list[SimpleNamespace]:
    previous, events = chain.GENESIS_HASH, []
    for seq in range(1, length + 1):
        event = SimpleNamespace(
            id=f"01J{seq:023d}",
            seq=seq,
            subject_id=f"s{seq % 3}",
            action="accept_all" if seq % 2 else "reject_all",
            source="banner",
            decisions={"analytics": "granted" if seq % 2 else "denied"},
            notice_version=1,
            notice_hash="a" * 64,
            locale="en",
            mode="opt_in",
            country="DE",
            gpc=False,
            received_at=None,
            expires_at=None,
            given_by=None,
            evidence_salt=None,
            ip_prefix=None,
            user_agent=None,
            page_url=None,
            evidence_digest=chain.evidence_digest(None, None, None, None),
            prev_hash=previous,
        )
        event.hash = chain.event_hash(event, "shop")
        previous = event.hash
        events.append(event)
    return events


MUTATIONS = {
    "action": "withdraw",
    "decisions": {"analytics": "granted", "marketing_email": "granted"},
    "subject_id": "someone-else",
    "notice_version": 2,
    "country": "US",
    "gpc": True,
    "given_by": "guardian",
    "evidence_digest": "b" * 64,
}


@BOUNDED
@given(st.integers(min_value=1, max_value=12), st.data())
def test_any_single_edit_anywhere_in_a_chain_is_caught_at_that_event(length, data):
    events = _sealed_chain(length)
    assert chain.check_events(events, "shop").ok
    target = data.draw(st.integers(min_value=0, max_value=length - 1))
    field, value = data.draw(st.sampled_from(sorted(MUTATIONS.items())))
    if getattr(events[target], field) == value:
        return
    setattr(events[target], field, value)
    result = chain.check_events(events, "shop")
    assert not result.ok and result.first_bad == events[target].id


@BOUNDED
@given(st.integers(min_value=2, max_value=12), st.data())
def test_any_deletion_or_swap_is_caught(length, data):
    events = _sealed_chain(length)
    first = data.draw(st.integers(min_value=0, max_value=length - 2))
    swapped = [*events[:first], events[first + 1], events[first], *events[first + 2 :]]
    assert not chain.check_events(swapped, "shop").ok
    removed = events[:first] + events[first + 1 :]
    assert not chain.check_events(removed, "shop", head_seq=length, head_hash=events[-1].hash).ok
