"""The auditor's routes: export filters, notice export, and the verification result."""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from cmp.schemas.fields import Pattern, UtcDateTime
from cmp.schemas.lookup import PURPOSE, SUBJECT
from cmp.vocabulary import EXPORT_FORMATS, SITE_KEY

SITE_LIST = fields.List(
    fields.String(validate=Pattern(SITE_KEY, error="not a site key")),
    validate=validate.Length(max=100),
    load_default=list,
)
FORMAT = fields.String(validate=validate.OneOf(EXPORT_FORMATS), load_default="jsonl")


class ExportQuerySchema(Schema):
    """`site` may repeat; none means every site the key may read."""

    site = SITE_LIST
    # ISO 8601, in UTC as the log keeps every time.
    start = UtcDateTime(data_key="from")
    end = UtcDateTime(data_key="to")
    subject = fields.String(validate=SUBJECT.validators)
    purpose = fields.String(validate=PURPOSE.validators)
    format = FORMAT

    @validates_schema
    def _ordered(self, data, **kwargs):
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ValidationError("must be after `from`", "to")


class NoticeQuerySchema(Schema):
    site = SITE_LIST
    format = FORMAT


class VerifyQuerySchema(Schema):
    site = fields.String(required=True, validate=Pattern(SITE_KEY, error="not a site key"))


class CheckpointSchema(Schema):
    seq = fields.Integer()
    hash = fields.String()


class VerificationSchema(Schema):
    """The chain recomputed from the database; `first_bad` names the first event that does not match."""

    site = fields.String()
    ok = fields.Boolean()
    checked = fields.Integer()
    first_bad = fields.String(allow_none=True)
    first_bad_seq = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    head_hash = fields.String(allow_none=True, metadata={"description": "the last verified hash: keep it elsewhere"})
    checkpoint = fields.Nested(
        CheckpointSchema, metadata={"description": "where the chain starts: seq 0 (genesis) or a retention checkpoint"}
    )


export_query_schema = ExportQuerySchema()
notice_query_schema = NoticeQuerySchema()
verify_query_schema = VerifyQuerySchema()
verification_schema = VerificationSchema()
