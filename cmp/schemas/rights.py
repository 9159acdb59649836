"""People's rights: what a subject access answers, what the other rights take, and their results."""

from marshmallow import Schema, fields, validate

from cmp.schemas.fields import Pattern
from cmp.schemas.lookup import SITE, SUBJECT, AnswerSchema


class SiteQuerySchema(Schema):
    site = SITE


class SiteBodySchema(Schema):
    site = SITE


class CorrectionSchema(Schema):
    site = SITE
    identifier = fields.String(
        required=True,
        validate=SUBJECT.validators,
        metadata={"description": "the identifier that replaces the one in the path: email:, user: or visitor:"},
    )


class AgeSchema(Schema):
    site = SITE
    # GDPR Art. 8(1): only whether the person is below the age of digital consent is kept, never the age.
    age = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=0, max=130), metadata={"description": "in years"}
    )
    country = fields.String(
        load_default=None,
        validate=Pattern(r"^[A-Z]{2}$"),
        metadata={"description": "ISO 3166-1 alpha-2: whose age of digital consent applies; none: the site's *"},
    )


class LinkedIdentifierSchema(Schema):
    """An identifier linked to the subject: its kind only; the value was never stored."""

    kind = fields.String(metadata={"description": "visitor, user or email"})
    linked_at = fields.DateTime(format="iso")


class PurposeStateSchema(AnswerSchema):
    """The current decision for one purpose, and what a lookup answers for it now."""

    decision = fields.String()
    action = fields.String()
    source = fields.String()


class EvidenceSchema(Schema):
    ip_prefix = fields.String(allow_none=True)
    user_agent = fields.Dict(allow_none=True)
    page_url = fields.String(allow_none=True)


class SubjectEventSchema(Schema):
    """One event of the subject, with its chain fields; `evidence` is null once erased or purged."""

    id = fields.String()
    seq = fields.Integer()
    action = fields.String()
    source = fields.String()
    decisions = fields.Dict(keys=fields.String(), values=fields.String())
    notice_version = fields.Integer(allow_none=True)
    notice_hash = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    mode = fields.String()
    country = fields.String(allow_none=True)
    gpc = fields.Boolean()
    given_by = fields.String(allow_none=True, metadata={"description": "guardian, or null: the subject themself"})
    received_at = fields.DateTime(format="iso")
    expires_at = fields.DateTime(format="iso", allow_none=True)
    evidence = fields.Method(
        "_evidence",
        metadata={"type": "object", "nullable": True, "description": "ip_prefix, user_agent, page_url; null if erased"},
    )
    evidence_digest = fields.String()
    prev_hash = fields.String()
    hash = fields.String()

    def _evidence(self, event) -> dict | None:
        if event.evidence_salt is None:
            return None
        return EvidenceSchema().dump(event)


class SubjectConsentsSchema(Schema):
    site = fields.String()
    subject_id = fields.String()
    restricted = fields.Boolean(metadata={"description": "processing restricted: every lookup answers restricted"})
    child = fields.Boolean(metadata={"description": "below the age of digital consent: only a guardian's grant counts"})
    identifiers = fields.List(fields.Nested(LinkedIdentifierSchema))
    state = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(PurposeStateSchema),
        metadata={"description": "purpose -> current decision, and what a lookup answers now"},
    )
    events = fields.List(fields.Nested(SubjectEventSchema))


class RemovedSchema(Schema):
    identifiers = fields.Integer(metadata={"description": "identifier links deleted"})
    states = fields.Integer(metadata={"description": "current-state rows deleted"})
    email_activity = fields.Integer(metadata={"description": "email opens and clicks deleted"})


class ErasureResultSchema(Schema):
    subject_id = fields.String()
    event_id = fields.String(attribute="event.id", metadata={"description": "the erase event appended to the log"})
    seq = fields.Integer(attribute="event.seq")
    hash = fields.String(attribute="event.hash")
    received_at = fields.DateTime(format="iso", attribute="event.received_at")
    removed = fields.Nested(RemovedSchema)
    evidence_emptied = fields.Integer(metadata={"description": "events whose evidence is gone"})


class RecordedSchema(Schema):
    """The result of a request that records an event only when it changes something."""

    event_id = fields.Method(
        "_event_id",
        metadata={"type": "string", "nullable": True, "description": "the event appended; null: nothing changed"},
    )
    received_at = fields.Method("_received_at", metadata={"type": "string", "format": "date-time", "nullable": True})

    def _event(self, result):
        return result.event

    def _event_id(self, result) -> str | None:
        event = self._event(result)
        return event.id if event else None

    def _received_at(self, result) -> str | None:
        event = self._event(result)
        return event.received_at.isoformat() if event else None


class RestrictionResultSchema(RecordedSchema):
    subject_id = fields.String()
    restricted = fields.Boolean(attribute="value")


class AgeResultSchema(RecordedSchema):
    subject_id = fields.String(attribute="marked.subject_id")
    child = fields.Boolean(attribute="marked.value")
    age_of_consent = fields.Integer(metadata={"description": "the age of digital consent applied"})

    def _event(self, result):
        return result.marked.event


class CorrectionResultSchema(Schema):
    subject_id = fields.String()
    event_id = fields.String(attribute="event.id", metadata={"description": "the correct event appended to the log"})
    received_at = fields.DateTime(format="iso", attribute="event.received_at")


site_query_schema = SiteQuerySchema()
site_body_schema = SiteBodySchema()
subject_consents_schema = SubjectConsentsSchema()
erasure_result_schema = ErasureResultSchema()
correction_schema = CorrectionSchema()
age_schema = AgeSchema()
restriction_result_schema = RestrictionResultSchema()
age_result_schema = AgeResultSchema()
correction_result_schema = CorrectionResultSchema()
