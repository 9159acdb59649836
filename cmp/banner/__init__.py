"""Serves the banner script, and the demo site that embeds it."""

from flask import Blueprint, Response, request

from cmp.banner.bundle import Bundle, current
from cmp.errors import NotFound

bp = Blueprint("banner", __name__, url_prefix="/banner/v1")

# The embed URL stays the same across releases, so browsers keep it for a day and revalidate;
# the digest-named URL never changes content and may be kept for a year.
EMBED_CACHE = "public, max-age=86400, stale-while-revalidate=604800"
PINNED_CACHE = "public, max-age=31536000, immutable"


@bp.get("/cmp.js")
def script():
    return _serve(current(), EMBED_CACHE)


@bp.get("/cmp.<digest>.js")
def pinned_script(digest: str):
    bundle = current()
    if digest != bundle.short:
        raise NotFound("unknown_bundle", f"no banner bundle {digest!r}; the current one is {bundle.short}")
    return _serve(bundle, PINNED_CACHE)


def _serve(bundle: Bundle, cache_control: str) -> Response:
    compressed = request.accept_encodings.quality("gzip") > 0
    response = Response(bundle.gzipped if compressed else bundle.script, mimetype="text/javascript")
    if compressed:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{bundle.short}{'-gz' if compressed else ''}")
    response.headers["Cache-Control"] = cache_control
    # Any site may embed the script; it carries nothing personal.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Banner-Bundle"] = bundle.digest
    return response.make_conditional(request)
