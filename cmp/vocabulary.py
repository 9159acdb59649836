"""The domain's enumerations and the shapes of its names, defined once.

Records refer to these values: only add here, never remove or rename. Services and schemas both read them,
so a key the API accepts is a key the domain accepts.
"""

import re
from enum import StrEnum


class Decision(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class Action(StrEnum):
    ACCEPT_ALL = "accept_all"
    REJECT_ALL = "reject_all"
    SAVE = "save"
    WITHDRAW = "withdraw"
    GPC = "gpc"
    DEFAULT = "default"
    SUBSCRIBE = "subscribe"
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    EXPIRE = "expire"
    ERASE = "erase"
    ADMIN = "admin"
    # People's rights beyond access, withdrawal and erasure (GDPR Art. 16, 18 and 8); their events decide nothing.
    RESTRICT = "restrict"
    UNRESTRICT = "unrestrict"
    CORRECT = "correct"
    CHILD = "child"
    ADULT = "adult"


class Source(StrEnum):
    BANNER = "banner"
    API = "api"
    EMAIL_LINK = "email_link"
    ONE_CLICK = "one_click"
    IMPORT = "import"
    SYSTEM = "system"


class Mode(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"
    NOTICE_ONLY = "notice_only"


class Channel(StrEnum):
    """Where consent for a purpose is collected: the banner, or the email lifecycle."""

    WEB = "web"
    EMAIL = "email"


class Storage(StrEnum):
    SESSION = "session"
    PERSISTENT = "persistent"


class TrackerKind(StrEnum):
    COOKIE = "cookie"
    LOCAL_STORAGE = "local_storage"
    PIXEL = "pixel"


class IdentifierKind(StrEnum):
    VISITOR = "visitor"
    USER = "user"
    EMAIL = "email"


class GivenBy(StrEnum):
    """Who gave a decision when it was not the subject themself (policy section 6: a child's parent or guardian)."""

    GUARDIAN = "guardian"


class Scope(StrEnum):
    CONSENT_READ = "consent:read"
    CONSENT_WRITE = "consent:write"
    EMAIL_WRITE = "email:write"
    AUDIT_READ = "audit:read"
    DSR = "dsr"
    ADMIN = "admin"


# Actions a visitor can take in the banner; the rest come from servers, links or the system.
BANNER_ACTIONS = frozenset(
    {Action.ACCEPT_ALL, Action.REJECT_ALL, Action.SAVE, Action.WITHDRAW, Action.GPC, Action.DEFAULT}
)
# Actions a server may record with a `consent:write` key (`gpc`: the person's signal, seen by the site's server).
SERVER_ACTIONS = frozenset(
    {Action.ACCEPT_ALL, Action.REJECT_ALL, Action.SAVE, Action.WITHDRAW, Action.ADMIN, Action.GPC}
)
SERVER_SOURCES = frozenset({Source.API, Source.IMPORT})

# Google Consent Mode v2 consent types (developers.google.com/tag-platform/security/guides/consent).
CONSENT_MODE_TYPES = (
    "ad_storage",
    "ad_user_data",
    "ad_personalization",
    "analytics_storage",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)

# The shapes of names. Always used with fullmatch (a bare match() lets "$" pass a trailing newline); anchored so
# the same patterns read right in the OpenAPI description.
SITE_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PURPOSE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
COUNTRY = re.compile(r"^([A-Z]{2}|\*)$")
# C0 and C1 control characters (NUL, ESC, NEL, ...): never part of an account id or an address, and PostgreSQL
# refuses NUL in text. A character class body, so schemas can put the same rule in their patterns.
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"

# How much one request may ask for.
MAX_SUBJECTS = 10_000  # subjects in one bulk lookup
MAX_PERIOD_DAYS = 366  # days in one dashboard period: one page of daily bars stays readable

# Formats a consent log is exported in.
EXPORT_FORMATS = ("jsonl", "csv")
