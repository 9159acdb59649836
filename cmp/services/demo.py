"""The demo site, seeded from the support website's privacy policy."""

from __future__ import annotations

from urllib.parse import urlsplit

from cmp.models import Site
from cmp.services import notices, sites

DEMO_SITE = "demo"


def seed_demo(base_url: str = "http://127.0.0.1:5000", extra_origins: list[str] = ()) -> Site | None:
    """Create and publish the demo site (the caller commits); None when it already exists."""
    if sites.get_site(DEMO_SITE) is not None:
        return None
    base_url = base_url.rstrip("/")
    origins = list(dict.fromkeys([base_url, base_url.replace("127.0.0.1", "localhost"), *extra_origins]))
    site = sites.create_site(
        DEMO_SITE,
        "Technical Support (demo)",
        origins=origins,
        policy_url=f"{base_url}/demo/privacy",
    )
    # §3.3 disclosures to authorised partners: sharing, so Global Privacy Control refuses it.
    sites.add_purpose(
        site,
        "partner_sharing",
        texts={
            "en": {
                "name": "Sharing with partners",
                "description": "Sharing your data with authorised partners who provide some of our services.",
            },
            "zh-CN": {"name": "与合作伙伴共享", "description": "与提供部分服务的授权合作伙伴共享您的数据。"},
            "de": {
                "name": "Weitergabe an Partner",
                "description": "Weitergabe Ihrer Daten an autorisierte Partner, die einige unserer Dienste erbringen.",
            },
            "fr": {
                "name": "Partage avec des partenaires",
                "description": "Partage de vos données avec des partenaires autorisés qui fournissent certains "
                "de nos services.",
            },
        },
        default_opt_out="granted",
        gpc=True,
        consent_mode=["ad_storage", "ad_user_data", "ad_personalization"],
        pii_categories=["Contact details", "Account and support requests"],
        recipients=["Authorised service partners (privacy policy section 3.3)"],
    )
    # §8 international transfer: PIPL asks for a separate consent.
    sites.add_purpose(
        site,
        "cross_border_transfer",
        texts={
            "en": {"name": "International transfer", "description": "Storing your data on servers in China."},
            "zh-CN": {"name": "跨境传输", "description": "将您的数据存储在位于中国的服务器上。"},
            "de": {
                "name": "Internationale Übermittlung",
                "description": "Speicherung Ihrer Daten auf Servern in China.",
            },
            "fr": {
                "name": "Transfert international",
                "description": "Stockage de vos données sur des serveurs en Chine.",
            },
        },
        default_notice_only="denied",
        pii_categories=["Contact details", "Account and support requests"],
        recipients=["Recipients in China (privacy policy section 8)"],
    )
    host = urlsplit(base_url).hostname
    day = 86400
    inventory = [
        # §2.1 session cookies for login and correct operation
        ("SESSION", "necessary", "session", None, "cookie", "Keeps you signed in during a visit."),
        ("XSRF-TOKEN", "necessary", "session", None, "cookie", "Protects forms against cross-site request forgery."),
        ("cmp_consent", "necessary", "persistent", 395 * day, "cookie", "Remembers your privacy choices."),
        # §2.1 persistent cookies for language, font size and other settings
        ("lang", "preferences", "persistent", 365 * day, "cookie", "Remembers your language."),
        ("font_size", "preferences", "persistent", 365 * day, "cookie", "Remembers your font size."),
        ("video_prefs", "preferences", "persistent", 180 * day, "cookie", "Remembers video player settings."),
        # §1.1 B access behaviour data for PV/UV; §2.2 web beacons and pixel tags
        ("_pv_uid", "analytics", "persistent", 395 * day, "cookie", "Counts unique visitors."),
        ("_pv_session", "analytics", "session", None, "cookie", "Counts page views in a visit."),
        ("pv.gif", "analytics", "session", None, "pixel", "Web beacon that records a page view."),
        # §2.2 pixel tags in emails
        ("open.gif", "email_tracking", "session", None, "pixel", "Tells us whether an email was opened."),
    ]
    for name, purpose, storage, lifetime, kind, description in inventory:
        sites.add_cookie(
            site,
            name,
            purpose=purpose,
            provider=site.name,
            storage=storage,
            lifetime_seconds=lifetime,
            domain=host,
            kind=kind,
            descriptions={"en": description},
        )
    notices.publish_notice(site, material=True, note="Demo site seeded from the privacy policy")
    return site
