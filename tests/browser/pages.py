"""The website that embeds the banner in the browser tests, served from its own origin, and what tests read from it.

It is a support article like the demo's: an analytics script that sets `_pv_uid` and `_pv_session` and
sends a page-view pixel, a pixel tag, a partner script and a video iframe, each held back behind its purpose.
The server counts every request it answers, so a test can tell whether a pixel or the video was loaded.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from urllib.parse import unquote

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

ARTICLE = """<!doctype html>
<html lang="{lang}">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Configuring a storage pool | Shop support</title>
  <script src="{service}/banner/v1/cmp.js" data-site="shop"></script>
  <style>
    body {{ font: 16px/1.6 system-ui, sans-serif; max-width: 48rem; margin: 0 auto; padding: 1rem 1rem 16rem;
           color: #1a1a1a; background: #fff; }}
    iframe {{ width: 100%; height: 10rem; border: 1px solid #6b6b6b; }}
    .long {{ min-height: 150vh; }}
  </style>
</head>
<body>
  <header><p><strong>Shop support</strong></p></header>
  <main>
    <h1>Configuring a storage pool</h1>
    <p>This article explains how to create, expand and monitor a storage pool.</p>
    <p><button type="button" id="steps" onclick="document.getElementById('output').textContent = 'Steps shown.'">
      Show the steps</button></p>
    <p id="output"></p>
    <h2>Video walkthrough</h2>
    <iframe data-cmp-purpose="preferences" data-src="{origin}/video" title="Video walkthrough"></iframe>
    <div class="long"><p>Open the management console, choose Storage, select the disks and create the pool.</p></div>
    <img data-cmp-purpose="analytics" data-src="{origin}/pv.gif?tag=img" width="1" height="1" alt="">
  </main>
  <script type="text/plain" data-cmp-purpose="analytics">
    document.cookie = "_pv_uid=" + Math.random().toString(36).slice(2) + ";path=/;max-age=34128000;samesite=lax";
    document.cookie = "_pv_session=" + Date.now() + ";path=/;samesite=lax";
    window.analyticsRuns = (window.analyticsRuns || 0) + 1;
    new Image().src = "{origin}/pv.gif?tag=script";
  </script>
  <script type="text/plain" data-cmp-purpose="partner_sharing">
    window.partnerRuns = (window.partnerRuns || 0) + 1;
  </script>
</body>
</html>
"""

VIDEO = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Video</title></head>
<body><main><p>Video player</p></main></body></html>
"""

PRIVACY = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy policy</title></head>
<body><main><h1>Privacy policy</h1></main></body></html>
"""


class PageServer:
    """Serves the article on http://localhost:<port>: another origin than the service on 127.0.0.1."""

    def __init__(self):
        self.service = ""
        self.hits: Counter[str] = Counter()
        self._own: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.origin = f"http://localhost:{self._server.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> PageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def url(self, lang: str = "en") -> str:
        return f"{self.origin}/article?lang={lang}"

    def reset(self, service: str) -> None:
        self.service = service
        with self._lock:
            self.hits.clear()
            self._own.clear()

    def serve(self, path: str, html: str) -> str:
        """Serve a test's own page at `path` until the next reset (a real response, as the article's is); its URL."""
        with self._lock:
            self._own[path] = html
        return self.origin + path

    def count(self, path: str) -> int:
        with self._lock:
            return sum(n for hit, n in self.hits.items() if hit == path or hit.startswith(path + "?"))

    @Request.application
    def _wsgi(self, request: Request) -> Response:
        with self._lock:
            self.hits[request.full_path.rstrip("?")] += 1
        if request.path == "/article":
            lang = request.args.get("lang", "en")
            html = ARTICLE.format(lang=lang, service=self.service, origin=self.origin)
            return Response(html, mimetype="text/html", headers={"Cache-Control": "no-store"})
        if request.path in self._own:
            return Response(self._own[request.path], mimetype="text/html", headers={"Cache-Control": "no-store"})
        if request.path == "/pv.gif":
            return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store"})
        if request.path == "/video":
            return Response(VIDEO, mimetype="text/html")
        if request.path == "/privacy":
            return Response(PRIVACY, mimetype="text/html")
        return Response("not found", status=404)


def cookie_names(context) -> set[str]:
    return {c["name"] for c in context.cookies()}


def stored_consent(context) -> dict:
    """The banner's first-party consent cookie, decoded."""
    (cookie,) = [c for c in context.cookies() if c["name"] == "cmp_consent"]
    return json.loads(unquote(cookie["value"]))


def data_layer(page) -> list[list]:
    """`window.dataLayer`, each entry (an `arguments` object from gtag) as a list."""
    return page.evaluate("() => (window.dataLayer || []).map(entry => Array.from(entry))")


def wait_ready(page):
    """Wait until the banner has started on the current page, or given up on the service."""
    page.wait_for_function("() => window.cmp !== undefined")
    page.evaluate("() => window.cmp.ready.then(() => true)")
    return page
