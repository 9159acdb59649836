"""Where a request comes from, and which rule (mode) applies there."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

import geoip2.database
import geoip2.errors

from cmp.vocabulary import Mode

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

EEA = frozenset("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO".split())
# Countries whose law requires consent before non-essential processing or storage (the EU/EEA under the ePrivacy
# Directive Art. 5(3), the UK under PECR reg. 6, and CH, BR, KR, CN): a site may put them on a weaker mode only
# with a recorded acknowledgement (services.sites).
PRIOR_CONSENT = EEA | {"GB", "CH", "BR", "KR", "CN"}
# SPEC "Modes": opt-in where the law requires prior consent (and for unknown countries); opt-out for the US.
DEFAULT_MODES: dict[str, Mode] = {
    **dict.fromkeys(PRIOR_CONSENT, Mode.OPT_IN),
    "US": Mode.OPT_OUT,
}
# Countries the map does not name get the strictest rule unless a site says otherwise ("*").
FALLBACK_MODE = Mode.OPT_IN
# GDPR Art. 8(1): the age of digital consent is 16 unless a member state sets a lower one, not below 13.
CHILD_AGE_DEFAULT = 16
CHILD_AGES = range(13, 17)


def mode_for(country: str | None, overrides: Mapping[str, str] | None = None) -> Mode:
    """The mode for a country under a site's overrides; an unknown country is always opt-in."""
    if country is None:
        return Mode.OPT_IN
    overrides = overrides or {}
    if country in overrides:
        return Mode(overrides[country])
    if country in DEFAULT_MODES:
        return DEFAULT_MODES[country]
    return Mode(overrides.get("*", FALLBACK_MODE))


# From the most protective mode to the least: what runs before a visitor chooses grows down the list.
STRICTNESS = (Mode.OPT_IN, Mode.OPT_OUT, Mode.NOTICE_ONLY)


def weakened(overrides: Mapping[str, str]) -> dict[Mode, list[str]]:
    """The prior-consent countries that `overrides` put on a weaker mode than the default map, by that mode.

    "*" is left out: it applies only to countries the default map does not name (see `mode_for`), and the map
    names every prior-consent country, so no wildcard can reach one.
    """
    result: dict[Mode, list[str]] = {}
    for country, mode in sorted(overrides.items()):
        mode = Mode(mode)
        if country in PRIOR_CONSENT and STRICTNESS.index(mode) > STRICTNESS.index(DEFAULT_MODES[country]):
            result.setdefault(mode, []).append(country)
    return result


def child_age(country: str | None, child_ages: Mapping[str, int]) -> int:
    """The age of digital consent for a country under a site's setting: its own, else the site's "*", else 16."""
    if country is not None and country in child_ages:
        return child_ages[country]
    return child_ages.get("*", CHILD_AGE_DEFAULT)


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str | None:
    """The client's address: walk X-Forwarded-For from the right, past trusted proxies only.

    A header from an untrusted peer is ignored, so no client can choose its own address. A hop that
    is not an address breaks the chain of trust: the client is then unknown rather than a proxy.
    """
    address = _parse_ip(remote_addr)
    if address is None:
        return None
    if _is_trusted(address, trusted):
        hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _parse_ip(hop)
            if address is None:
                return None
            if not _is_trusted(address, trusted):
                break
    return str(_unmapped(address))


def peer_is_trusted(remote_addr: str | None, trusted: Sequence[Network]) -> bool:
    address = _parse_ip(remote_addr)
    return address is not None and _is_trusted(address, trusted)


def truncate_ip(address: str | None) -> str | None:
    """Keep only the network: IPv4 /24, IPv6 /48 (EDPB 05/2020 paras 104-106)."""
    parsed = _parse_ip(address)
    if parsed is None:
        return None
    parsed = _unmapped(parsed)
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False).network_address)


def _parse_ip(value: str | None):
    if not value:
        return None
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.5:443"
        value = value.split(":")[0]
    try:
        return ipaddress.ip_address(value.split("%")[0])
    except ValueError:
        return None


def _unmapped(address):
    """`::ffff:192.0.2.1` is the IPv4 address 192.0.2.1."""
    return address.ipv4_mapped if address.version == 6 and address.ipv4_mapped else address


def _is_trusted(address, trusted: Sequence[Network]) -> bool:
    address = _unmapped(address)
    return any(address.version == network.version and address in network for network in trusted)


class CountryLocator(Protocol):
    def country(self, address: str | None) -> str | None: ...


class GeoIPLocator:
    """Country of an address from a MaxMind database (Country, City or Enterprise)."""

    def __init__(self, path: str):
        self._reader = geoip2.database.Reader(path)
        database_type = self._reader.metadata().database_type
        # geoip2 5.x refuses reader.country() on a City database: dispatch on the type.
        if "City" in database_type:
            self._lookup = self._reader.city
        elif "Enterprise" in database_type:
            self._lookup = self._reader.enterprise
        elif "Country" in database_type:
            self._lookup = self._reader.country
        else:
            raise ValueError(f"{path}: a {database_type} database has no country data")
        self.database_type = database_type

    def country(self, address: str | None) -> str | None:
        if not address:
            return None
        try:
            return self._lookup(address).country.iso_code
        except (geoip2.errors.AddressNotFoundError, ValueError):
            return None

    def close(self) -> None:
        self._reader.close()


class NoLocator:
    """No database configured: every country is unknown, so every request is opt-in."""

    def country(self, address: str | None) -> str | None:
        return None


def normalise_country(value: str | None) -> str | None:
    """A CDN header's country code, or None for its 'unknown' and 'Tor' markers."""
    if not value:
        return None
    value = value.strip().upper()
    # ISO 3166-1 alpha-2 is two ASCII letters; str.isalpha alone would let "ÄÖ" through.
    if len(value) != 2 or not (value.isascii() and value.isalpha()) or value in {"XX", "T1", "ZZ", "A1", "A2", "O1"}:
        return None
    return value
