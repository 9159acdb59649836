"""Serves the banner script, and the demo site that embeds it; records its code in the notices at start-up."""

import logging

from flask import Blueprint, Flask, Response, request
from sqlalchemy.exc import SQLAlchemyError

from cmp.api.openapi import describe
from cmp.banner import bundle
from cmp.banner.bundle import Bundle
from cmp.errors import Unknown

bp = Blueprint("banner", __name__, url_prefix="/banner/v1")
log = logging.getLogger(__name__)

# The embed URL stays the same across releases, so browsers keep it for a day and revalidate;
# the digest-named URL never changes content and may be kept for a year.
EMBED_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
PINNED_CACHE = "public, max-age=31536000, immutable"
SCRIPT_RESPONSES = {200: ("text/javascript", "the banner"), 304: "not modified"}


@bp.get("/cmp.js")
@describe("The banner script, minified and gzipped", tag="banner", responses=SCRIPT_RESPONSES)
def script():
    return _serve(bundle.current(), EMBED_CACHE)


@bp.get("/cmp.<digest>.js")
@describe("The banner script at an address that never changes", tag="banner", responses=SCRIPT_RESPONSES, errors=(404,))
def pinned_script(digest: str):
    served = bundle.current()
    if digest != served.short:
        raise Unknown("unknown_bundle", f"no banner bundle {digest!r}; the current one is {served.short}")
    return _serve(served, PINNED_CACHE)


def _serve(served: Bundle, cache_control: str) -> Response:
    compressed = request.accept_encodings.quality("gzip") > 0
    response = Response(served.gzipped if compressed else served.script, mimetype="text/javascript")
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{served.short}{'-gz' if compressed else ''}")
    response.headers["Cache-Control"] = cache_control
    # Any site may embed the script; it carries nothing personal.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Banner-Bundle"] = served.digest
    return response.make_conditional(request)


def record_code(app: Flask) -> None:
    """Before a process serves the banner: make every site's current notice name the code it will serve.

    Called by the serving entry points (wsgi.py, `cmp run`), not by the app factory: every command builds the app,
    `cmp db upgrade` among them, on a database that may not be migrated yet. A process that cannot reach the
    database, or finds it unmigrated, still starts (it answers 503 until the database is back) and says so in the
    log; the next start records the code. The engine's connections are closed afterwards, so none of them is shared
    with the worker processes a server may fork from this one.
    """
    from cmp.extensions import db
    from cmp.services.notices import record_banner_code

    served = bundle.current()
    with app.app_context():
        try:
            published = record_banner_code(served.digest)
        except SQLAlchemyError as exc:
            db.session.rollback()
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            log.warning("banner code not recorded in the notices: %s", reason, extra={"bundle": served.short})
            return
        finally:
            db.session.remove()
            db.engine.dispose()
        for notice in published:
            log.info(
                "notice published for new banner code",
                extra={"site_id": notice.site_id, "version": notice.version, "bundle": served.short},
            )
