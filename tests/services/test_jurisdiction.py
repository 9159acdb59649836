"""Jurisdiction: the mode for a country, which overrides weaken prior consent, the age of digital consent, the
client's address behind proxies, IP truncation and GeoIP lookups."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from cmp.services.jurisdiction import (
    PRIOR_CONSENT,
    GeoIPLocator,
    NoLocator,
    child_age,
    client_ip,
    mode_for,
    normalise_country,
    truncate_ip,
    weakened,
)
from cmp.vocabulary import Mode
from tests.geoip import SHARED_DATABASES, write_geoip_database

EU = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
EEA_ONLY = ["IS", "LI", "NO"]
OTHER_OPT_IN = ["GB", "CH", "BR", "KR", "CN"]

WRITTEN_TYPES = ("GeoLite2-Country", "GeoIP2-Country", "GeoLite2-City", "GeoIP2-Enterprise")
SHARED_ADDRESSES = [
    ("89.160.20.112", "SE", Mode.OPT_IN),
    ("216.160.83.56", "US", Mode.OPT_OUT),
    ("2.125.160.216", "GB", Mode.OPT_IN),
    ("8.8.8.8", None, Mode.OPT_IN),
]

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


@pytest.fixture(scope="session")
def written_databases(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("geoip")
    return {kind: write_geoip_database(folder / f"{kind}.mmdb", kind) for kind in WRITTEN_TYPES}


@pytest.mark.parametrize("country", EU + EEA_ONLY)
def test_eu_and_eea_are_opt_in(country):
    assert mode_for(country) == Mode.OPT_IN


@pytest.mark.parametrize("country", OTHER_OPT_IN)
def test_uk_ch_br_kr_cn_are_opt_in(country):
    assert mode_for(country) == Mode.OPT_IN


def test_us_is_opt_out():
    assert mode_for("US") == Mode.OPT_OUT


@pytest.mark.parametrize("country", ["JP", "AU", "IN", "ZA", "CA"])
def test_unlisted_countries_fall_back_to_opt_in(country):
    assert mode_for(country) == Mode.OPT_IN


@pytest.mark.parametrize("overrides", [None, {}, {"*": "opt_out"}, {"*": "notice_only"}, {"US": "opt_out"}])
def test_unknown_country_is_always_opt_in(overrides):
    assert mode_for(None, overrides) == Mode.OPT_IN


def test_notice_only_is_used_nowhere_by_default():
    assert all(mode_for(c) != Mode.NOTICE_ONLY for c in EU + EEA_ONLY + OTHER_OPT_IN + ["US", "JP"])


def test_country_override_replaces_the_default():
    # A weaker mode for DE is stored only with an acknowledgement (tests/services/test_jurisdiction_guard.py);
    # once stored, it applies.
    overrides = {"US": "opt_in", "DE": "notice_only", "JP": "opt_out"}
    assert mode_for("US", overrides) == Mode.OPT_IN
    assert mode_for("DE", overrides) == Mode.NOTICE_ONLY
    assert mode_for("JP", overrides) == Mode.OPT_OUT
    assert mode_for("FR", overrides) == Mode.OPT_IN


def test_star_override_covers_countries_the_map_does_not_name():
    overrides = {"*": "notice_only"}
    assert mode_for("JP", overrides) == Mode.NOTICE_ONLY
    assert mode_for("DE", overrides) == Mode.OPT_IN
    assert mode_for("US", overrides) == Mode.OPT_OUT


def test_country_override_beats_star():
    assert mode_for("JP", {"*": "notice_only", "JP": "opt_out"}) == Mode.OPT_OUT


def test_prior_consent_countries_are_the_eea_and_the_other_opt_in_countries():
    assert PRIOR_CONSENT == set(EU + EEA_ONLY + OTHER_OPT_IN)


@pytest.mark.parametrize("mode", ["opt_out", "notice_only"])
def test_no_wildcard_reaches_a_prior_consent_country(mode):
    """Why the guard leaves "*" alone: the default map names every prior-consent country."""
    assert {mode_for(country, {"*": mode}) for country in PRIOR_CONSENT} == {Mode.OPT_IN}
    assert weakened({"*": mode}) == {}


def test_weakened_names_prior_consent_countries_put_below_opt_in_by_mode():
    overrides = {"FR": "notice_only", "DE": "opt_out", "CN": "opt_out", "GB": "opt_in", "US": "notice_only"}
    assert weakened(overrides) == {Mode.OPT_OUT: ["CN", "DE"], Mode.NOTICE_ONLY: ["FR"]}


def test_weakened_ignores_strengthening():
    assert weakened({"US": "opt_in", "DE": "opt_in", "*": "opt_in"}) == {}


@pytest.mark.parametrize(
    ("country", "ages", "age"),
    [
        ("DE", {}, 16),
        (None, {}, 16),
        ("FR", {"FR": 15, "*": 13}, 15),
        ("BE", {"FR": 15, "*": 13}, 13),
        ("BE", {"FR": 15}, 16),
        (None, {"FR": 15, "*": 14}, 14),
    ],
    ids=["gdpr-default", "unknown-country", "own-age", "site-wildcard", "no-wildcard", "unknown-takes-wildcard"],
)
def test_child_age_is_the_countrys_else_the_sites_wildcard_else_16(country, ages, age):
    assert child_age(country, ages) == age


def test_forwarded_for_ignored_without_trusted_proxies():
    assert client_ip("10.0.0.1", "198.51.100.7", []) == "10.0.0.1"


def test_forwarded_for_ignored_from_untrusted_peer():
    assert client_ip("192.0.2.10", "198.51.100.7", TRUSTED) == "192.0.2.10"


def test_forwarded_for_believed_from_trusted_proxy():
    assert client_ip("10.0.0.1", "198.51.100.7", TRUSTED) == "198.51.100.7"


def test_walks_from_the_right_past_trusted_proxies():
    assert client_ip("10.0.0.1", "198.51.100.7, 10.2.0.1, 10.3.0.1", TRUSTED) == "198.51.100.7"


def test_spoofed_left_most_entry_is_not_believed():
    assert client_ip("10.0.0.1", "192.0.2.66, 203.0.113.9, 10.2.0.1", TRUSTED) == "203.0.113.9"


def test_trusted_ipv6_proxy_and_ipv4_mapped_peer():
    assert client_ip("2001:db8:ffff::1", "2001:db8:1::5", TRUSTED) == "2001:db8:1::5"
    assert client_ip("::ffff:10.0.0.1", "198.51.100.7", TRUSTED) == "198.51.100.7"


def test_ports_and_brackets_are_stripped():
    assert client_ip("10.0.0.1", "198.51.100.7:5123", TRUSTED) == "198.51.100.7"
    assert client_ip("10.0.0.1", "[2001:db8:1::5]:443", TRUSTED) == "2001:db8:1::5"


@pytest.mark.parametrize("forwarded_for", [None, "", " , ,"])
def test_a_trusted_proxy_without_forwarded_for_is_the_client(forwarded_for):
    assert client_ip("10.0.0.1", forwarded_for, TRUSTED) == "10.0.0.1"


@pytest.mark.parametrize("forwarded_for", ["unknown", "not-an-ip, 999.1.1.1", "198.51.100.7, garbage, 10.2.0.1"])
def test_a_hop_that_is_not_an_address_makes_the_client_unknown(forwarded_for):
    assert client_ip("10.0.0.1", forwarded_for, TRUSTED) is None


def test_ipv4_mapped_addresses_are_returned_as_ipv4():
    assert client_ip("::ffff:198.51.100.20", None, TRUSTED) == "198.51.100.20"
    assert client_ip("10.0.0.1", "::ffff:198.51.100.20", TRUSTED) == "198.51.100.20"


@pytest.mark.parametrize("remote_addr", [None, "", "garbage"])
def test_unparseable_peer_has_no_address(remote_addr):
    assert client_ip(remote_addr, "198.51.100.7", TRUSTED) is None


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.77:8080", "203.0.113.0"),
        ("2001:db8:abcd:1234:5678::1", "2001:db8:abcd::"),
        ("[2001:db8:abcd:ffff::9]:443", "2001:db8:abcd::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),
    ],
)
def test_truncate_ip_keeps_only_the_network(address, prefix):
    assert truncate_ip(address) == prefix


@pytest.mark.parametrize("address", [None, "", "garbage", "256.1.1.1", "203.0.113"])
def test_truncate_invalid_ip_is_none(address):
    assert truncate_ip(address) is None


@pytest.mark.parametrize(("value", "country"), [("DE", "DE"), ("us", "US"), (" jp ", "JP")])
def test_normalise_country_upper_cases(value, country):
    assert normalise_country(value) == country


@pytest.mark.parametrize("value", [None, "", "XX", "T1", "ZZ", "A1", "A2", "O1", "xx", "USA", "D", "1A", "D-"])
def test_normalise_country_unknown_markers_are_none(value):
    assert normalise_country(value) is None


@pytest.mark.parametrize("database_type", WRITTEN_TYPES)
@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("192.0.2.10", "DE"),
        ("198.51.100.20", "US"),
        ("203.0.113.30", "JP"),
        ("127.0.0.1", "FR"),
        ("2001:db8::1", "NL"),
        ("8.8.8.8", None),
        ("127.0.0.2", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_written_database_resolves_countries(written_databases, database_type, address, country):
    locator = GeoIPLocator(str(written_databases[database_type]))
    try:
        assert locator.database_type == database_type
        assert locator.country(address) == country
    finally:
        locator.close()


def test_written_database_gives_the_mode(written_databases):
    locator = GeoIPLocator(str(written_databases["GeoLite2-City"]))
    try:
        assert mode_for(locator.country("198.51.100.20")) == Mode.OPT_OUT
        assert mode_for(locator.country("192.0.2.10")) == Mode.OPT_IN
        assert mode_for(locator.country("8.8.8.8")) == Mode.OPT_IN
    finally:
        locator.close()


def test_database_without_country_data_is_refused(tmp_path):
    path = tmp_path / "asn.mmdb"
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    writer.insert_network(IPSet(["192.0.2.0/24"]), {"autonomous_system_number": 64496})
    writer.to_db_file(str(path))
    with pytest.raises(ValueError, match="GeoLite2-ASN"):
        GeoIPLocator(str(path))


def test_no_locator_knows_no_country():
    assert NoLocator().country("198.51.100.20") is None


@pytest.mark.parametrize("filename", SHARED_DATABASES)
@pytest.mark.parametrize(("address", "country", "mode"), SHARED_ADDRESSES)
def test_maxmind_test_databases(shared_geoip, filename, address, country, mode):
    locator = GeoIPLocator(str(shared_geoip / filename))
    try:
        assert locator.country(address) == country
        assert mode_for(locator.country(address)) == mode
    finally:
        locator.close()


@pytest.mark.parametrize("value", ["ÄÖ", "ǅX", "XX", "T1", "D", "DEU", "1A"])
def test_normalise_country_refuses_what_is_not_a_country_code(value):
    assert normalise_country(value) is None
