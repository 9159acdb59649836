"""Fields shared by the schemas."""

from datetime import UTC, datetime

from marshmallow import ValidationError, fields, validate

from cmp.vocabulary import LOCALE, PURPOSE_KEY, Decision

# Notice versions are stored in a 32-bit integer column (PostgreSQL's `integer`): larger ones cannot name one.
MAX_NOTICE_VERSION = 2**31 - 1


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

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        # A type check, not set membership: 1 == True and 0 == False in Python.
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value


class UtcDateTime(fields.AwareDateTime):
    """An ISO 8601 time, returned in UTC; a time without a zone is read as UTC.

    A time within a day of year 1 or 9999 may have no UTC equivalent (0001-01-01T00:30+01:00): refused.
    """

    def __init__(self, **kwargs):
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("not a time that exists in UTC") from None


def notice_version_field(**kwargs) -> fields.Integer:
    """The notice version a person was shown."""
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_NOTICE_VERSION), **kwargs)


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
