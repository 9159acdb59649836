"""Marketing email: subscriptions, unsubscribe headers and tracking links."""

from marshmallow import Schema, ValidationError, fields, validate

from cmp.schemas.fields import Pattern, StrictBoolean, locale_field, notice_version_field, page_url_field
from cmp.schemas.lookup import SITE
from cmp.services.identifiers import InvalidIdentifier, parse_identifier

MAX_DESTINATIONS = 100


def _address(value: str) -> None:
    try:
        parse_identifier(f"email:{value}")
    except InvalidIdentifier as exc:
        raise ValidationError(str(exc)) from None


EMAIL = fields.String(required=True, validate=[validate.Length(max=320), _address])


class SubscriptionSchema(Schema):
    """A sign-up for marketing email, with what the person was shown and how they reached the form."""

    site = SITE
    email = EMAIL
    # The person's language: the confirmation and unsubscribe pages use it.
    locale = locale_field(load_default=None)
    notice_version = notice_version_field(load_default=None)
    page_url = page_url_field(load_default=None)
    gpc = StrictBoolean(load_default=False)
    # The person's own connection as the sign-up form saw it; truncated and coarsened before storage.
    ip = fields.IP(load_default=None)
    user_agent = fields.String(load_default=None, validate=validate.Length(max=1024))
    country = fields.String(load_default=None, validate=Pattern(r"^[A-Z]{2}$"))


class SubscriptionResultSchema(Schema):
    site = fields.String()
    status = fields.String(metadata={"description": "pending until the link is followed; confirmed if it was"})
    subject_id = fields.String()
    event_id = fields.String()
    confirmation_url = fields.String(allow_none=True)
    confirmation_expires_at = fields.DateTime(format="iso", allow_none=True)


class HeadersQuerySchema(Schema):
    site = SITE
    email = EMAIL
    locale = locale_field(load_default=None)


class HeadersResultSchema(Schema):
    site = fields.String()
    unsubscribe_url = fields.String()
    headers = fields.Dict(keys=fields.String(), values=fields.String())


class TrackingLinksSchema(Schema):
    site = SITE
    email = EMAIL
    # The sender's id for the message (its Message-ID, say): visible ASCII, as RFC 5322 allows.
    message_id = fields.String(required=True, validate=Pattern(r"^[\x21-\x7e]{1,255}$"))
    destinations = fields.List(
        fields.Url(schemes={"http", "https"}, require_tld=False, validate=validate.Length(max=2048)),
        load_default=list,
        validate=validate.Length(max=MAX_DESTINATIONS),
    )


class TrackedLinkSchema(Schema):
    destination = fields.String()
    url = fields.String(
        metadata={"description": "the tracked link to mail; the destination itself where email_tracking is not allowed"}
    )


class TrackingSchema(Schema):
    allowed = fields.Boolean()
    reason = fields.String()


class TrackingLinksResultSchema(Schema):
    site = fields.String()
    message_id = fields.String()
    tracking = fields.Nested(
        TrackingSchema, metadata={"description": "whether opens and clicks are recorded now (email_tracking)"}
    )
    open_pixel_url = fields.String(
        allow_none=True,
        metadata={"description": "the open pixel to mail; null where email_tracking is not allowed: mail none"},
    )
    links = fields.List(fields.Nested(TrackedLinkSchema))


subscription_schema = SubscriptionSchema()
subscription_result_schema = SubscriptionResultSchema()
headers_query_schema = HeadersQuerySchema()
headers_result_schema = HeadersResultSchema()
tracking_links_schema = TrackingLinksSchema()
tracking_links_result_schema = TrackingLinksResultSchema()
