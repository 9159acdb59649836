"""Fields shared by the schemas."""

from marshmallow import ValidationError, fields, validate

from cmp.services.sites import LOCALE, PURPOSE_KEY
from cmp.vocabulary import Decision


class Pattern(validate.Regexp):
    """The whole value must match (Regexp alone accepts a trailing newline before "$")."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


def max_properties(limit: int):
    def check(value: dict) -> dict:
        if len(value) > limit:
            raise ValidationError(f"at most {limit} entries")
        return value

    return check


class StrictBoolean(fields.Boolean):
    """Only JSON true and false; "yes", 1 or "true" are type errors."""

    def __init__(self, **kwargs):
        super().__init__(truthy={True}, falsy={False}, **kwargs)


def locale_field(**kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=35), Pattern(LOCALE)], **kwargs)


def decisions_field(**kwargs) -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=Pattern(PURPOSE_KEY, error="not a purpose key")),
        values=fields.String(validate=validate.OneOf([d.value for d in Decision])),
        validate=max_properties(64),
        metadata={"maxProperties": 64},
        **kwargs,
    )


def page_url_field(**kwargs) -> fields.Url:
    return fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2048), **kwargs)
