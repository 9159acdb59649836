"""MaxMind databases for tests: written on the fly with mmdb-writer, or MaxMind's own test files."""

from __future__ import annotations

from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet

# Documentation ranges (RFC 5737, RFC 3849) and loopback, resolved to chosen countries.
TEST_NETWORKS = {
    "192.0.2.0/24": "DE",
    "198.51.100.0/24": "US",
    "203.0.113.0/24": "JP",
    "127.0.0.1/32": "FR",
    "2001:db8::/32": "NL",
}
SHARED_DATABASES = ("GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb", "GeoIP2-City-Test.mmdb")


def write_geoip_database(path: Path, database_type: str = "GeoLite2-Country", networks=TEST_NETWORKS) -> Path:
    """A MaxMind DB of `database_type` that maps each network to its country, laid out as MaxMind's own."""
    writer = MMDBWriter(ip_version=6, database_type=database_type, languages=["en"], ipv4_compatible=True)
    for network, iso_code in networks.items():
        writer.insert_network(IPSet([network]), {"country": {"iso_code": iso_code, "names": {"en": iso_code}}})
    writer.to_db_file(str(path))
    return path
