"""The evidence kept with each consent event: only what links a consent to its processing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from urllib.parse import urlsplit, urlunsplit

from user_agents import parse as parse_user_agent

from cmp.services.chain import evidence_digest

MAX_USER_AGENT = 512


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
    """Browser family and major version, OS family, device type and bot flag; never the full string."""
    if not header:
        return None
    return dict(_coarse_user_agent(header[:MAX_USER_AGENT]))


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
        ("browser", agent.browser.family),
        ("browser_major", major),
        ("os", agent.os.family),
        ("device", device),
        ("bot", bool(agent.is_bot)),
    )


def strip_query(url: str | None) -> str | None:
    """The page address without query string or fragment, which may carry personal data."""
    if not url:
        return None
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
