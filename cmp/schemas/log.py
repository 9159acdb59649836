"""The transparency log's public interface: proofs asked for by tree size and leaf index, and cosignatures."""

from marshmallow import Schema, fields, validate

# A tree size or leaf index: what a 64-bit signed integer holds (C2SP checkpoints allow up to 2^64 - 1; no site's
# log comes near either).
POSITION = validate.Range(min=0, max=2**63 - 1)
HASHES = fields.List(fields.String(metadata={"description": "a SHA-256 hash, base64"}))


class InclusionQuerySchema(Schema):
    index = fields.Integer(required=True, strict=False, validate=POSITION, metadata={"description": "leaf index"})
    size = fields.Integer(
        strict=False, validate=POSITION, metadata={"description": "a checkpointed tree size; default the latest"}
    )


class ConsistencyQuerySchema(Schema):
    old = fields.Integer(required=True, strict=False, validate=validate.Range(min=1, max=2**63 - 1))
    new = fields.Integer(required=True, strict=False, validate=POSITION)


class InclusionProofSchema(Schema):
    index = fields.Integer(metadata={"description": "the leaf index: the event's place in the log minus one"})
    tree_size = fields.Integer()
    leaf_hash = fields.String(metadata={"description": "RFC 9162 leaf hash of the event's hash, base64"})
    hashes = HASHES
    checkpoint = fields.String(metadata={"description": "the signed checkpoint (C2SP signed note) of tree_size"})
    removed = fields.Boolean(metadata={"description": "the event's content was removed (retention): its leaf stays"})


class ConsistencyProofSchema(Schema):
    old = fields.Integer()
    new = fields.Integer()
    hashes = HASHES


class CosignatureSchema(Schema):
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2**63 - 1))
    cosignature = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": "the witness's signature line for the checkpoint of `size` (C2SP tlog-cosignature)"},
    )


class CosignatureResultSchema(Schema):
    size = fields.Integer()
    witness = fields.String()
    timestamp = fields.Integer()


inclusion_query_schema = InclusionQuerySchema()
consistency_query_schema = ConsistencyQuerySchema()
inclusion_proof_schema = InclusionProofSchema()
consistency_proof_schema = ConsistencyProofSchema()
cosignature_schema = CosignatureSchema()
cosignature_result_schema = CosignatureResultSchema()
