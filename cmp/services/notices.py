"""Notice versions: snapshot what visitors are shown, hash it, publish it, and localise it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cmp.banner import bundle
from cmp.catalog import BANNER_TEXTS
from cmp.errors import Unknown
from cmp.extensions import db
from cmp.models import NoticeVersion, Site
from cmp.services.chain import canonical_json, sha256_hex
from cmp.services.jurisdiction import mode_for

RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ku"})


class NothingToPublish(ValueError):
    """The site's configuration is what its current notice already says."""


def notice_content(site: Site) -> dict:
    """Everything the banner shows for a site, in canonical form, ready to hash."""
    return {
        "site": site.key,
        "name": site.name,
        "policy_url": site.policy_url,
        "locales": list(site.locales),
        "default_locale": site.default_locale,
        # The SHA-256 of the banner code that shows this notice (CNIL 2020-092 §48: proof by hash of code and texts).
        "banner": {"bundle": bundle.current().digest},
        "texts": {locale: banner_texts(site, locale) for locale in site.locales},
        "purposes": [
            {
                "key": p.key,
                "channel": p.channel,
                "refusable": p.refusable,
                "defaults": {
                    "opt_in": p.default_opt_in,
                    "opt_out": p.default_opt_out,
                    "notice_only": p.default_notice_only,
                },
                "gpc": p.gpc,
                "double_opt_in": p.double_opt_in,
                "separate_consent": p.separate_consent,
                "consent_mode": list(p.consent_mode),
                "pii_categories": list(p.pii_categories),
                "recipients": [dict(r) for r in p.recipients],
                "texts": {locale: _pick(p.texts, locale, site.default_locale) for locale in site.locales},
            }
            for p in site.purposes
        ],
        "cookies": [
            {
                "name": c.name,
                "provider": c.provider,
                "domain": c.domain,
                "kind": c.kind,
                "storage": c.storage,
                "lifetime_seconds": c.lifetime_seconds,
                "purpose": c.purpose.key,
                "descriptions": {
                    locale: text
                    for locale in site.locales
                    if (text := _pick(c.descriptions, locale, site.default_locale)) is not None
                },
            }
            for c in site.cookies
        ],
    }


def content_hash(content: dict) -> str:
    return sha256_hex(canonical_json(content))


def banner_texts(site: Site, locale: str) -> dict[str, str]:
    builtin = BANNER_TEXTS.get(locale) or BANNER_TEXTS.get(locale.split("-")[0]) or BANNER_TEXTS["en"]
    return {**BANNER_TEXTS["en"], **builtin, **site.texts.get(locale, {})}


def _pick(texts: dict, locale: str, default_locale: str):
    for candidate in (locale, locale.split("-")[0], default_locale, "en"):
        if candidate in texts:
            return texts[candidate]
    return next(iter(texts.values()), None)


def current_notice(site: Site) -> NoticeVersion | None:
    return db.session.scalars(
        select(NoticeVersion).where(NoticeVersion.site_id == site.id).order_by(NoticeVersion.version.desc()).limit(1)
    ).first()


def get_notice(site: Site, version: int) -> NoticeVersion | None:
    return db.session.scalars(
        select(NoticeVersion).where(NoticeVersion.site_id == site.id, NoticeVersion.version == version)
    ).first()


def publish_notice(site: Site, *, material: bool = False, note: str | None = None) -> NoticeVersion:
    """Publish the site's current configuration as the next immutable notice version."""
    content = notice_content(site)
    digest = content_hash(content)
    latest = current_notice(site)
    if latest is not None and latest.content_hash == digest:
        raise NothingToPublish(f"nothing changed since version {latest.version} ({digest})")
    next_version = (
        db.session.scalar(select(func.max(NoticeVersion.version)).where(NoticeVersion.site_id == site.id)) or 0
    ) + 1
    notice = NoticeVersion(
        site_id=site.id,
        version=next_version,
        content=content,
        content_hash=digest,
        # The first version is what everyone is first asked about.
        material=material or latest is None,
        note=note,
    )
    db.session.add(notice)
    db.session.flush()
    return notice


def last_material_version(site: Site) -> int | None:
    return db.session.scalar(
        select(func.max(NoticeVersion.version)).where(
            NoticeVersion.site_id == site.id, NoticeVersion.material.is_(True)
        )
    )


def best_locale(requested: str | None, accepted: list[str], available: list[str], default: str) -> str:
    """The site locale closest to what was asked for, then to the browser's languages."""
    lowered = {locale.lower(): locale for locale in available}
    for candidate in ([requested] if requested else []) + accepted:
        candidate = candidate.replace("_", "-").lower()
        if candidate in lowered:
            return lowered[candidate]
        language = candidate.split("-")[0]
        for key, locale in lowered.items():
            if key == language or key.split("-")[0] == language:
                return locale
    return default


def localise(content: dict, locale: str) -> dict:
    """A notice's content in one of its locales, as the banner needs it (web purposes only)."""
    texts = content["texts"]
    return {
        "texts": texts[locale],
        "purposes": [
            {
                "key": p["key"],
                "name": p["texts"].get(locale, {}).get("name", p["key"]),
                "description": p["texts"].get(locale, {}).get("description", ""),
                "refusable": p["refusable"],
                "gpc": p["gpc"],
                "consent_mode": p["consent_mode"],
                "defaults": p["defaults"],
                # Notices published before separate consent existed carry no such key.
                "separate_consent": p.get("separate_consent", False),
                **(_separate_consent_notice(p, locale, content["default_locale"]) if p.get("separate_consent") else {}),
            }
            for p in content["purposes"]
            if p["channel"] == "web"
        ],
        "cookies": [
            {
                "name": c["name"],
                "provider": c["provider"],
                "domain": c["domain"],
                "kind": c["kind"],
                "storage": c["storage"],
                "lifetime_seconds": c["lifetime_seconds"],
                "purpose": c["purpose"],
                "description": c["descriptions"].get(locale),
            }
            for c in content["cookies"]
        ],
    }


def _separate_consent_notice(purpose: dict, locale: str, default_locale: str) -> dict:
    """What a separate consent shows besides the purpose (PIPL Art. 23 and 39): the recipients and their contact,
    the means of processing, the categories of data and how to exercise one's rights with the recipients. A text
    missing in this locale is shown in the default one: the law asks that it be shown, not that it be translated."""
    texts = {**purpose["texts"].get(default_locale, {}), **purpose["texts"].get(locale, {})}
    return {
        "recipients": purpose["recipients"],
        "categories": texts.get("categories") or ", ".join(purpose["pii_categories"]),
        "means": texts.get("means", ""),
        "rights": texts.get("rights", ""),
    }


def banner_configuration(
    site: Site,
    *,
    requested_locale: str | None,
    accepted_languages: list[str],
    country: str | None,
    gpc: bool,
    lifetimes,
) -> dict:
    """What the banner needs for one request: the current notice in the best locale, and the rule that applies."""
    notice = current_notice(site)
    if notice is None:
        raise Unknown("no_notice", f"site {site.key!r} has not published a notice yet")
    content = notice.content
    locale = best_locale(requested_locale, accepted_languages, content["locales"], content["default_locale"])
    localised = localise(content, locale)
    return {
        "site": site.key,
        "name": content["name"],
        "locale": locale,
        "locales": content["locales"],
        "direction": "rtl" if locale.split("-")[0] in RTL_LANGUAGES else "ltr",
        "policy_url": content["policy_url"],
        **localised,
        "notice": {
            "version": notice.version,
            "hash": notice.content_hash,
            "material": notice.material,
            "published_at": notice.published_at.isoformat(),
            "last_material_version": last_material_version(site),
        },
        "mode": mode_for(country, site.jurisdiction_overrides).value,
        "country": country,
        "gpc": gpc,
        "lifetimes": {"consent_days": lifetimes.consent.days, "refusal_days": lifetimes.refusal.days},
        "consent_mode": {p["key"]: p["consent_mode"] for p in localised["purposes"] if p["consent_mode"]},
    }


# --- The banner code a notice names -----------------------------------------------------------------------------

# Rounds of the race below a site can lose before giving up: each loss means another process just published a version.
BANNER_CODE_ATTEMPTS = 3


def record_banner_code(digest: str) -> list[NoticeVersion]:
    """Make every site's current notice name the banner code `digest`; return the versions this call published.

    A notice proves what a visitor was shown by the hash of the banner code as well as of its texts (CNIL 2020-092
    §48), so after an upgrade each site whose current notice names other code gets a new version naming this code.
    Its content is the current notice's with only `banner.bundle` replaced, never the site's live configuration:
    edits not yet published are the operator's to publish, maybe as material. Nor is the new version material: the
    texts and purposes visitors decided on are unchanged, so nobody is asked again.

    Each site commits on its own. Processes starting together race for the same next version number: the unique
    (site_id, version) constraint lets one of them store it, and the others, reading again, find the code recorded.
    """
    published = []
    for notice in _current_notices():
        if _bundle_of(notice) == digest:
            continue
        for attempt in range(1, BANNER_CODE_ATTEMPTS + 1):
            try:
                recorded = _record_banner_code(notice.site_id, digest)
                db.session.commit()
                break
            except IntegrityError:
                db.session.rollback()
                if attempt == BANNER_CODE_ATTEMPTS:
                    raise
        if recorded is not None:
            published.append(recorded)
    return published


def _current_notices() -> list[NoticeVersion]:
    """Every site's latest notice version, in one query."""
    latest = (
        select(NoticeVersion.site_id, func.max(NoticeVersion.version).label("version"))
        .group_by(NoticeVersion.site_id)
        .subquery()
    )
    return list(
        db.session.scalars(
            select(NoticeVersion)
            .join(latest, (NoticeVersion.site_id == latest.c.site_id) & (NoticeVersion.version == latest.c.version))
            .order_by(NoticeVersion.site_id)
        )
    )


def _record_banner_code(site_id: int, digest: str) -> NoticeVersion | None:
    """Publish the site's current notice again naming `digest`, unless it already does (another process won)."""
    current = db.session.scalars(
        select(NoticeVersion).where(NoticeVersion.site_id == site_id).order_by(NoticeVersion.version.desc()).limit(1)
    ).one()
    recorded = _bundle_of(current)
    if recorded == digest:
        return None
    content = {**current.content, "banner": {**current.content.get("banner", {}), "bundle": digest}}
    notice = NoticeVersion(
        site_id=site_id,
        version=current.version + 1,
        content=content,
        content_hash=content_hash(content),
        material=False,
        note=f"banner code changed: {(recorded or 'unrecorded')[:12]} -> {digest[:12]}",
    )
    db.session.add(notice)
    db.session.flush()
    return notice


def _bundle_of(notice: NoticeVersion) -> str | None:
    # Notices published before the banner code was recorded name none.
    return notice.content.get("banner", {}).get("bundle")
