"""Consent lookups for the marketing sender and the analytics pipeline (scope `consent:read`).

Each worker keeps, for 5 seconds (the app setting `CMP_LOOKUP_CACHE_SECONDS`; 0 turns it off), the API keys
that passed and each site's id and purpose keys, so a lookup costs one query: the subjects' current state. A
revoked key therefore stops working within that time in every worker. A purpose added to a site is seen at
once (an unknown purpose reloads the site); answers themselves are never kept.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from functools import wraps

from cachetools import TTLCache
from flask import Blueprint, current_app, g, request

from cmp.api.openapi import describe
from cmp.api.requests import bearer_token, json_body, require_key, requires
from cmp.errors import Unknown
from cmp.schemas.lookup import (
    BulkLookupResultSchema,
    BulkLookupSchema,
    LookupQuerySchema,
    LookupResultSchema,
    bulk_lookup_schema,
    dump_bulk_result,
    dump_lookup_result,
    lookup_query_schema,
)
from cmp.services import keys, lookup
from cmp.services.sites import get_site
from cmp.vocabulary import Scope

bp = Blueprint("lookup", __name__, url_prefix="/api/v1/consents")


class Recent:
    """Values kept `seconds` in this process, at most `size` of them, shared safely by a worker's threads."""

    def __init__(self, seconds: float, size: int = 1024, timer=time.monotonic):
        self._cache = TTLCache(maxsize=size, ttl=seconds, timer=timer) if seconds > 0 else None
        self._lock = threading.Lock()

    def get(self, key):
        if self._cache is None:
            return None
        with self._lock:
            return self._cache.get(key)

    def put(self, key, value):
        if self._cache is not None:
            with self._lock:
                self._cache[key] = value
        return value


@dataclass(frozen=True)
class Grant:
    """What `keys.authorise` reads of a key that authenticated."""

    scopes: frozenset[str]
    sites: tuple[str, ...]


@bp.before_request
def _start_clock():
    g.lookup_started = time.perf_counter()
    lookup.read_seconds.set(0.0)


@bp.after_request
def _server_timing(response):
    # W3C Server-Timing, for callers and benchmarks: `app` the time spent answering, key check to serialised body;
    # `db` the part of it spent on the state query (sent, run by the database, rows read).
    started = g.get("lookup_started")
    if started is not None:
        app_ms, db_ms = (time.perf_counter() - started) * 1000, lookup.read_seconds.get() * 1000
        response.headers["Server-Timing"] = f"app;dur={app_ms:.1f}, db;dur={db_ms:.1f}"
    return response


def _cached_reader(scope: Scope) -> Grant:
    """The caller's key, checked for `scope` before the question is read; its sites are checked after."""
    token = bearer_token()
    cache = current_app.extensions["cmp.lookup_cache"]["keys"]
    # Kept by a digest of the token: the secret itself is never a dictionary key.
    fingerprint = hashlib.sha256(token.encode()).digest() if token else None
    grant = cache.get(fingerprint) if fingerprint else None
    if grant is None:
        key = require_key(scope)
        return cache.put(fingerprint, Grant(frozenset(key.scopes), tuple(key.sites)))
    keys.authorise(grant, scope)
    return grant


def _site(site_key: str, purposes: list[str]) -> lookup.LookupSite:
    cache = current_app.extensions["cmp.lookup_cache"]["sites"]
    site = cache.get(site_key)
    if site is None or not site.purposes.issuperset(purposes):
        found = get_site(site_key)
        if found is None:
            raise Unknown("unknown_site", f"no site {site_key!r}", {"site": site_key})
        site = cache.put(site_key, lookup.LookupSite.of(found))
    return site


def _subject_keys() -> dict:
    """What names a subject in the store: the HMAC key for identifiers and the signer of visitor ids."""
    return {"hmac_key": current_app.config["CMP_HMAC_KEY"], "visitor_ids": current_app.extensions["cmp.visitor_ids"]}


@bp.get("/lookup")
@describe(
    "May we act for this subject and purpose?",
    tag="lookups",
    responses={200: LookupResultSchema},
    query=LookupQuerySchema,
    errors=(404,),
)
@requires(Scope.CONSENT_READ, authenticate=_cached_reader)
def lookup_one(key: Grant):
    query = lookup_query_schema.load(request.args.to_dict())
    site, subject, purpose = query["site"], query["subject"], query["purpose"]
    keys.authorise(key, Scope.CONSENT_READ, site)
    [answers] = lookup.lookup(_site(site, [purpose]), [subject], [purpose], **_subject_keys())
    body = dump_lookup_result(site, subject, purpose, answers[purpose])
    return current_app.response_class(body, mimetype="application/json")


# 10,000 subjects of up to 320 characters, quoted: larger than the default body limit on purpose.
BULK_MAX_BYTES = 4 * 1024 * 1024


def _bulk_body_limit(view):
    # Set before the body is read, which `requires` does first.
    @wraps(view)
    def limited(**kwargs):
        request.max_content_length = BULK_MAX_BYTES
        return view(**kwargs)

    return limited


@bp.post("/lookup")
@describe(
    "Bulk lookup: up to 10,000 subjects, one or more purposes",
    tag="lookups",
    responses={200: BulkLookupResultSchema},
    body=BulkLookupSchema,
    errors=(404,),
)
@_bulk_body_limit
@requires(Scope.CONSENT_READ, body=True, authenticate=_cached_reader)
def lookup_many(key: Grant):
    data = bulk_lookup_schema.load(json_body())
    purposes = list(dict.fromkeys(data["purposes"]))
    keys.authorise(key, Scope.CONSENT_READ, data["site"])
    answers = lookup.lookup(_site(data["site"], purposes), data["subjects"], purposes, **_subject_keys())
    body = dump_bulk_result(data["site"], purposes, data["subjects"], answers)
    return current_app.response_class(body, mimetype="application/json")
