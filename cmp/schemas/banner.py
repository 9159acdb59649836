"""The banner configuration, as documented in the OpenAPI description."""

from marshmallow import Schema, fields


class DefaultsSchema(Schema):
    opt_in = fields.String()
    opt_out = fields.String()
    notice_only = fields.String()


class RecipientSchema(Schema):
    name = fields.String()
    contact = fields.String(allow_none=True, metadata={"description": "an address, phone number or URL"})


class BannerPurposeSchema(Schema):
    key = fields.String()
    name = fields.String()
    description = fields.String()
    refusable = fields.Boolean()
    gpc = fields.Boolean(metadata={"description": "sale or sharing: Global Privacy Control refuses it in opt_out"})
    consent_mode = fields.List(fields.String())
    defaults = fields.Nested(DefaultsSchema)
    separate_consent = fields.Boolean(
        metadata={"description": "asked for on its own (PIPL Art. 23, 39): Accept all never grants it"}
    )
    # Only for a separate consent: what PIPL Art. 23 and 39 require the person be told.
    recipients = fields.List(fields.Nested(RecipientSchema), metadata={"description": "separate consent only"})
    categories = fields.String(metadata={"description": "the categories of personal data; separate consent only"})
    means = fields.String(metadata={"description": "the means of processing; separate consent only"})
    rights = fields.String(
        metadata={"description": "how to exercise one's rights with the recipients; separate consent only"}
    )


class BannerCookieSchema(Schema):
    name = fields.String()
    provider = fields.String()
    domain = fields.String(allow_none=True)
    kind = fields.String()
    storage = fields.String()
    lifetime_seconds = fields.Integer(allow_none=True)
    purpose = fields.String()
    description = fields.String(allow_none=True)


class NoticeSchema(Schema):
    version = fields.Integer()
    hash = fields.String()
    material = fields.Boolean()
    published_at = fields.String()
    last_material_version = fields.Integer(allow_none=True)


class LifetimesSchema(Schema):
    consent_days = fields.Integer()
    refusal_days = fields.Integer()


class BannerConfigSchema(Schema):
    site = fields.String()
    name = fields.String()
    locale = fields.String()
    locales = fields.List(fields.String())
    direction = fields.String()
    policy_url = fields.String(allow_none=True)
    texts = fields.Dict(keys=fields.String(), values=fields.String())
    purposes = fields.List(fields.Nested(BannerPurposeSchema))
    cookies = fields.List(fields.Nested(BannerCookieSchema))
    notice = fields.Nested(NoticeSchema)
    mode = fields.String()
    country = fields.String(allow_none=True)
    gpc = fields.Boolean()
    lifetimes = fields.Nested(LifetimesSchema)
    consent_mode = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
