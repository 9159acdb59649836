"""Consent lookups and identifier links."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson
from marshmallow import Schema, fields, validate

from cmp.schemas.fields import Pattern
from cmp.vocabulary import CONTROL_CHARACTERS, MAX_SUBJECTS, PURPOSE_KEY, SITE_KEY

if TYPE_CHECKING:  # the answers' type only: schemas never call services
    from cmp.services.lookup import Answer

_SUBJECT_LENGTH = (3, 320)
_SUBJECT_TEXT = re.compile(rf"^(visitor|user|email):[^{CONTROL_CHARACTERS}]+$")
SUBJECT = fields.String(
    validate=[
        validate.Length(*_SUBJECT_LENGTH),
        Pattern(
            _SUBJECT_TEXT.pattern,
            error="use visitor:, user: or email:, then the identifier, with no control characters",
        ),
    ]
)
PURPOSE = fields.String(validate=Pattern(PURPOSE_KEY, error="not a purpose key"))
SITE = fields.String(required=True, validate=Pattern(SITE_KEY, error="not a site key"))


class LookupQuerySchema(Schema):
    site = SITE
    subject = fields.String(required=True, validate=SUBJECT.validators)
    purpose = fields.String(required=True, validate=PURPOSE.validators)


class Subjects(fields.List):
    """A list of subjects that reads a well-formed list in one pass.

    A bulk lookup carries up to 10,000 subjects, and marshmallow's field and two validators per item take about as
    long as hashing them all (bench/README.md, lookups). A list with any item that is not a string of SUBJECT's
    length and pattern goes through `fields.List`, which names each bad item; the list's own validators run either
    way.
    """

    def _deserialize(self, value, attr, data, **kwargs) -> list:
        shortest, longest = _SUBJECT_LENGTH
        if type(value) is list and all(
            type(item) is str and shortest <= len(item) <= longest and _SUBJECT_TEXT.fullmatch(item) for item in value
        ):
            return list(value)
        return super()._deserialize(value, attr, data, **kwargs)


class BulkLookupSchema(Schema):
    site = SITE
    subjects = Subjects(SUBJECT, required=True, validate=validate.Length(min=1, max=MAX_SUBJECTS))
    purposes = fields.List(PURPOSE, required=True, validate=validate.Length(min=1, max=64))


class AnswerSchema(Schema):
    """One answer; `reason` is one of granted denied withdrawn expired notice_changed no_record gpc restricted
    guardian_required."""

    allowed = fields.Boolean()
    reason = fields.String()
    decided_at = fields.DateTime(allow_none=True)
    event_id = fields.String(allow_none=True)
    notice_version = fields.Integer(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)


class LookupResultSchema(AnswerSchema):
    site = fields.String()
    subject = fields.String()
    purpose = fields.String()


class BulkResultSchema(Schema):
    subject = fields.String()
    allowed = fields.Boolean(metadata={"description": "every purpose asked for is allowed"})
    purposes = fields.Dict(keys=fields.String(), values=fields.Nested(AnswerSchema))


class BulkLookupResultSchema(Schema):
    site = fields.String()
    purposes = fields.List(fields.String())
    results = fields.List(fields.Nested(BulkResultSchema))


def dump_bulk_result(
    site: str, purposes: Sequence[str], subjects: Sequence[str], answers: Sequence[dict[str, Answer]]
) -> bytes:
    """BulkLookupResultSchema's document, written by orjson from plain dictionaries.

    Through marshmallow, or the standard library's json, 10,000 results take longer to write than to find
    (bench/README.md, lookups); orjson writes datetimes as `isoformat` does, and `tests/api/test_lookup.py` checks
    the document is what the schema dumps.
    """
    results = [
        {
            "subject": subject,
            "allowed": all(answer.allowed for answer in by_purpose.values()),
            "purposes": {purpose: answer._asdict() for purpose, answer in by_purpose.items()},
        }
        for subject, by_purpose in zip(subjects, answers, strict=True)
    ]
    return orjson.dumps(
        {"site": site, "purposes": list(purposes), "results": results}, option=orjson.OPT_APPEND_NEWLINE
    )


def dump_lookup_result(site: str, subject: str, purpose: str, answer: Answer) -> bytes:
    """LookupResultSchema's document, written as the bulk one is."""
    document = {"site": site, "subject": subject, "purpose": purpose, **answer._asdict()}
    return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)


class LinkSchema(Schema):
    subjects = fields.List(SUBJECT, required=True, validate=validate.Length(min=2, max=10))


class LinkResultSchema(Schema):
    subject_id = fields.String()
    linked = fields.Integer()


lookup_query_schema = LookupQuerySchema()
bulk_lookup_schema = BulkLookupSchema()
link_schema = LinkSchema()
