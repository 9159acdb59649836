"""Built-in texts: the purposes seeded from the policy and the banner's own words, per locale.

A site overrides any of these; a notice version snapshots what was in force when published.
"""

BUILTIN_LOCALES = ("en", "zh-CN", "de", "fr")

# The purposes every site starts with (SPEC "Purposes seeded from the policy"). `pii_categories` are the kinds of
# personal data each processes, as consent receipts list them (Kantara CR v1.1 `piiCategory`).
DEFAULT_PURPOSES: list[dict] = [
    {
        "key": "necessary",
        "channel": "web",
        "refusable": False,
        "default_opt_in": "granted",
        "default_opt_out": "granted",
        "default_notice_only": "granted",
        "consent_mode": ["security_storage"],
        "pii_categories": ["Session identifier", "Sign-in and security data"],
        "texts": {
            "en": {
                "name": "Strictly necessary",
                "description": "Session cookies for signing in, security and the correct operation of the site. "
                "They cannot be switched off.",
            },
            "zh-CN": {
                "name": "必要",
                "description": "用于登录、安全和网站正常运行的会话 Cookie。无法关闭。",
            },
            "de": {
                "name": "Unbedingt erforderlich",
                "description": "Sitzungs-Cookies für die Anmeldung, die Sicherheit und den ordnungsgemäßen Betrieb "
                "der Website. Sie können nicht deaktiviert werden.",
            },
            "fr": {
                "name": "Strictement nécessaires",
                "description": "Cookies de session pour la connexion, la sécurité et le bon fonctionnement du site. "
                "Ils ne peuvent pas être désactivés.",
            },
        },
    },
    {
        "key": "preferences",
        "channel": "web",
        "refusable": True,
        "default_opt_in": "denied",
        "default_opt_out": "granted",
        "default_notice_only": "granted",
        "consent_mode": ["functionality_storage", "personalization_storage"],
        "pii_categories": ["Settings and preferences (language, font size)"],
        "texts": {
            "en": {
                "name": "Preferences",
                "description": "Persistent cookies that remember your language, font size and other settings "
                "between visits.",
            },
            "zh-CN": {
                "name": "偏好设置",
                "description": "持久性 Cookie，用于在多次访问之间记住您的语言、字体大小和其他设置。",
            },
            "de": {
                "name": "Präferenzen",
                "description": "Dauerhafte Cookies, die Ihre Sprache, Schriftgröße und andere Einstellungen "
                "zwischen Besuchen speichern.",
            },
            "fr": {
                "name": "Préférences",
                "description": "Cookies persistants qui mémorisent votre langue, la taille de police et d'autres "
                "réglages d'une visite à l'autre.",
            },
        },
    },
    {
        "key": "analytics",
        "channel": "web",
        "refusable": True,
        "default_opt_in": "denied",
        "default_opt_out": "granted",
        "default_notice_only": "granted",
        "consent_mode": ["analytics_storage"],
        "pii_categories": [
            "Device and browser data (operating system, browser version)",
            "Approximate location (country, time zone)",
            "Browsing behaviour (pages, visit times, duration)",
        ],
        "texts": {
            "en": {
                "name": "Analytics",
                "description": "Access data (operating system, browser version, time zone, country, visit times, "
                "page address and duration), web beacons and pixel tags, to count visits and measure page "
                "performance.",
            },
            "zh-CN": {
                "name": "分析",
                "description": "访问行为数据（操作系统、浏览器版本、时区、国家/地区、访问起止时间、页面地址和访问时长）"
                "以及网页信标和像素标签，用于统计访问量并衡量页面性能。",
            },
            "de": {
                "name": "Statistik",
                "description": "Zugriffsdaten (Betriebssystem, Browserversion, Zeitzone, Land, Besuchszeiten, "
                "Seitenadresse und Dauer), Web-Beacons und Pixel-Tags, um Besuche zu zählen und die "
                "Seitenleistung zu messen.",
            },
            "fr": {
                "name": "Mesure d'audience",
                "description": "Données de navigation (système d'exploitation, version du navigateur, fuseau "
                "horaire, pays, heures de visite, adresse et durée de la page), balises web et pixels, pour "
                "compter les visites et mesurer les performances des pages.",
            },
        },
    },
    {
        "key": "marketing_email",
        "channel": "email",
        "refusable": True,
        "default_opt_in": "denied",
        "default_opt_out": "denied",
        "default_notice_only": "denied",
        "double_opt_in": True,
        "consent_mode": [],
        "pii_categories": ["Contact details (email address)"],
        "texts": {
            "en": {
                "name": "Marketing email",
                "description": "Emails about products and services, promotions and market surveys. "
                "You can unsubscribe at any time.",
            },
            "zh-CN": {
                "name": "营销邮件",
                "description": "有关产品和服务、促销活动及市场调研的电子邮件。您可以随时退订。",
            },
            "de": {
                "name": "Marketing-E-Mails",
                "description": "E-Mails zu Produkten und Dienstleistungen, Aktionen und Marktumfragen. "
                "Sie können sich jederzeit abmelden.",
            },
            "fr": {
                "name": "E-mails marketing",
                "description": "E-mails sur les produits et services, les promotions et les enquêtes. "
                "Vous pouvez vous désabonner à tout moment.",
            },
        },
    },
    {
        "key": "email_tracking",
        "channel": "email",
        "refusable": True,
        # Separate from marketing email (CNIL recommendation on email pixels, 2026): granted only by its own decision.
        "separate_consent": True,
        "default_opt_in": "denied",
        "default_opt_out": "denied",
        "default_notice_only": "denied",
        "consent_mode": [],
        "pii_categories": ["Contact details (email address)", "Email engagement (opens, clicked links)"],
        "texts": {
            "en": {
                "name": "Email tracking",
                "description": "Pixel tags that tell us whether an email was opened, and tracked links that "
                "record which link was clicked.",
            },
            "zh-CN": {
                "name": "邮件跟踪",
                "description": "用于了解邮件是否被打开的像素标签，以及记录点击了哪个链接的跟踪链接。",
            },
            "de": {
                "name": "E-Mail-Tracking",
                "description": "Pixel-Tags, die zeigen, ob eine E-Mail geöffnet wurde, und verfolgte Links, "
                "die erfassen, welcher Link angeklickt wurde.",
            },
            "fr": {
                "name": "Suivi des e-mails",
                "description": "Pixels indiquant si un e-mail a été ouvert et liens suivis enregistrant le "
                "lien cliqué.",
            },
        },
    },
]

# The banner's own words. Keys are stable: the banner looks them up by name.
BANNER_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your privacy choices",
        "description": "We use cookies and similar technologies. Necessary ones keep the site working; "
        "the others are used only if you allow them. You can change your choice at any time.",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "customise": "Customise",
        "save": "Save choices",
        "settings": "Cookie settings",
        "close": "Close",
        "policy_link": "Privacy policy",
        "always_on": "Always on",
        "cookies": "Cookies",
        "session": "Session",
        "persistent": "Persistent",
        "provider": "Provider",
        "lifetime": "Lifetime",
        "name": "Name",
        "type": "Type",
        "error": "Your choice could not be saved. Please try again.",
        "placeholder": "This content is blocked until you allow {purpose}.",
        "allow": "Allow {purpose}",
        "receipt": "Your consent receipt",
        # A separate consent's own dialog (PIPL Art. 23, 39) and its particulars.
        "separate": "This needs your separate consent: Accept all does not include it. Saying no changes none of "
        "your other choices.",
        "agree": "I agree",
        "decline": "No",
        "recipients": "Recipient and contact",
        "means": "How it is processed",
        "categories": "Personal data concerned",
        "rights": "How to exercise your rights",
    },
    "zh-CN": {
        "title": "您的隐私选择",
        "description": "我们使用 Cookie 及类似技术。必要的 Cookie 用于保证网站正常运行；其他 Cookie 仅在您允许后使用。"
        "您可以随时更改您的选择。",
        "accept_all": "全部接受",
        "reject_all": "全部拒绝",
        "customise": "自定义",
        "save": "保存选择",
        "settings": "Cookie 设置",
        "close": "关闭",
        "policy_link": "隐私政策",
        "always_on": "始终启用",
        "cookies": "Cookie",
        "session": "会话",
        "persistent": "持久",
        "provider": "提供方",
        "lifetime": "有效期",
        "name": "名称",
        "type": "类型",
        "error": "无法保存您的选择，请重试。",
        "placeholder": "在您允许“{purpose}”之前，此内容已被屏蔽。",
        "allow": "允许“{purpose}”",
        "receipt": "您的同意回执",
        "separate": "此项需要您单独同意，“全部接受”不包含此项。如您不同意，其他选择不受影响。",
        "agree": "我同意",
        "decline": "不同意",
        "recipients": "接收方名称及联系方式",
        "means": "处理方式",
        "categories": "涉及的个人信息种类",
        "rights": "行使权利的方式",
    },
    "de": {
        "title": "Ihre Datenschutzeinstellungen",
        "description": "Wir verwenden Cookies und ähnliche Technologien. Notwendige halten die Website in Betrieb; "
        "alle anderen nur, wenn Sie zustimmen. Sie können Ihre Wahl jederzeit ändern.",
        "accept_all": "Alle akzeptieren",
        "reject_all": "Alle ablehnen",
        "customise": "Anpassen",
        "save": "Auswahl speichern",
        "settings": "Cookie-Einstellungen",
        "close": "Schließen",
        "policy_link": "Datenschutzerklärung",
        "always_on": "Immer aktiv",
        "cookies": "Cookies",
        "session": "Sitzung",
        "persistent": "Dauerhaft",
        "provider": "Anbieter",
        "lifetime": "Laufzeit",
        "name": "Name",
        "type": "Typ",
        "error": "Ihre Auswahl konnte nicht gespeichert werden. Bitte versuchen Sie es erneut.",
        "placeholder": "Dieser Inhalt ist blockiert, bis Sie {purpose} erlauben.",
        "allow": "{purpose} erlauben",
        "receipt": "Ihr Einwilligungsbeleg",
        "separate": "Hierfür brauchen wir Ihre gesonderte Einwilligung: „Alle akzeptieren“ schließt sie nicht ein. "
        "Wenn Sie ablehnen, ändert sich sonst nichts.",
        "agree": "Ich stimme zu",
        "decline": "Nein",
        "recipients": "Empfänger und Kontakt",
        "means": "Art der Verarbeitung",
        "categories": "Betroffene personenbezogene Daten",
        "rights": "So üben Sie Ihre Rechte aus",
    },
    "fr": {
        "title": "Vos choix de confidentialité",
        "description": "Nous utilisons des cookies et technologies similaires. Les cookies nécessaires font "
        "fonctionner le site ; les autres ne sont utilisés qu'avec votre accord. Vous pouvez changer d'avis "
        "à tout moment.",
        "accept_all": "Tout accepter",
        "reject_all": "Tout refuser",
        "customise": "Personnaliser",
        "save": "Enregistrer mes choix",
        "settings": "Paramètres des cookies",
        "close": "Fermer",
        "policy_link": "Politique de confidentialité",
        "always_on": "Toujours actif",
        "cookies": "Cookies",
        "session": "Session",
        "persistent": "Persistant",
        "provider": "Fournisseur",
        "lifetime": "Durée",
        "name": "Nom",
        "type": "Type",
        "error": "Votre choix n'a pas pu être enregistré. Veuillez réessayer.",
        "placeholder": "Ce contenu est bloqué tant que vous n'autorisez pas « {purpose} ».",
        "allow": "Autoriser « {purpose} »",
        "receipt": "Votre reçu de consentement",
        "separate": "Ceci nécessite votre consentement distinct : « Tout accepter » ne l'inclut pas. "
        "Si vous refusez, rien d'autre ne change.",
        "agree": "J'accepte",
        "decline": "Non",
        "recipients": "Destinataire et contact",
        "means": "Mode de traitement",
        "categories": "Données personnelles concernées",
        "rights": "Comment exercer vos droits",
    },
}

# Pages people reach from an email (confirm, unsubscribe, broken links): a title and a text per outcome.
# `{site}` is the site's name. Every page says whether anything changed.
EMAIL_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "confirmed_title": "Subscription confirmed",
        "confirmed_text": "Thank you. {site} will send you emails about products, promotions and surveys. "
        "You can unsubscribe at any time with the link in every email.",
        "already_confirmed_title": "Already confirmed",
        "already_confirmed_text": "Your subscription to {site} was already confirmed. Nothing has changed.",
        "confirm_title": "Confirm your subscription",
        "confirm_text": "Receive emails from {site} about products, promotions and surveys? "
        "Your subscription starts only once you confirm it.",
        "confirm_button": "Confirm subscription",
        "unsubscribe_title": "Unsubscribe",
        "unsubscribe_text": "Stop receiving marketing emails from {site}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You are unsubscribed",
        "unsubscribed_text": "You will receive no more marketing emails from {site}.",
        "already_unsubscribed_title": "Already unsubscribed",
        "already_unsubscribed_text": "You were already unsubscribed from the marketing emails of {site}. "
        "Nothing has changed.",
        "invalid_link_title": "This link is not valid",
        "invalid_link_text": "It may have been cut short or changed. Nothing has changed.",
        "link_expired_title": "This link has expired",
        "link_expired_text": "Confirmation links work for a limited time. Nothing has changed: subscribe again "
        "to receive a new link.",
        "link_superseded_title": "This link is no longer valid",
        "link_superseded_text": "A newer confirmation link was sent, or the subscription was cancelled since. "
        "Nothing has changed.",
        "not_found_title": "Not found",
        "not_found_text": "This link points to something that no longer exists. Nothing has changed.",
        "error_title": "Something went wrong",
        "error_text": "Nothing has changed. Please try again later.",
    },
    "zh-CN": {
        "confirmed_title": "订阅已确认",
        "confirmed_text": "谢谢。{site} 将向您发送有关产品、促销活动和调研的电子邮件。"
        "您可以随时通过每封邮件中的链接退订。",
        "already_confirmed_title": "已确认",
        "already_confirmed_text": "您对 {site} 的订阅此前已确认。未做任何更改。",
        "confirm_title": "确认订阅",
        "confirm_text": "接收来自 {site} 的有关产品、促销活动和调研的电子邮件？您确认后订阅才会生效。",
        "confirm_button": "确认订阅",
        "unsubscribe_title": "退订",
        "unsubscribe_text": "不再接收来自 {site} 的营销邮件？",
        "unsubscribe_button": "退订",
        "unsubscribed_title": "您已退订",
        "unsubscribed_text": "您将不再收到来自 {site} 的营销邮件。",
        "already_unsubscribed_title": "已退订",
        "already_unsubscribed_text": "您此前已退订 {site} 的营销邮件。未做任何更改。",
        "invalid_link_title": "此链接无效",
        "invalid_link_text": "链接可能不完整或已被修改。未做任何更改。",
        "link_expired_title": "此链接已过期",
        "link_expired_text": "确认链接仅在有限时间内有效。未做任何更改：请重新订阅以获取新链接。",
        "link_superseded_title": "此链接已失效",
        "link_superseded_text": "此后已发送了新的确认链接，或订阅已被取消。未做任何更改。",
        "not_found_title": "未找到",
        "not_found_text": "此链接指向的内容已不存在。未做任何更改。",
        "error_title": "出现问题",
        "error_text": "未做任何更改。请稍后重试。",
    },
    "de": {
        "confirmed_title": "Anmeldung bestätigt",
        "confirmed_text": "Vielen Dank. {site} sendet Ihnen E-Mails zu Produkten, Aktionen und Umfragen. "
        "Sie können sich jederzeit über den Link in jeder E-Mail abmelden.",
        "already_confirmed_title": "Bereits bestätigt",
        "already_confirmed_text": "Ihre Anmeldung bei {site} war bereits bestätigt. Es hat sich nichts geändert.",
        "confirm_title": "Anmeldung bestätigen",
        "confirm_text": "E-Mails von {site} zu Produkten, Aktionen und Umfragen erhalten? "
        "Die Anmeldung gilt erst, wenn Sie sie bestätigen.",
        "confirm_button": "Anmeldung bestätigen",
        "unsubscribe_title": "Abmelden",
        "unsubscribe_text": "Keine Marketing-E-Mails mehr von {site} erhalten?",
        "unsubscribe_button": "Abmelden",
        "unsubscribed_title": "Sie sind abgemeldet",
        "unsubscribed_text": "Sie erhalten keine Marketing-E-Mails mehr von {site}.",
        "already_unsubscribed_title": "Bereits abgemeldet",
        "already_unsubscribed_text": "Sie waren von den Marketing-E-Mails von {site} bereits abgemeldet. "
        "Es hat sich nichts geändert.",
        "invalid_link_title": "Dieser Link ist ungültig",
        "invalid_link_text": "Er wurde möglicherweise gekürzt oder verändert. Es hat sich nichts geändert.",
        "link_expired_title": "Dieser Link ist abgelaufen",
        "link_expired_text": "Bestätigungslinks gelten nur begrenzte Zeit. Es hat sich nichts geändert: "
        "Melden Sie sich erneut an, um einen neuen Link zu erhalten.",
        "link_superseded_title": "Dieser Link gilt nicht mehr",
        "link_superseded_text": "Inzwischen wurde ein neuerer Bestätigungslink gesendet oder die Anmeldung "
        "widerrufen. Es hat sich nichts geändert.",
        "not_found_title": "Nicht gefunden",
        "not_found_text": "Dieser Link verweist auf etwas, das es nicht mehr gibt. Es hat sich nichts geändert.",
        "error_title": "Etwas ist schiefgelaufen",
        "error_text": "Es hat sich nichts geändert. Bitte versuchen Sie es später erneut.",
    },
    "fr": {
        "confirmed_title": "Inscription confirmée",
        "confirmed_text": "Merci. {site} vous enverra des e-mails sur ses produits, promotions et enquêtes. "
        "Vous pouvez vous désabonner à tout moment grâce au lien présent dans chaque e-mail.",
        "already_confirmed_title": "Inscription déjà confirmée",
        "already_confirmed_text": "Votre inscription auprès de {site} était déjà confirmée. Rien n'a changé.",
        "confirm_title": "Confirmer votre inscription",
        "confirm_text": "Recevoir les e-mails de {site} sur ses produits, promotions et enquêtes ? "
        "Votre inscription ne prend effet qu'une fois confirmée.",
        "confirm_button": "Confirmer mon inscription",
        "unsubscribe_title": "Se désabonner",
        "unsubscribe_text": "Ne plus recevoir les e-mails marketing de {site} ?",
        "unsubscribe_button": "Se désabonner",
        "unsubscribed_title": "Désabonnement effectué",
        "unsubscribed_text": "Vous ne recevrez plus d'e-mails marketing de {site}.",
        "already_unsubscribed_title": "Désabonnement déjà effectué",
        "already_unsubscribed_text": "Votre désabonnement des e-mails marketing de {site} était déjà effectif. "
        "Rien n'a changé.",
        "invalid_link_title": "Ce lien n'est pas valide",
        "invalid_link_text": "Il a peut-être été tronqué ou modifié. Rien n'a changé.",
        "link_expired_title": "Ce lien a expiré",
        "link_expired_text": "Les liens de confirmation ne sont valables que pendant une durée limitée. "
        "Rien n'a changé : inscrivez-vous à nouveau pour recevoir un nouveau lien.",
        "link_superseded_title": "Ce lien n'est plus valable",
        "link_superseded_text": "Un lien de confirmation plus récent a été envoyé, ou l'inscription a été annulée "
        "entre-temps. Rien n'a changé.",
        "not_found_title": "Introuvable",
        "not_found_text": "Ce lien renvoie à quelque chose qui n'existe plus. Rien n'a changé.",
        "error_title": "Une erreur est survenue",
        "error_text": "Rien n'a changé. Veuillez réessayer plus tard.",
    },
}
