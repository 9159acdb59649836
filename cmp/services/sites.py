"""Sites, their purposes and their cookie inventory.

These functions flush but do not commit: the caller owns the unit of work, so a failure part-way
(seeding the demo, say) leaves nothing behind.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from cmp.catalog import BUILTIN_LOCALES, DEFAULT_PURPOSES
from cmp.errors import Unknown
from cmp.extensions import db
from cmp.models import Cookie, JurisdictionAcknowledgement, Purpose, Site
from cmp.services import chain, jurisdiction
from cmp.services.identifiers import InvalidIdentifier, parse_identifier
from cmp.vocabulary import (
    CONSENT_MODE_TYPES,
    COUNTRY,
    LOCALE,
    PURPOSE_KEY,
    SITE_KEY,
    Channel,
    Decision,
    Mode,
    Storage,
    TrackerKind,
)

MAX_LIFETIME_SECONDS = 2**31 - 1  # about 68 years
# ITU-T E.123 notation: an optional +, digits, spaces and the usual separators.
PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{3,31}$")
# The controller's identity, field -> longest value; name and email are always required.
CONTROLLER_FIELDS = {"name": 200, "email": 254, "address": 500, "country": 2, "phone": 32, "dpo": 500}
MAX_LABEL = 200  # a purpose's data category or recipient, in words
MAX_REASON = 1000  # an acknowledgement's reason, in words
# A recipient written as an email address is: `Name <contact>`, the contact an address, phone number or URL.
RECIPIENT = re.compile(r"(?P<name>[^<>]+?)\s*<(?P<contact>[^<>]+)>")


class SiteError(ValueError):
    """Invalid site configuration, explained for the operator."""


@dataclass(frozen=True)
class Acknowledgement:
    """The operator's reason for putting prior-consent countries on a weaker mode, and how it was given ("cli")."""

    reason: str
    recorded_by: str


def get_site(key: str) -> Site | None:
    # No site has a key outside the pattern; asking would only reach the database (PostgreSQL refuses NUL bytes).
    if not SITE_KEY.fullmatch(key):
        return None
    return db.session.scalars(select(Site).where(Site.key == key)).first()


def require_site(key: str) -> Site:
    """The site, or `Unknown` (404 through the API)."""
    site = get_site(key)
    if site is None:
        raise Unknown("unknown_site", f"no site {key!r}", {"site": key})
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


def _jurisdiction(overrides: Mapping[str, str], acknowledgement: Acknowledgement | None) -> dict[str, str]:
    """Valid overrides, refused where they weaken a prior-consent country without an acknowledgement."""
    result = {}
    for country, mode in overrides.items():
        country = country.strip().upper()
        if not COUNTRY.fullmatch(country):
            raise SiteError(f"{country!r} is not an ISO 3166 country code (or * for all others)")
        try:
            result[country] = Mode(mode.strip().lower()).value
        except ValueError:
            raise SiteError(f"{mode!r} is not a mode; use opt_in, opt_out or notice_only") from None
    weakened = jurisdiction.weakened(result)
    if weakened and acknowledgement is None:
        named = "; ".join(f"{', '.join(countries)} on {mode}" for mode, countries in weakened.items())
        raise SiteError(
            f"refused: {named} would let purposes run before a visitor chooses where the law requires prior"
            " consent; acknowledge it with the reason you rely on (--acknowledge-weaker REASON) to set it anyway"
        )
    if acknowledgement is not None:
        if not weakened:
            raise SiteError("nothing to acknowledge: no override puts a prior-consent country on a weaker mode")
        reason = acknowledgement.reason.strip()
        if not reason or len(reason) > MAX_REASON or not reason.isprintable():
            raise SiteError(f"the reason for a weaker mode is 1 to {MAX_REASON} printable characters on one line")
    return result


def _acknowledge(site: Site, overrides: Mapping[str, str], acknowledgement: Acknowledgement | None) -> None:
    """Record, append-only, the acknowledgement that `overrides` (already checked) weaken prior-consent countries."""
    if acknowledgement is None:
        return
    for mode, countries in jurisdiction.weakened(overrides).items():
        db.session.add(
            JurisdictionAcknowledgement(
                site_id=site.id,
                countries=countries,
                mode=mode.value,
                reason=acknowledgement.reason.strip(),
                recorded_by=acknowledgement.recorded_by,
            )
        )


def _child_ages(ages: Mapping[str, int | str]) -> dict[str, int]:
    """Valid ages of digital consent: GDPR Art. 8(1) lets a member state set 13 to 16."""
    result = {}
    for country, age in ages.items():
        country = country.strip().upper()
        if not COUNTRY.fullmatch(country):
            raise SiteError(f"{country!r} is not an ISO 3166 country code (or * for all others)")
        if isinstance(age, str) and age.strip().isascii() and age.strip().isdecimal():
            age = int(age)
        if isinstance(age, bool) or not isinstance(age, int) or age not in jurisdiction.CHILD_AGES:
            raise SiteError(f"{age!r} is not an age of digital consent: a whole number from 13 to 16")
        result[country] = age
    return result


@dataclass(frozen=True)
class WeakenedCountry:
    """A prior-consent country a site's overrides put on a weaker mode, and the acknowledgement behind it if any."""

    country: str
    mode: Mode
    acknowledgement: JurisdictionAcknowledgement | None


def weakened_countries(site: Site) -> list[WeakenedCountry]:
    """Each prior-consent country the site's overrides in force weaken, by country, with its latest acknowledgement.

    None for an override stored before acknowledgements were recorded: it still applies, and is shown as not
    acknowledged until the operator sets it again with a reason.
    """
    acknowledgements = db.session.scalars(
        select(JurisdictionAcknowledgement)
        .where(JurisdictionAcknowledgement.site_id == site.id)
        .order_by(JurisdictionAcknowledgement.id.desc())
    ).all()
    weakened = [
        WeakenedCountry(
            country,
            mode,
            next((a for a in acknowledgements if a.mode == mode and country in a.countries), None),
        )
        for mode, countries in jurisdiction.weakened(site.jurisdiction_overrides).items()
        for country in countries
    ]
    return sorted(weakened, key=lambda w: w.country)


def create_site(
    key: str,
    name: str,
    *,
    origins: list[str] = (),
    locales: list[str] = BUILTIN_LOCALES,
    default_locale: str | None = None,
    policy_url: str | None = None,
    jurisdiction: Mapping[str, str] | None = None,
    acknowledge_weaker: Acknowledgement | None = None,
    child_ages: Mapping[str, int | str] | None = None,
    seed_purposes: bool = True,
) -> Site:
    """Create a site with the purposes seeded from the policy and an empty chain.

    Overrides that put prior-consent countries on a weaker mode need `acknowledge_weaker`, which is recorded.
    """
    if not SITE_KEY.fullmatch(key):
        raise SiteError(f"{key!r} is not a site key: lower-case letters, digits and hyphens")
    if get_site(key) is not None:
        raise SiteError(f"site {key!r} already exists")
    overrides = _jurisdiction(jurisdiction or {}, acknowledge_weaker)
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
        jurisdiction_overrides=overrides,
        child_ages=_child_ages(child_ages or {}),
        texts={},
    )
    db.session.add(site)
    if seed_purposes:
        for position, spec in enumerate(DEFAULT_PURPOSES):
            spec = copy.deepcopy(spec)
            site.purposes.append(Purpose(position=position, **{"double_opt_in": False, "gpc": False, **spec}))
    db.session.flush()
    chain.start_chain(site)
    _acknowledge(site, overrides, acknowledge_weaker)
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
    jurisdiction: Mapping[str, str] | None = None,
    acknowledge_weaker: Acknowledgement | None = None,
    child_ages: Mapping[str, int | str] | None = None,
    controller: dict[str, str | None] | None = None,
) -> Site:
    """Change a site's settings; what the banner shows changes with the next published notice.

    `jurisdiction` and `child_ages` add or change entries. Overrides that put prior-consent countries on a weaker
    mode need `acknowledge_weaker`, which is recorded; modes and ages apply from the next request.
    """
    # Checked before anything changes, so a refusal leaves the site as it was.
    overrides = _jurisdiction(jurisdiction or {}, acknowledge_weaker)
    ages = _child_ages(child_ages or {})
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
    if overrides:
        site.jurisdiction_overrides = {**site.jurisdiction_overrides, **overrides}
        _acknowledge(site, overrides, acknowledge_weaker)
    if ages:
        site.child_ages = {**site.child_ages, **ages}
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
    recipients: list[dict[str, str] | str] = (),
    separate_consent: bool = False,
) -> Purpose:
    """Add a site-defined purpose (for example `partner_sharing` or `cross_border_transfer`).

    `texts` maps a locale to the purpose's `name` and `description`, and for a separate consent its `means` of
    processing, how to exercise one's `rights` with the recipients, and optionally the data `categories` in that
    language (else `pii_categories` are shown). A recipient is `{"name", "contact"}` or the text `Name <contact>`.
    """
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
    pii_categories, recipients = _labels(pii_categories, "data category"), _recipients(recipients)
    if separate_consent:
        _check_separate_consent(key, texts[site.default_locale], refusable, default_opt_in, pii_categories, recipients)
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
        separate_consent=separate_consent,
    )
    site.purposes.append(purpose)
    db.session.flush()
    return purpose


def _check_separate_consent(key, texts, refusable, default_opt_in, pii_categories, recipients) -> None:
    """Refuse a separate consent that could not tell the person what PIPL Art. 23 and 39 require.

    Who receives the data and how to reach them, the purpose, the means of processing, the categories of data and
    how to exercise one's rights with the recipient, in the site's default locale at least; and, as any consent,
    it can be refused and is not presumed where consent is required (opt_in).
    """
    if not refusable or default_opt_in != Decision.DENIED:
        raise SiteError(f"purpose {key!r} needs separate consent: it can be refused and is denied until given")
    if not any(r["contact"] for r in recipients):
        raise SiteError(f"purpose {key!r} needs separate consent: name a recipient with a contact, Name <contact>")
    if not pii_categories:
        raise SiteError(f"purpose {key!r} needs separate consent: name the categories of personal data")
    missing = [text for text in ("description", "means", "rights") if not texts.get(text)]
    if missing:
        raise SiteError(f"purpose {key!r} needs separate consent: give its {', '.join(missing)} in the default locale")


def _parse_recipient(text: str) -> dict[str, str | None]:
    """`Name <contact>` (as an email address is written) or `Name` alone, as a recipient."""
    match = RECIPIENT.fullmatch(text.strip())
    return {"name": match["name"], "contact": match["contact"]} if match else {"name": text, "contact": None}


def _recipients(values) -> list[dict[str, str | None]]:
    """Recipients as `{"name", "contact"}`, each a printable label, one entry per name."""
    recipients: dict[str, dict] = {}
    for value in values:
        recipient = _parse_recipient(value) if isinstance(value, str) else value
        if not isinstance(recipient, dict) or set(recipient) - {"name", "contact"}:
            raise SiteError(f"a recipient is a name and a contact, got {value!r}")
        [name] = _labels([recipient.get("name") or ""], "recipient")
        contact = recipient.get("contact")
        recipients[name] = {"name": name, "contact": _labels([contact], "recipient's contact")[0] if contact else None}
    return list(recipients.values())


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
