"""The demo site, seeded from the support website's privacy policy."""

from __future__ import annotations

from urllib.parse import urlsplit

from cmp.models import Site
from cmp.services import notices, sites

DEMO_SITE = "demo"
DEMO_CONTACT = "privacy@support.example"


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
    # §3.3 disclosures to authorised partners: sharing, so Global Privacy Control refuses it, and providing data to
    # another handler, so PIPL Art. 23 asks for a separate consent. §8 international transfer: PIPL Art. 38-39 too.
    # Section 10's contact address is blank in the policy; the demo uses a reserved example domain (RFC 2606).
    sites.add_purpose(
        site,
        "partner_sharing",
        texts={
            "en": {
                "name": "Sharing with partners",
                "description": "Sharing your data with authorised partners who provide some of our services.",
                "categories": "Contact details; account and support requests",
                "means": "Sent to the partner over an encrypted connection; the partner uses it only to provide the "
                "service it performs for us.",
                "rights": "Write to the partner's contact above to access, correct, restrict or delete your data. "
                "Withdraw this consent at any time in Cookie settings.",
            },
            "zh-CN": {
                "name": "与合作伙伴共享",
                "description": "与提供部分服务的授权合作伙伴共享您的数据。",
                "categories": "联系方式；账户及支持请求",
                "means": "通过加密连接发送给合作伙伴；合作伙伴仅将其用于为我们提供相应服务。",
                "rights": "您可以通过上述合作伙伴联系方式，要求查阅、更正、限制处理或删除您的个人信息。"
                "您可以随时在“Cookie 设置”中撤回本同意。",
            },
            "de": {
                "name": "Weitergabe an Partner",
                "description": "Weitergabe Ihrer Daten an autorisierte Partner, die einige unserer Dienste erbringen.",
                "categories": "Kontaktdaten; Konto- und Supportanfragen",
                "means": "Verschlüsselt an den Partner übermittelt; er nutzt die Daten nur für den Dienst, den er "
                "für uns erbringt.",
                "rights": "Schreiben Sie an den oben genannten Kontakt des Partners, um Auskunft, Berichtigung, "
                "Einschränkung oder Löschung zu verlangen. Widerrufen Sie diese Einwilligung jederzeit in den "
                "Cookie-Einstellungen.",
            },
            "fr": {
                "name": "Partage avec des partenaires",
                "description": "Partage de vos données avec des partenaires autorisés qui fournissent certains "
                "de nos services.",
                "categories": "Coordonnées ; compte et demandes d'assistance",
                "means": "Transmises au partenaire par une connexion chiffrée ; il ne les utilise que pour le "
                "service qu'il fournit pour nous.",
                "rights": "Écrivez au contact du partenaire ci-dessus pour accéder à vos données, les rectifier, "
                "en limiter le traitement ou les supprimer. Retirez ce consentement à tout moment dans les "
                "paramètres des cookies.",
            },
        },
        default_opt_out="granted",
        gpc=True,
        separate_consent=True,
        consent_mode=["ad_storage", "ad_user_data", "ad_personalization"],
        pii_categories=["Contact details", "Account and support requests"],
        recipients=[{"name": "Authorised service partners (privacy policy section 3.3)", "contact": DEMO_CONTACT}],
    )
    sites.add_purpose(
        site,
        "cross_border_transfer",
        texts={
            "en": {
                "name": "International transfer",
                "description": "Storing your data on servers in China.",
                "categories": "Contact details; account and support requests",
                "means": "Transferred over an encrypted connection and stored on servers in China, under the "
                "European Commission's standard contractual clauses.",
                "rights": "Write to the contact above to access, correct, restrict or delete your data held in "
                "China. Withdraw this consent at any time in Cookie settings.",
            },
            "zh-CN": {
                "name": "跨境传输",
                "description": "将您的数据存储在位于中国的服务器上。",
                "categories": "联系方式；账户及支持请求",
                "means": "依据欧盟委员会标准合同条款，通过加密连接传输并存储在位于中国的服务器上。",
                "rights": "您可以通过上述联系方式，要求查阅、更正、限制处理或删除存储在中国的个人信息。"
                "您可以随时在“Cookie 设置”中撤回本同意。",
            },
            "de": {
                "name": "Internationale Übermittlung",
                "description": "Speicherung Ihrer Daten auf Servern in China.",
                "categories": "Kontaktdaten; Konto- und Supportanfragen",
                "means": "Verschlüsselt übermittelt und auf Servern in China gespeichert, auf Grundlage der "
                "Standardvertragsklauseln der Europäischen Kommission.",
                "rights": "Schreiben Sie an den oben genannten Kontakt, um Auskunft, Berichtigung, Einschränkung "
                "oder Löschung Ihrer in China gespeicherten Daten zu verlangen. Widerrufen Sie diese Einwilligung "
                "jederzeit in den Cookie-Einstellungen.",
            },
            "fr": {
                "name": "Transfert international",
                "description": "Stockage de vos données sur des serveurs en Chine.",
                "categories": "Coordonnées ; compte et demandes d'assistance",
                "means": "Transférées par une connexion chiffrée et stockées sur des serveurs en Chine, dans le "
                "cadre des clauses contractuelles types de la Commission européenne.",
                "rights": "Écrivez au contact ci-dessus pour accéder à vos données stockées en Chine, les "
                "rectifier, en limiter le traitement ou les supprimer. Retirez ce consentement à tout moment dans "
                "les paramètres des cookies.",
            },
        },
        default_notice_only="denied",
        separate_consent=True,
        pii_categories=["Contact details", "Account and support requests"],
        recipients=[
            {"name": "Technical Support data centre in China (privacy policy section 8)", "contact": DEMO_CONTACT}
        ],
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
