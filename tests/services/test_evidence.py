"""The evidence kept with an event: coarse, storable, and never a reason for a decision to fail."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.services.evidence import Evidence, coarse_user_agent, strip_query

BOUNDED = settings(max_examples=200, derandomize=True, deadline=None)


def test_an_impossible_major_version_is_dropped_and_the_rest_kept():
    agent = coarse_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/99999999999999999999.0 Safari/537.36")

    assert agent == {"browser": "Chrome", "browser_major": None, "os": "Windows", "device": "desktop", "bot": False}
    assert len(Evidence(user_agent=agent).digest) == 64


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://ada:secret@shop.example/cart?email=ada@example.org#top", "https://shop.example/cart"),
        ("https://ada@shop.example:8443/", "https://shop.example:8443/"),
        ("HTTPS://shop.example/help", "https://shop.example/help"),
        ("https://shop.example/a\x00b", "https://shop.example"),
        ("https://shop.example/\ud800", "https://shop.example"),
        ("https://shop.example/" + "a" * 2048, "https://shop.example"),
        ("https://[2001:db8::1/", None),
        ("javascript:alert(1)", None),
        ("https:///path-without-host", None),
        ("shop.example/help", None),
        ("", None),
    ],
)
def test_a_page_address_keeps_only_scheme_host_and_path(url, stored):
    assert strip_query(url) == stored


@BOUNDED
@given(st.text(max_size=300))
def test_any_address_is_stored_without_credentials_query_or_fragment_or_dropped(url):
    stored = strip_query(url)
    if stored is not None:
        scheme, _, rest = stored.partition("://")
        assert scheme in ("http", "https")
        assert not {"@", "?", "#"} & set(rest.split("/", 1)[0]) and "?" not in rest and "#" not in rest
        assert stored.isprintable() and len(stored) <= 2048


user_agents = st.one_of(
    st.text(max_size=200),
    st.builds(
        "Mozilla/5.0 ({}) {}/{}.0 {}".format,
        st.text(max_size=30),
        st.sampled_from(["Chrome", "Firefox", "Version", "Googlebot", "Opera", "curl"]),
        st.one_of(st.integers(min_value=-1, max_value=10**30).map(str), st.text(max_size=10)),
        st.text(max_size=30),
    ),
)


@BOUNDED
@given(user_agents, st.text(max_size=100))
def test_any_header_and_address_make_evidence_that_hashes(header, url):
    agent = coarse_user_agent(header)
    evidence = Evidence(ip_prefix="203.0.113.0", user_agent=agent, page_url=strip_query(url))

    assert len(evidence.digest) == 64
    if agent is not None:
        assert agent["browser_major"] is None or 0 <= agent["browser_major"] <= 9999
        assert all(value is None or value.isprintable() for value in (agent["browser"], agent["os"]))
