"""The consent receipt: Kantara Consent Receipt v1.1 field names, then the log's own where Kantara has none."""

from marshmallow import Schema, fields, validate


class ReceiptQuerySchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ReceiptAddressSchema(Schema):
    """A schema.org PostalAddress; empty until the operator sets the controller's address."""

    streetAddress = fields.String()
    addressCountry = fields.String(metadata={"description": "ISO 3166-1 alpha-2"})


class ReceiptControllerSchema(Schema):
    piiController = fields.String(metadata={"description": "the controller's name, or the site's until it is set"})
    contact = fields.String(metadata={"description": "the data protection officer, else the controller"})
    address = fields.Nested(ReceiptAddressSchema)
    email = fields.String(metadata={"description": "'not provided' until the operator sets it"})
    phone = fields.String(metadata={"description": "'not provided' until the operator sets it"})
    piiControllerUrl = fields.String(metadata={"description": "the privacy policy; absent when the site has none"})


class ReceiptPurposeSchema(Schema):
    purpose = fields.String(metadata={"description": "the purpose's name as the person was shown it"})
    purposeCategory = fields.List(fields.String(), metadata={"description": "the purpose key"})
    consentType = fields.String(metadata={"description": "EXPLICIT for the person's own act, IMPLIED for a default"})
    piiCategory = fields.List(fields.String(), metadata={"description": "the kinds of personal data it processes"})
    decision = fields.String(metadata={"description": "granted or denied"})
    primaryPurpose = fields.Boolean(metadata={"description": "strictly necessary: cannot be refused"})
    termination = fields.String(metadata={"description": "when a grant ends unless renewed; N/A for a refusal"})
    thirdPartyDisclosure = fields.Boolean(metadata={"description": "shared beyond the controller, or sold"})
    thirdPartyName = fields.String(
        allow_none=True,
        metadata={"description": "the cookie providers and recipients shown, `Name (contact)`; null without any"},
    )
    separateConsent = fields.Boolean(
        metadata={"description": "a separate consent (PIPL Art. 23, 39): given by its own act, never by Accept all"}
    )


class ReceiptServiceSchema(Schema):
    service = fields.String()
    purposes = fields.List(fields.Nested(ReceiptPurposeSchema))


class ReceiptEvidenceSchema(Schema):
    ipPrefix = fields.String(allow_none=True)
    userAgent = fields.Dict(allow_none=True)
    pageUrl = fields.String(allow_none=True)


class ReceiptLogSchema(Schema):
    """The event's place in the site's transparency log: enough to check the receipt offline, from itself alone."""

    status = fields.String(metadata={"description": "pending (acknowledged, not yet in a checkpoint) or integrated"})
    origin = fields.String(metadata={"description": "the log's origin: the first line of its checkpoints"})
    verifierKey = fields.String(metadata={"description": "the log's public key (signed-note verifier key)"})
    entry = fields.Dict(
        metadata={"description": "the fields the event's hash covers: SHA-256 of their RFC 8785 JSON is eventHash"}
    )
    signedEntry = fields.String(
        metadata={"description": "the log's signed statement of the entry (hash and receive time), a signed note"}
    )
    index = fields.Integer(allow_none=True, metadata={"description": "leaf index; null while pending"})
    treeSize = fields.Integer(allow_none=True)
    inclusionProof = fields.List(
        fields.String(), allow_none=True, metadata={"description": "RFC 9162 inclusion proof, base64 hashes"}
    )
    checkpoint = fields.String(
        allow_none=True, metadata={"description": "the signed checkpoint of treeSize with witnesses' cosignatures"}
    )


class ReceiptSchema(Schema):
    """One consent event as its receipt."""

    version = fields.String()
    jurisdiction = fields.String(
        metadata={"description": "the person's country when known, else the controller's, else 'unknown'"}
    )
    consentTimestamp = fields.Integer(metadata={"description": "seconds since the epoch"})
    collectionMethod = fields.String()
    consentReceiptID = fields.String(metadata={"description": "the event id"})
    language = fields.String()
    piiPrincipalId = fields.String(metadata={"description": "the pseudonymous subject id"})
    piiControllers = fields.List(fields.Nested(ReceiptControllerSchema))
    policyUrl = fields.String(metadata={"description": "'not provided' when the site has no privacy policy URL"})
    services = fields.List(fields.Nested(ReceiptServiceSchema))
    sensitive = fields.Boolean()
    spiCat = fields.List(fields.String())
    receivedAt = fields.String(metadata={"description": "when the log received the decision, as in the export"})
    action = fields.String(metadata={"description": "the action: accept_all, save, withdraw, ..."})
    givenBy = fields.String(
        allow_none=True, metadata={"description": "guardian (policy section 6); null: the person themself"}
    )
    noticeVersion = fields.Integer(allow_none=True)
    noticeHash = fields.String(allow_none=True)
    mode = fields.String()
    gpc = fields.Boolean()
    expiresAt = fields.String(allow_none=True)
    withdrawalMethod = fields.String()
    storageLocation = fields.String(allow_none=True, metadata={"description": "where the record is kept (§8)"})
    evidence = fields.Nested(ReceiptEvidenceSchema, allow_none=True, metadata={"description": "null once erased"})
    eventHash = fields.String(metadata={"description": "the event's hash: its leaf in the site's log"})
    log = fields.Nested(ReceiptLogSchema, metadata={"description": "what proves the event is in the site's log"})


receipt_query_schema = ReceiptQuerySchema()
receipt_schema = ReceiptSchema()
