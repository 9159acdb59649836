"""Consent requests from the banner and from servers, and the recorded result."""

from marshmallow import Schema, fields, validate

from cmp.schemas.fields import (
    Pattern,
    StrictBoolean,
    decisions_field,
    locale_field,
    notice_version_field,
    page_url_field,
)
from cmp.schemas.lookup import SUBJECT
from cmp.vocabulary import BANNER_ACTIONS, SERVER_ACTIONS, SERVER_SOURCES, GivenBy


def given_by_field() -> fields.String:
    """Who decided when it was not the subject (policy section 6); omitted means the subject themself."""
    return fields.String(load_default=None, validate=validate.OneOf([g.value for g in GivenBy]))


class BannerConsentSchema(Schema):
    """A decision set posted by the banner for the visitor in front of it."""

    visitor_id = fields.String(allow_none=True, validate=validate.Length(max=200))
    action = fields.String(required=True, validate=validate.OneOf(sorted(BANNER_ACTIONS)))
    decisions = decisions_field(load_default=dict)
    notice_version = notice_version_field(required=True)
    locale = locale_field(load_default=None)
    page_url = page_url_field(load_default=None)
    gpc = StrictBoolean(load_default=False)
    given_by = given_by_field()


class ServerConsentSchema(Schema):
    """A decision set recorded by a server with a `consent:write` key (sign-up, call centre, import)."""

    subject = fields.String(required=True, validate=SUBJECT.validators)
    action = fields.String(load_default="save", validate=validate.OneOf(sorted(SERVER_ACTIONS)))
    source = fields.String(load_default="api", validate=validate.OneOf(sorted(SERVER_SOURCES)))
    decisions = decisions_field(load_default=dict)
    notice_version = notice_version_field(load_default=None)
    locale = locale_field(load_default=None)
    page_url = page_url_field(load_default=None)
    gpc = StrictBoolean(load_default=False)
    # The person's own connection as the server saw it; truncated and coarsened before storage.
    ip = fields.IP(load_default=None)
    user_agent = fields.String(load_default=None, validate=validate.Length(max=1024))
    country = fields.String(load_default=None, validate=Pattern(r"^[A-Z]{2}$"))
    given_by = given_by_field()


class ConsentResultSchema(Schema):
    event_id = fields.String(attribute="id")
    subject_id = fields.String()
    action = fields.String()
    source = fields.String()
    decisions = fields.Dict(keys=fields.String(), values=fields.String())
    notice_version = fields.Integer()
    notice_hash = fields.String()
    locale = fields.String(allow_none=True)
    mode = fields.String()
    country = fields.String(allow_none=True)
    gpc = fields.Boolean()
    received_at = fields.DateTime(format="iso")
    expires_at = fields.DateTime(format="iso")
    seq = fields.Integer(allow_none=True)
    hash = fields.String()
    given_by = fields.String(allow_none=True)
    receipt_url = fields.String(metadata={"description": "the visitor's own consent receipt, with its signed token"})
    signed_entry = fields.String(
        metadata={
            "description": "the log's signed statement of this entry (origin, event id, hash, receive time) as a "
            "C2SP signed note: its promise that the entry will be in the log; seq stays null until then"
        }
    )


banner_consent_schema = BannerConsentSchema()
server_consent_schema = ServerConsentSchema()
consent_result_schema = ConsentResultSchema()
