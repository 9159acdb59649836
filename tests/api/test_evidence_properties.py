"""Evidence is best effort: no header value or page address a browser or mail client sends fails a decision.

Each route that records a person's own decision is driven with arbitrary User-Agent, Referer, X-Forwarded-For,
Accept-Language, Sec-GPC and country headers (and, for the banner, an arbitrary page_url): it never answers 5xx,
and a lookup afterwards answers with the decision it recorded.
"""

from __future__ import annotations

import itertools

import listunsub
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import running_app
from tests.helpers import ORIGIN, events, post_consent

PUBLIC = "https://cmp.example"
COUNTRY_HEADER = "CF-IPCountry"
HEADER_NAMES = ("User-Agent", "Referer", "X-Forwarded-For", "Accept-Language", "Sec-GPC", COUNTRY_HEADER)
HUGE_VERSION = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/99999999999999999999.0 Safari/537.36"

# Derandomised: the same examples on every run, so a failure is reproducible and a pass is not luck.
ROUTE_RUNS = settings(
    max_examples=25, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# What a WSGI server hands the app (PEP 3333): header values decoded as Latin-1, without line breaks.
header_text = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=80)
browser_like = st.builds(
    "Mozilla/5.0 (X11; Linux x86_64) {}/{}.{} Safari/537.36".format,
    st.sampled_from(["Chrome", "Firefox", "Version", "Edg", "OPR", "Googlebot"]),
    st.integers(min_value=0, max_value=10**40),
    st.integers(min_value=0, max_value=10**40),
)
addresses = st.lists(st.ip_addresses().map(str), max_size=3).map(", ".join)
header_values = {
    "User-Agent": st.one_of(header_text, browser_like),
    "X-Forwarded-For": st.one_of(header_text, addresses),
    "Sec-GPC": st.one_of(st.just("1"), header_text),
    COUNTRY_HEADER: st.one_of(st.sampled_from(["DE", "US", "XX", "ÄÖ", "de "]), header_text),
}
request_headers = st.fixed_dictionaries(
    {}, optional={name: header_values.get(name, header_text) for name in HEADER_NAMES}
)

# Any text without whitespace, which an http(s) URL may not hold: controls, NUL, lone surrogates, any script.
url_text = st.text(max_size=40).map(lambda text: "".join(text.split()))
http_urls = st.builds(
    "{}://{}{}{}/{}?{}#{}".format,
    st.sampled_from(["http", "https", "HTTPS"]),
    st.sampled_from(["", "ada:secret@", "ada@", ":@"]),
    st.sampled_from(["shop.example", "xn--bcher-kva.example", "[2001:db8::1]", "localhost", "192.0.2.1"]),
    st.sampled_from(["", ":8443", ":99999"]),
    url_text,
    url_text,
    url_text,
)
# Mostly addresses the schema takes as http(s) URLs, whose evidence must then be stored or dropped.
page_urls = st.one_of(st.none(), st.text(max_size=40), http_urls, http_urls)

addresses_to_subscribe = (f"person{n}@example.org" for n in itertools.count())


@pytest.fixture
def app(database_url):
    # The test client's own address is a trusted proxy, so forwarded addresses and the country header count.
    with running_app(
        database_url, CMP_PUBLIC_URL=PUBLIC, CMP_TRUSTED_PROXIES="127.0.0.0/8", CMP_COUNTRY_HEADER=COUNTRY_HEADER
    ) as app:
        yield app


def lookup(client, reader, subject: str, purpose: str) -> dict:
    query = {"site": "shop", "subject": subject, "purpose": purpose}
    response = client.get("/api/v1/consents/lookup", query_string=query, headers=reader)
    assert response.status_code == 200, response.json
    return response.json


@ROUTE_RUNS
@given(headers=request_headers, page_url=page_urls, accept=st.booleans())
@example(headers={"User-Agent": HUGE_VERSION}, page_url="https://ada:secret@shop.example/cart?x=1", accept=True)
@example(headers={"User-Agent": HUGE_VERSION}, page_url="https://shop.example/\x00\ud800", accept=False)
def test_the_banners_decision_is_recorded_whatever_the_evidence(client, site, reader, headers, page_url, accept):
    response = post_consent(
        client,
        action="accept_all" if accept else "reject_all",
        page_url=page_url,
        headers={**headers, "Origin": ORIGIN},
    )

    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code != 201:
        # A page_url that is not an http(s) URL is a malformed request, refused as such; nothing else is.
        assert response.status_code == 422
        assert set(response.json["error"]["details"]["fields"]) == {"page_url"}
        return
    answer = lookup(client, reader, f"visitor:{response.json['visitor_id']}", "analytics")
    assert answer["allowed"] is accept
    assert answer["event_id"] == response.json["event_id"]


def test_the_stored_page_address_keeps_no_credentials(client, site):
    page_url = "https://ada:secret@shop.example/cart?email=ada@example.org#top"
    response = post_consent(client, action="accept_all", page_url=page_url)

    assert response.status_code == 201
    [event] = events()
    assert event.page_url == "https://shop.example/cart"


@pytest.fixture
def subscribed(client, site, sender):
    """A new pending subscription each call: its address, confirmation URL and unsubscribe URL."""

    def subscribe() -> tuple[str, str, str]:
        address = next(addresses_to_subscribe)
        body = {"site": "shop", "email": address}
        pending = client.post("/api/v1/email/subscriptions", json=body, headers=sender)
        assert pending.status_code == 201, pending.json
        query = {"site": "shop", "email": address}
        links = client.get("/api/v1/email/headers", query_string=query, headers=sender)
        assert links.status_code == 200, links.json
        return address, pending.json["confirmation_url"], links.json["unsubscribe_url"]

    return subscribe


@ROUTE_RUNS
@given(confirm_headers=request_headers, unsubscribe_headers=request_headers)
@example(confirm_headers={"User-Agent": HUGE_VERSION}, unsubscribe_headers={"User-Agent": HUGE_VERSION})
def test_confirming_and_one_click_unsubscribing_are_recorded_whatever_the_evidence(
    client, reader, subscribed, confirm_headers, unsubscribe_headers
):
    address, confirmation, unsubscribe = subscribed()

    confirmed = client.post(confirmation, data={"confirm": "subscribe"}, headers=confirm_headers)
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    assert lookup(client, reader, f"email:{address}", "marketing_email")["allowed"] is True

    # RFC 8058 section 3.1: the mail client POSTs List-Unsubscribe=One-Click to the header's URI.
    one_click = listunsub.one_click_request(unsubscribe, form="urlencoded")
    unsubscribed = client.post(one_click.url, data=one_click.body, headers={**one_click.headers, **unsubscribe_headers})
    assert unsubscribed.status_code == 200, unsubscribed.get_data(as_text=True)
    answer = lookup(client, reader, f"email:{address}", "marketing_email")
    assert answer["allowed"] is False and answer["reason"] == "withdrawn"
