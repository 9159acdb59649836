"""People's rights: what a subject access answers, and the results of withdrawal and erasure."""

from marshmallow import Schema, fields

from cmp.schemas.lookup import SITE, AnswerSchema


class SiteQuerySchema(Schema):
    site = SITE


class SiteBodySchema(Schema):
    site = SITE


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


site_query_schema = SiteQuerySchema()
site_body_schema = SiteBodySchema()
subject_consents_schema = SubjectConsentsSchema()
erasure_result_schema = ErasureResultSchema()
