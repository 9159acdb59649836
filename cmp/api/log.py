"""Each site's transparency log over HTTP: checkpoints, tiles, proofs, and witnesses' cosignatures.

All of it is public, as a transparency log's is: a checkpoint, a tile or a proof holds hashes, never an event's
content, and anyone who holds a receipt or an export checks it against them.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from cmp.api.openapi import describe
from cmp.api.requests import json_body
from cmp.errors import Unknown
from cmp.schemas.log import (
    ConsistencyProofSchema,
    ConsistencyQuerySchema,
    CosignatureResultSchema,
    CosignatureSchema,
    InclusionProofSchema,
    InclusionQuerySchema,
    consistency_query_schema,
    cosignature_result_schema,
    cosignature_schema,
    inclusion_query_schema,
)
from cmp.services import merkle, tlog
from cmp.services.sites import require_site

bp = Blueprint("log", __name__, url_prefix="/api/v1/sites")


def _note(text: str, *, cache: str) -> Response:
    return Response(text, mimetype="text/plain", headers={"Cache-Control": cache, "Access-Control-Allow-Origin": "*"})


@bp.get("/<site_key>/log/checkpoint")
@describe(
    "The site's latest signed checkpoint, with its witnesses' cosignatures",
    tag="log",
    responses={200: ("text/plain", "a C2SP tlog-checkpoint in a signed note")},
    errors=(404,),
)
def latest_checkpoint(site_key: str):
    site = require_site(site_key)
    signed = tlog.latest_cosigned(site.id)
    if signed is None:
        raise Unknown("empty_log", f"the log of site {site.key!r} has no checkpoint yet")
    # A new checkpoint may come at any moment: a client must not keep this one.
    return _note(signed.note, cache="no-store")


@bp.get("/<site_key>/log/checkpoints/<int:size>")
@describe(
    "The site's signed checkpoint of one tree size (every one is kept), with its cosignatures",
    tag="log",
    responses={200: ("text/plain", "a C2SP tlog-checkpoint in a signed note")},
    errors=(404,),
)
def checkpoint_of_size(site_key: str, size: int):
    site = require_site(site_key)
    return _note(tlog.cosigned_checkpoint_of_size(site.id, size).note, cache="no-store")


@bp.get("/<site_key>/log/tile/<path:path>")
@describe(
    "A tile of the site's Merkle tree (C2SP tlog-tiles: tile/<L>/<N>[.p/<W>])",
    tag="log",
    responses={200: ("application/octet-stream", "the tile's hashes, 32 bytes each")},
    errors=(404,),
)
def tile(site_key: str, path: str):
    site = require_site(site_key)
    try:
        level, index, width = merkle.parse_tile_path("tile/" + path)
    except ValueError:
        raise Unknown("unknown_tile", "not a tile path: tile/<L>/<N>[.p/<W>]") from None
    data = tlog.read_tiles(site.id, [(level, index)]).get((level, index), b"")
    stored = len(data) // merkle.HASH_SIZE
    # A full tile never changes; a partial one is served at any width the tree has held it at.
    if stored < width or (width == merkle.TILE_WIDTH and stored != width):
        raise Unknown("unknown_tile", "this log has no such tile")
    cache = "public, max-age=31536000, immutable" if width == merkle.TILE_WIDTH else "no-store"
    return Response(
        data[: width * merkle.HASH_SIZE],
        mimetype="application/octet-stream",
        headers={"Cache-Control": cache, "Access-Control-Allow-Origin": "*"},
    )


@bp.get("/<site_key>/log/proofs/inclusion")
@describe(
    "An RFC 9162 inclusion proof of a leaf in a checkpointed tree",
    tag="log",
    responses={200: InclusionProofSchema},
    query=InclusionQuerySchema,
    errors=(404,),
)
def inclusion_proof(site_key: str):
    site = require_site(site_key)
    query = inclusion_query_schema.load(request.args.to_dict())
    proof = tlog.inclusion_at(site, query["index"], query.get("size"))
    return jsonify(proof.as_dict())


@bp.get("/<site_key>/log/proofs/consistency")
@describe(
    "An RFC 9162 consistency proof between two tree sizes of the site's log",
    tag="log",
    responses={200: ConsistencyProofSchema},
    query=ConsistencyQuerySchema,
    errors=(404,),
)
def consistency_proof(site_key: str):
    site = require_site(site_key)
    query = consistency_query_schema.load(request.args.to_dict())
    hashes = tlog.consistency(site, query["old"], query["new"])
    return jsonify({"old": query["old"], "new": query["new"], "hashes": [tlog.b64(h) for h in hashes]})


@bp.post("/<site_key>/log/cosignatures")
@describe(
    "A witness's cosignature of one of the site's checkpoints (C2SP tlog-cosignature)",
    tag="log",
    responses={201: CosignatureResultSchema},
    body=CosignatureSchema,
    errors=(404, 409),
    description="No key: the cosignature itself must verify under a witness key the site's operator registered "
    "(`cmp log witness add`).",
)
def cosign(site_key: str):
    data = cosignature_schema.load(json_body())
    site = require_site(site_key)
    cosignature, witness = tlog.accept_cosignature(site, data["size"], data["cosignature"])
    body = cosignature_result_schema.dump(
        {"size": data["size"], "witness": witness.name, "timestamp": cosignature.timestamp}
    )
    return jsonify(body), 201
