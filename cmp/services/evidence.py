"""The evidence kept with each consent event: only what links a consent to its processing.

Evidence is best effort. It comes from whatever a browser, mail client or calling server sends, so each field
is coarsened, or dropped when it cannot be stored as it is; it is never the reason a decision fails to be recorded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from urllib.parse import urlsplit, urlunsplit

from user_agents import parse as parse_user_agent

from cmp.services.chain import evidence_digest

MAX_USER_AGENT = 512
# A browser or OS family name is a word or two; anything longer was lifted from the header, not recognised.
MAX_FAMILY = 64
# Four digits cover every browser's numbering (some count years). A larger "major version" is noise that could
# single a person out, and RFC 8785 (via I-JSON, RFC 7493 section 2.2) cannot hash integers past 2**53 anyway.
MAX_MAJOR = 9999
# The width of the event's page_url column.
MAX_PAGE_URL = 2048
PAGE_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Evidence:
    """Evidence for one event; `ip_prefix` is already truncated, `user_agent` already coarse."""

    ip_prefix: str | None = None
    user_agent: dict | None = None
    page_url: str | None = None
    country: str | None = None
    gpc: bool = False
    salt: str = field(default_factory=lambda: secrets.token_hex(16))

    @cached_property
    def digest(self) -> str:
        return evidence_digest(self.salt, self.ip_prefix, self.user_agent, self.page_url)


def coarse_user_agent(header: str | None) -> dict | None:
    """Browser family and major version, OS family, device type and bot flag; never the full string.

    None when the header is absent or the parser cannot read it.
    """
    if not header:
        return None
    try:
        return dict(_coarse_user_agent(header[:MAX_USER_AGENT]))
    except Exception:  # noqa: BLE001 - a parser of arbitrary text may fail in any way; the evidence is then dropped
        return None


@lru_cache(maxsize=4096)
def _coarse_user_agent(header: str) -> tuple:
    agent = parse_user_agent(header)
    if agent.is_bot:
        device = "bot"
    elif agent.is_tablet:
        device = "tablet"
    elif agent.is_mobile:
        device = "mobile"
    elif agent.is_pc:
        device = "desktop"
    else:
        device = "other"
    major = agent.browser.version[0] if agent.browser.version else None
    return (
        ("browser", _family(agent.browser.family)),
        ("browser_major", major if isinstance(major, int) and 0 <= major <= MAX_MAJOR else None),
        ("os", _family(agent.os.family)),
        ("device", device),
        ("bot", bool(agent.is_bot)),
    )


def _family(name) -> str | None:
    return name if _storable(name, MAX_FAMILY) else None


def strip_query(url: str | None) -> str | None:
    """The page's http(s) address without user info, query string or fragment, which may carry personal data.

    An address whose path cannot be stored keeps only its origin; one that is not an http(s) URL is dropped.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unclosed IPv6 bracket, for one
        return None
    scheme = parts.scheme.lower()
    # RFC 3986 section 3.2.1: user information ("user:password@") is a credential, never evidence.
    host = parts.netloc.rpartition("@")[2]
    if scheme not in PAGE_SCHEMES or not host:
        return None
    for page in (urlunsplit((scheme, host, parts.path, "", "")), f"{scheme}://{host}"):
        if _storable(page, MAX_PAGE_URL):
            return page
    return None


def _storable(text, limit: int) -> bool:
    """Text that any database and RFC 8785 take as it is: no control characters (NUL), no lone surrogates."""
    return isinstance(text, str) and 0 < len(text) <= limit and text.isprintable()
