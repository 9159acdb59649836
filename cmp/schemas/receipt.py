"""The consent receipt: Kantara Consent Receipt v1.1 field names, then ISO/IEC TS 27560 where Kantara has none."""

from marshmallow import Schema, fields, validate


class ReceiptQuerySchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ReceiptControllerSchema(Schema):
    piiController = fields.String()
    piiControllerUrl = fields.String(allow_none=True)


class ReceiptPurposeSchema(Schema):
    purpose = fields.String(metadata={"description": "the purpose's name as the person was shown it"})
    purposeCategory = fields.List(fields.String(), metadata={"description": "the purpose key"})
    consentType = fields.String(metadata={"description": "EXPLICIT for the person's own act, IMPLIED for a default"})
    decision = fields.String(metadata={"description": "granted or denied"})
    primaryPurpose = fields.Boolean(metadata={"description": "strictly necessary: cannot be refused"})
    termination = fields.String(allow_none=True, metadata={"description": "when a grant ends unless renewed"})
    thirdPartyDisclosure = fields.Boolean()
    thirdPartyName = fields.String(allow_none=True, metadata={"description": "from the cookie inventory shown"})


class ReceiptServiceSchema(Schema):
    service = fields.String()
    purposes = fields.List(fields.Nested(ReceiptPurposeSchema))


class ReceiptEvidenceSchema(Schema):
    ipPrefix = fields.String(allow_none=True)
    userAgent = fields.Dict(allow_none=True)
    pageUrl = fields.String(allow_none=True)


class ReceiptSchema(Schema):
    """One consent event as its receipt."""

    version = fields.String()
    jurisdiction = fields.String(allow_none=True, metadata={"description": "the person's country, when known"})
    consentTimestamp = fields.Integer(metadata={"description": "seconds since the epoch"})
    collectionMethod = fields.String()
    consentReceiptID = fields.String(metadata={"description": "the event id"})
    language = fields.String()
    piiPrincipalId = fields.String(metadata={"description": "the pseudonymous subject id"})
    piiControllers = fields.List(fields.Nested(ReceiptControllerSchema))
    policyUrl = fields.String(allow_none=True)
    services = fields.List(fields.Nested(ReceiptServiceSchema))
    sensitive = fields.Boolean()
    spiCat = fields.List(fields.String())
    eventTime = fields.String()
    eventType = fields.String(metadata={"description": "the action: accept_all, save, withdraw, ..."})
    eventBy = fields.String(metadata={"description": "subject, or guardian (policy section 6)"})
    noticeVersion = fields.Integer(allow_none=True)
    noticeHash = fields.String(allow_none=True)
    mode = fields.String()
    gpc = fields.Boolean()
    validUntil = fields.String(allow_none=True)
    withdrawalMethod = fields.String()
    storageLocation = fields.String(allow_none=True, metadata={"description": "where the record is kept (§8)"})
    evidence = fields.Nested(ReceiptEvidenceSchema, allow_none=True, metadata={"description": "null once erased"})
    eventHash = fields.String(metadata={"description": "the event's hash in the site's chain"})


receipt_query_schema = ReceiptQuerySchema()
receipt_schema = ReceiptSchema()
