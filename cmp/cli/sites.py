"""`cmp site`, `cmp purpose`, `cmp cookie`, `cmp notice` and `cmp demo`."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from cmp.cli.params import DatabaseCommand, DatabaseGroup, Duration, Pair, format_duration, load_site, unit_of_work
from cmp.extensions import db
from cmp.models import ConsentEvent, NoticeVersion
from cmp.services import notices, sites
from cmp.services.demo import seed_demo
from cmp.services.jurisdiction import child_age
from cmp.vocabulary import CONSENT_MODE_TYPES, Channel, Decision, Storage, TrackerKind

DECISIONS = click.Choice([d.value for d in Decision])
# The command line has no signed-in user: acknowledgements record the channel they came through.
RECORDED_BY = "cli"


def acknowledge_weaker_option(command):
    return click.option(
        "--acknowledge-weaker",
        metavar="REASON",
        help="Allow --jurisdiction to put countries whose law requires prior consent (EU/EEA, GB, CH, BR, KR, CN) on"
        " opt_out or notice_only; REASON (what you rely on, e.g. a legal opinion) is recorded for auditors.",
    )(command)


def child_age_option(command):
    return click.option(
        "--child-age",
        "child_ages",
        multiple=True,
        type=Pair(),
        help="COUNTRY=AGE: the age of digital consent there, 13 to 16 (GDPR Art. 8); * for all others; repeat."
        " Default: 16.",
    )(command)


def _acknowledgement(reason: str | None) -> sites.Acknowledgement | None:
    return None if reason is None else sites.Acknowledgement(reason, RECORDED_BY)


@click.group("site", cls=DatabaseGroup)
def site_group():
    """Create and inspect sites."""


@site_group.command("create")
@click.argument("key")
@click.option("--name", required=True, help="Display name.")
@click.option("--origin", "origins", multiple=True, help="Allowed origin (scheme://host[:port]); repeat for more.")
@click.option(
    "--locale", "locales", multiple=True, help="Locale offered by the banner; repeat. Default: en, zh-CN, de, fr."
)
@click.option("--default-locale", help="Fallback locale. Default: the first --locale.")
@click.option("--policy-url", help="Link to the privacy policy shown in the banner.")
@click.option(
    "--jurisdiction", "jurisdiction", multiple=True, type=Pair(), help="COUNTRY=MODE override, * for all others."
)
@acknowledge_weaker_option
@child_age_option
@click.option("--bare", is_flag=True, help="Do not seed the standard purposes.")
def site_create(
    key, name, origins, locales, default_locale, policy_url, jurisdiction, acknowledge_weaker, child_ages, bare
):
    """Create site KEY with the purposes seeded from the policy."""
    kwargs = {"locales": list(locales)} if locales else {}
    with unit_of_work():
        site = sites.create_site(
            key,
            name,
            origins=list(origins),
            default_locale=default_locale,
            policy_url=policy_url,
            jurisdiction=dict(jurisdiction),
            acknowledge_weaker=_acknowledgement(acknowledge_weaker),
            child_ages=dict(child_ages),
            seed_purposes=not bare,
            **kwargs,
        )
    click.echo(f"created site {site.key} with purposes: {', '.join(p.key for p in site.purposes) or '(none)'}")
    click.echo(f"publish its first notice with: cmp notice publish {site.key}")


@site_group.command("update")
@click.argument("key")
@click.option("--name")
@click.option("--origin", "origins", multiple=True, help="Replaces the allowed origins; repeat.")
@click.option("--locale", "locales", multiple=True, help="Replaces the locales; repeat.")
@click.option("--default-locale")
@click.option("--policy-url")
@click.option(
    "--jurisdiction", "jurisdiction", multiple=True, type=Pair(), help="COUNTRY=MODE override to add or change."
)
@acknowledge_weaker_option
@child_age_option
@click.option("--controller-name", help="The controller receipts name (required with the first controller field).")
@click.option("--controller-email", help="The controller's contact email (required with the first controller field).")
@click.option("--controller-address", help="The controller's postal address.")
@click.option("--controller-country", help="The controller's country, ISO 3166 (DE, CN, ...).")
@click.option("--controller-phone", help="The controller's phone number.")
@click.option("--controller-dpo", help="How to reach the data protection officer.")
def site_update(
    key, name, origins, locales, default_locale, policy_url, jurisdiction, acknowledge_weaker, child_ages, **controller
):
    """Change site KEY; banner texts change with the next published notice.

    A controller field given empty removes it; consent receipts name the controller from the next request on.
    """
    site = load_site(key)
    changes = {option.removeprefix("controller_"): value for option, value in controller.items() if value is not None}
    with unit_of_work():
        sites.update_site(
            site,
            name=name,
            origins=list(origins) if origins else None,
            locales=list(locales) if locales else None,
            default_locale=default_locale,
            policy_url=policy_url,
            jurisdiction=dict(jurisdiction),
            acknowledge_weaker=_acknowledgement(acknowledge_weaker),
            child_ages=dict(child_ages),
            controller=changes,
        )
    click.echo(f"updated site {site.key}")


@site_group.command("list")
def site_list():
    """List sites."""
    rows = sites.list_sites()
    if not rows:
        click.echo("no sites yet: cmp site create KEY --name NAME")
        return
    for site in rows:
        click.echo(f"{site.key}\t{site.name}\t{', '.join(site.allowed_origins) or '(no origins)'}")


@site_group.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def site_show(key, as_json):
    """Show site KEY: origins, locales, purposes, cookies, notices and the log's size."""
    site = load_site(key)
    notice_rows = db.session.scalars(
        select(NoticeVersion).where(NoticeVersion.site_id == site.id).order_by(NoticeVersion.version)
    ).all()
    events = db.session.scalar(select(func.count()).select_from(ConsentEvent).where(ConsentEvent.site_id == site.id))
    draft = notices.notice_content(site)
    info = {
        "key": site.key,
        "name": site.name,
        "allowed_origins": site.allowed_origins,
        "locales": site.locales,
        "default_locale": site.default_locale,
        "policy_url": site.policy_url,
        "jurisdiction_overrides": site.jurisdiction_overrides,
        # Prior-consent countries the overrides weaken, with the acknowledgement behind each (None: set before
        # acknowledgements were recorded).
        "weakened_countries": [
            {"country": weakened.country, "mode": weakened.mode.value, "acknowledgement": _acknowledged(weakened)}
            for weakened in sites.weakened_countries(site)
        ],
        "child_ages": site.child_ages,
        "controller": site.controller,
        # As the next published notice would show them, without the texts.
        "purposes": [{k: v for k, v in p.items() if k != "texts"} for p in draft["purposes"]],
        "cookies": draft["cookies"],
        "notices": [
            {
                "version": n.version,
                "hash": n.content_hash,
                "material": n.material,
                "published_at": n.published_at.isoformat(),
            }
            for n in notice_rows
        ],
        "events": events,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
        return
    click.echo(f"{site.key}: {site.name}")
    click.echo(f"  origins:  {', '.join(site.allowed_origins) or '(none)'}")
    click.echo(f"  locales:  {', '.join(site.locales)} (default {site.default_locale})")
    click.echo(f"  policy:   {site.policy_url or '(none)'}")
    click.echo(
        f"  modes:    {json.dumps(site.jurisdiction_overrides) if site.jurisdiction_overrides else 'default map'}"
    )
    for weakened in info["weakened_countries"]:
        acknowledgement = weakened["acknowledgement"]
        if acknowledgement is None:
            said = "NOT ACKNOWLEDGED: set it again with --acknowledge-weaker REASON"
        else:
            said = f"acknowledged {acknowledgement['created_at']} ({acknowledgement['recorded_by']}): "
            said += acknowledgement["reason"]
        click.echo(f"    {weakened['country']} {weakened['mode']} weakens prior consent; {said}")
    ages = [f"{country}={age}" for country, age in sorted(site.child_ages.items()) if country != "*"]
    elsewhere = child_age(None, site.child_ages)
    click.echo(f"  child ages: {', '.join(ages + [f'{elsewhere} elsewhere']) if ages else f'{elsewhere} everywhere'}")
    controller = site.controller or {}
    unset = "(not set: receipts name the site, without contact details)"
    click.echo(f"  controller: {controller.get('name', unset)}")
    for field in ("email", "address", "country", "phone", "dpo"):
        if field in controller:
            click.echo(f"    {field + ':':<9} {controller[field]}")
    click.echo("  purposes:")
    for p in info["purposes"]:
        flags = [p["channel"], "refusable" if p["refusable"] else "always on"]
        flags += ["gpc"] if p["gpc"] else []
        flags += ["double opt-in"] if p["double_opt_in"] else []
        flags += ["separate consent"] if p["separate_consent"] else []
        defaults = f"opt_in={p['defaults']['opt_in']} opt_out={p['defaults']['opt_out']}"
        click.echo(f"    {p['key']:<24} {', '.join(flags)}; {defaults}")
    click.echo("  cookies:")
    for c in info["cookies"]:
        life = "session" if c["storage"] == "session" else format_duration(c["lifetime_seconds"])
        click.echo(f"    {c['name']:<24} {c['purpose']:<16} {c['kind']:<8} {life:<9} {c['provider']}")
    click.echo("  notices:")
    for n in info["notices"] or [{"version": "-", "hash": "(none published)", "material": False, "published_at": ""}]:
        click.echo(f"    v{n['version']} {n['hash']}{' material' if n['material'] else ''} {n['published_at']}")
    click.echo(f"  events:   {events}")


def _acknowledged(weakened: sites.WeakenedCountry) -> dict | None:
    acknowledgement = weakened.acknowledgement
    if acknowledgement is None:
        return None
    return {
        "reason": acknowledgement.reason,
        "recorded_by": acknowledgement.recorded_by,
        "created_at": acknowledgement.created_at.isoformat(),
    }


@click.group("purpose", cls=DatabaseGroup)
def purpose_group():
    """Add purposes to a site."""


@purpose_group.command("add")
@click.argument("site_key")
@click.argument("key")
@click.option("--name", "names", multiple=True, type=Pair(), required=True, help="LOCALE=NAME; repeat per locale.")
@click.option("--description", "descriptions", multiple=True, type=Pair(), help="LOCALE=TEXT; repeat per locale.")
@click.option("--channel", type=click.Choice([c.value for c in Channel]), default="web", show_default=True)
@click.option("--refusable/--not-refusable", default=True, show_default=True)
@click.option("--default-opt-in", type=DECISIONS, help="Default in opt_in mode. [default: denied]")
@click.option("--default-opt-out", type=DECISIONS, help="Default in opt_out mode. [default: denied]")
@click.option("--default-notice-only", type=DECISIONS, help="Default in notice_only mode. [default: granted]")
@click.option("--gpc", is_flag=True, help="Sale or sharing: Global Privacy Control refuses it in opt_out mode.")
@click.option("--double-opt-in", is_flag=True, help="A grant counts only after a confirmed double opt-in.")
@click.option(
    "--consent-mode", multiple=True, type=click.Choice(CONSENT_MODE_TYPES), help="Google Consent Mode type; repeat."
)
@click.option("--pii-category", "pii_categories", multiple=True, help="Kind of personal data it processes; repeat.")
@click.option(
    "--recipient",
    "recipients",
    multiple=True,
    help="Who else receives the data (partner, overseas recipient): 'NAME' or 'NAME <CONTACT>'; repeat.",
)
@click.option(
    "--separate-consent",
    is_flag=True,
    help="Asked for on its own, never by Accept all (PIPL Art. 23, 39): needs a recipient with a contact, "
    "--pii-category, and --means and --rights in the default locale.",
)
@click.option("--means", multiple=True, type=Pair(), help="LOCALE=TEXT: the means of processing; repeat per locale.")
@click.option(
    "--rights", multiple=True, type=Pair(), help="LOCALE=TEXT: how to exercise one's rights with the recipients."
)
@click.option(
    "--categories", multiple=True, type=Pair(), help="LOCALE=TEXT: the data categories in that language (optional)."
)
def purpose_add(
    site_key,
    key,
    names,
    descriptions,
    channel,
    refusable,
    default_opt_in,
    default_opt_out,
    default_notice_only,
    gpc,
    double_opt_in,
    consent_mode,
    pii_categories,
    recipients,
    separate_consent,
    means,
    rights,
    categories,
):
    """Add purpose KEY to site SITE_KEY (shown after the next `cmp notice publish`)."""
    site = load_site(site_key)
    # What cannot be refused is granted everywhere; what needs double opt-in or its own consent is denied everywhere.
    fallback = {"opt_in": "denied", "opt_out": "denied", "notice_only": "granted"}
    if not refusable:
        fallback = dict.fromkeys(fallback, "granted")
    elif double_opt_in or separate_consent:
        fallback = dict.fromkeys(fallback, "denied")
    texts: dict[str, dict[str, str]] = {}
    fields = {"name": names, "description": descriptions, "means": means, "rights": rights, "categories": categories}
    for field, pairs in fields.items():
        for locale, text in pairs:
            texts.setdefault(locale, {})[field] = text
    with unit_of_work():
        purpose = sites.add_purpose(
            site,
            key,
            texts=texts,
            channel=channel,
            refusable=refusable,
            default_opt_in=default_opt_in or fallback["opt_in"],
            default_opt_out=default_opt_out or fallback["opt_out"],
            default_notice_only=default_notice_only or fallback["notice_only"],
            gpc=gpc,
            double_opt_in=double_opt_in,
            consent_mode=list(consent_mode),
            pii_categories=list(pii_categories),
            recipients=list(recipients),
            separate_consent=separate_consent,
        )
    click.echo(f"added purpose {purpose.key} to {site.key}")


@click.group("cookie", cls=DatabaseGroup)
def cookie_group():
    """Add cookies, storage keys and pixels to a site's inventory."""


@cookie_group.command("add")
@click.argument("site_key")
@click.argument("name")
@click.option("--purpose", required=True, help="Purpose key the cookie serves.")
@click.option("--provider", required=True, help="Who sets it (first party or vendor).")
@click.option("--session", is_flag=True, help="Deleted at the end of the visit.")
@click.option("--persistent", is_flag=True, help="Kept across visits (needs --lifetime).")
@click.option("--lifetime", type=Duration(), help="How long a persistent cookie lives: 30m, 12h, 390d, 1y.")
@click.option("--domain", help="Cookie domain.")
@click.option("--kind", type=click.Choice([k.value for k in TrackerKind]), default="cookie", show_default=True)
@click.option("--description", "descriptions", multiple=True, type=Pair(), help="LOCALE=TEXT; repeat.")
def cookie_add(site_key, name, purpose, provider, session, persistent, lifetime, domain, kind, descriptions):
    """Add NAME to the inventory of SITE_KEY (shown after the next `cmp notice publish`)."""
    site = load_site(site_key)
    if session == persistent:
        raise click.UsageError("say either --session or --persistent")
    storage = Storage.SESSION if session else Storage.PERSISTENT
    with unit_of_work():
        cookie = sites.add_cookie(
            site,
            name,
            purpose=purpose,
            provider=provider,
            storage=storage,
            lifetime_seconds=lifetime,
            domain=domain,
            kind=kind,
            descriptions=dict(descriptions),
        )
    click.echo(f"added {cookie.kind} {cookie.name} ({cookie.storage}) for {purpose} to {site.key}")


@click.group("notice", cls=DatabaseGroup)
def notice_group():
    """Publish notice versions."""


@notice_group.command("publish")
@click.argument("site_key")
@click.option("--material", is_flag=True, help="A material change: every visitor is asked again.")
@click.option("--note", help="What changed, for the record.")
def notice_publish(site_key, material, note):
    """Snapshot SITE_KEY's texts, purposes and cookies as the next immutable notice version."""
    site = load_site(site_key)
    with unit_of_work():
        notice = notices.publish_notice(site, material=material, note=note)
    click.echo(
        f"published {site.key} notice v{notice.version} sha256:{notice.content_hash}"
        f"{' (material: visitors are asked again)' if notice.material else ''}"
    )


@click.command("demo", cls=DatabaseCommand)
@with_appcontext
@click.option("--base-url", default="http://127.0.0.1:5000", show_default=True, help="Where the demo is served.")
@click.option("--origin", "origins", multiple=True, help="Another origin allowed to embed the banner; repeat.")
def demo_command(base_url, origins):
    """Seed the demo site from the privacy policy (does nothing if it exists)."""
    with unit_of_work():
        site = seed_demo(base_url, list(origins))
    if site is None:
        click.echo("demo site already seeded")
        return
    click.echo(f"seeded demo site {site.key}: {len(site.purposes)} purposes, {len(site.cookies)} cookies, notice v1")


commands = (site_group, purpose_group, cookie_group, notice_group, demo_command)
