"""Sites, their purposes and their cookie inventory.

These functions flush but do not commit: the caller owns the unit of work, so a failure part-way
(seeding the demo, say) leaves nothing behind.
"""

from __future__ import annotations

import copy
import re
from urllib.parse import urlsplit

from sqlalchemy import select

from cmp.catalog import BUILTIN_LOCALES, DEFAULT_PURPOSES
from cmp.errors import NotFound
from cmp.extensions import db
from cmp.models import Cookie, Purpose, Site
from cmp.services import chain
from cmp.services.identifiers import InvalidIdentifier, parse_identifier
from cmp.vocabulary import CONSENT_MODE_TYPES, Channel, Decision, Mode, Storage, TrackerKind

# Always used with fullmatch (a bare match() lets "$" pass a trailing newline); anchored so the
# same patterns read right in the OpenAPI description.
SITE_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
PURPOSE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
COUNTRY = re.compile(r"^([A-Z]{2}|\*)$")
MAX_LIFETIME_SECONDS = 2**31 - 1  # about 68 years
# ITU-T E.123 notation: an optional +, digits, spaces and the usual separators.
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{3,31}$")
# The controller's identity, field -> longest value; name and email are always required.
CONTROLLER_FIELDS = {"name": 200, "email": 254, "address": 500, "country": 2, "phone": 32, "dpo": 500}
MAX_LABEL = 200  # a purpose's data category or recipient, in words


class SiteError(ValueError):
    """Invalid site configuration, explained for the operator."""


def get_site(key: str) -> Site | None:
    # No site has a key outside the pattern; asking would only reach the database (PostgreSQL refuses NUL bytes).
    if not SITE_KEY.fullmatch(key):
        return None
    return db.session.scalars(select(Site).where(Site.key == key)).first()


def require_site(key: str) -> Site:
    """The site, or `NotFound` (404 through the API)."""
    site = get_site(key)
    if site is None:
        raise NotFound("unknown_site", f"no site {key!r}", {"site": key})
    return site


def list_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.key)))


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` as browsers send it in the Origin header: lower case, IDNA, no default port."""
    invalid = SiteError(f"{origin!r} is not an origin (scheme://host[:port], no path)")
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise invalid
    if parts.query or parts.fragment or parts.username or parts.password:
        raise invalid
    try:
        port = parts.port
        host = parts.hostname.encode("idna").decode("ascii") if ":" not in parts.hostname else f"[{parts.hostname}]"
    except (ValueError, UnicodeError):
        raise invalid from None
    if port == 0:
        raise invalid
    default_port = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default_port else ""
    return f"{parts.scheme}://{host}{suffix}"


def _origins(origins) -> list[str]:
    return list(dict.fromkeys(normalise_origin(o) for o in origins))


def _locales(locales: list[str]) -> list[str]:
    for locale in locales:
        if not LOCALE.fullmatch(locale):
            raise SiteError(f"{locale!r} is not a language tag such as en, de or zh-CN")
    return list(dict.fromkeys(locales))


def _jurisdiction(overrides: dict[str, str]) -> dict[str, str]:
    result = {}
    for country, mode in overrides.items():
        country = country.strip().upper()
        if not COUNTRY.fullmatch(country):
            raise SiteError(f"{country!r} is not an ISO 3166 country code (or * for all others)")
        try:
            result[country] = Mode(mode.strip().lower()).value
        except ValueError:
            raise SiteError(f"{mode!r} is not a mode; use opt_in, opt_out or notice_only") from None
    return result


def create_site(
    key: str,
    name: str,
    *,
    origins: list[str] = (),
    locales: list[str] = BUILTIN_LOCALES,
    default_locale: str | None = None,
    policy_url: str | None = None,
    jurisdiction: dict[str, str] | None = None,
    seed_purposes: bool = True,
) -> Site:
    """Create a site with the purposes seeded from the policy and an empty chain."""
    if not SITE_KEY.fullmatch(key):
        raise SiteError(f"{key!r} is not a site key: lower-case letters, digits and hyphens")
    if get_site(key) is not None:
        raise SiteError(f"site {key!r} already exists")
    locales = _locales(list(locales)) or list(BUILTIN_LOCALES)
    default_locale = default_locale or locales[0]
    if default_locale not in locales:
        raise SiteError(f"default locale {default_locale!r} is not one of {locales}")
    site = Site(
        key=key,
        name=name,
        allowed_origins=_origins(origins),
        locales=locales,
        default_locale=default_locale,
        policy_url=_url(policy_url),
        jurisdiction_overrides=_jurisdiction(jurisdiction or {}),
        texts={},
    )
    db.session.add(site)
    if seed_purposes:
        for position, spec in enumerate(DEFAULT_PURPOSES):
            spec = copy.deepcopy(spec)
            site.purposes.append(Purpose(position=position, **{"double_opt_in": False, "gpc": False, **spec}))
    db.session.flush()
    chain.start_chain(site)
    db.session.flush()
    return site


def update_site(
    site: Site,
    *,
    name: str | None = None,
    origins: list[str] | None = None,
    locales: list[str] | None = None,
    default_locale: str | None = None,
    policy_url: str | None = None,
    jurisdiction: dict[str, str] | None = None,
    controller: dict[str, str | None] | None = None,
) -> Site:
    """Change a site's settings; what the banner shows changes with the next published notice."""
    if name:
        site.name = name
    if origins is not None:
        site.allowed_origins = _origins(origins)
    if locales:
        site.locales = _locales(locales)
    if default_locale:
        site.default_locale = default_locale
    if site.default_locale not in site.locales:
        raise SiteError(f"default locale {site.default_locale!r} is not one of {site.locales}")
    if policy_url is not None:
        site.policy_url = _url(policy_url)
    if jurisdiction is not None:
        site.jurisdiction_overrides = {**site.jurisdiction_overrides, **_jurisdiction(jurisdiction)}
    if controller:
        set_controller(site, controller)
    db.session.flush()
    return site


def set_controller(site: Site, changes: dict[str, str | None]) -> dict[str, str]:
    """Change the controller's identity that receipts name: given fields replace, empty ones are removed.

    GDPR Art. 13(1)(a): the controller's identity and contact details, so a name and an email are required;
    address, country (ISO 3166-1 alpha-2), phone and the data protection officer's contact (Art. 13(1)(b)) are not.
    """
    unknown = set(changes) - set(CONTROLLER_FIELDS)
    if unknown:
        raise SiteError(f"unknown controller fields: {', '.join(sorted(unknown))}")
    controller = {**(site.controller or {}), **changes}
    controller = {field: value.strip() for field, value in controller.items() if value and value.strip()}
    for field in ("name", "email"):
        if field not in controller:
            raise SiteError(f"the controller needs a {field}")
    try:
        parse_identifier(f"email:{controller['email']}")
    except InvalidIdentifier:
        raise SiteError(f"{controller['email']!r} is not an email address") from None
    if "country" in controller:
        controller["country"] = controller["country"].upper()
        if not COUNTRY.fullmatch(controller["country"]) or controller["country"] == "*":
            raise SiteError(f"{controller['country']!r} is not an ISO 3166 country code such as DE or CN")
    if "phone" in controller and not PHONE.fullmatch(controller["phone"]):
        raise SiteError(f"{controller['phone']!r} is not a phone number such as +49 30 1234567")
    for field, value in controller.items():
        if len(value) > CONTROLLER_FIELDS[field]:
            raise SiteError(f"the controller's {field} is longer than {CONTROLLER_FIELDS[field]} characters")
        if not value.isprintable():
            raise SiteError(f"the controller's {field} holds line breaks or control characters")
    site.controller = controller
    return controller


def _url(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SiteError(f"{value!r} is not an http(s) URL")
    return value


def add_purpose(
    site: Site,
    key: str,
    *,
    texts: dict[str, dict[str, str]],
    channel: str = Channel.WEB,
    refusable: bool = True,
    default_opt_in: str = Decision.DENIED,
    default_opt_out: str = Decision.DENIED,
    default_notice_only: str = Decision.GRANTED,
    gpc: bool = False,
    double_opt_in: bool = False,
    consent_mode: list[str] = (),
    pii_categories: list[str] = (),
    recipients: list[str] = (),
) -> Purpose:
    """Add a site-defined purpose (for example `partner_sharing` or `cross_border_transfer`)."""
    if not PURPOSE_KEY.fullmatch(key):
        raise SiteError(f"{key!r} is not a purpose key: lower-case letters, digits and underscores")
    if site.purpose(key) is not None:
        raise SiteError(f"site {site.key!r} already has purpose {key!r}")
    if site.default_locale not in texts or not texts[site.default_locale].get("name"):
        raise SiteError(f"purpose {key!r} needs a name in the site's default locale {site.default_locale!r}")
    for locale in texts:
        _locales([locale])
    for value in (default_opt_in, default_opt_out, default_notice_only):
        Decision(value)
    if not refusable and Decision.DENIED in (default_opt_in, default_opt_out, default_notice_only):
        raise SiteError("a purpose that cannot be refused is granted in every mode")
    if double_opt_in and Decision.GRANTED in (default_opt_in, default_opt_out, default_notice_only):
        raise SiteError("a purpose that needs double opt-in cannot be granted by default")
    unknown = set(consent_mode) - set(CONSENT_MODE_TYPES)
    if unknown:
        raise SiteError(f"unknown Consent Mode types: {', '.join(sorted(unknown))}")
    pii_categories, recipients = _labels(pii_categories, "data category"), _labels(recipients, "recipient")
    purpose = Purpose(
        key=key,
        position=max((p.position for p in site.purposes), default=-1) + 1,
        channel=Channel(channel).value,
        refusable=refusable,
        default_opt_in=default_opt_in,
        default_opt_out=default_opt_out,
        default_notice_only=default_notice_only,
        gpc=gpc,
        double_opt_in=double_opt_in,
        consent_mode=list(consent_mode),
        texts=texts,
        pii_categories=pii_categories,
        recipients=recipients,
    )
    site.purposes.append(purpose)
    db.session.flush()
    return purpose


def _labels(values, what: str) -> list[str]:
    labels = list(dict.fromkeys(value.strip() for value in values))
    for label in labels:
        if not label or len(label) > MAX_LABEL or not label.isprintable():
            raise SiteError(f"a {what} is 1 to {MAX_LABEL} printable characters, got {label!r}")
    return labels


def add_cookie(
    site: Site,
    name: str,
    *,
    purpose: str,
    provider: str,
    storage: str,
    lifetime_seconds: int | None = None,
    domain: str | None = None,
    kind: str = TrackerKind.COOKIE,
    descriptions: dict[str, str] | None = None,
) -> Cookie:
    """Add a cookie, storage key or pixel to the site's inventory."""
    owner = site.purpose(purpose)
    if owner is None:
        raise SiteError(f"site {site.key!r} has no purpose {purpose!r}")
    storage = Storage(storage).value
    if storage == Storage.SESSION and lifetime_seconds is not None:
        raise SiteError("a session cookie has no lifetime")
    if storage == Storage.PERSISTENT and not lifetime_seconds:
        raise SiteError("a persistent cookie needs a lifetime")
    if lifetime_seconds is not None and not 0 < lifetime_seconds <= MAX_LIFETIME_SECONDS:
        raise SiteError("a cookie lifetime is between one second and 68 years")
    if any(c.name == name and c.provider == provider for c in site.cookies):
        raise SiteError(f"{name!r} from {provider!r} is already in the inventory")
    cookie = Cookie(
        name=name,
        provider=provider,
        purpose=owner,
        storage=storage,
        lifetime_seconds=lifetime_seconds,
        domain=domain,
        kind=TrackerKind(kind).value,
        descriptions=descriptions or {},
    )
    site.cookies.append(cookie)
    db.session.flush()
    return cookie
