"""Fields shared by the schemas."""

from marshmallow import fields, validate

from cmp.services.sites import LOCALE, PURPOSE_KEY
from cmp.vocabulary import Decision


class StrictBoolean(fields.Boolean):
    """Only JSON true and false; "yes", 1 or "true" are type errors."""

    def __init__(self, **kwargs):
        super().__init__(truthy={True}, falsy={False}, **kwargs)


def locale_field(**kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=35), validate.Regexp(LOCALE)], **kwargs)


def decisions_field(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Regexp(PURPOSE_KEY, error="not a purpose key")),
        values=fields.String(validate=validate.OneOf([d.value for d in Decision])),
        validate=validate.Length(max=64),
        **kwargs,
    )


def page_url_field(**kwargs) -> fields.Url:
    return fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2048), **kwargs)
