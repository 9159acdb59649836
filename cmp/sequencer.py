"""Running the log's sequencer: in each app process's background (`CMP_SEQUENCER=thread`), after each request
that wrote to the log (`inline`, for a single process and the tests), or as `cmp sequencer` (`off` in the app).

Every process may run one; per site only the one holding the site's lock integrates at a time (`tlog.integrate`),
so adding processes adds availability, never a second tree.
"""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from cmp.extensions import db
from cmp.models import Site

log = logging.getLogger(__name__)


class Sequencer:
    """Integrates every site's pending events every `interval` seconds, in the app's context."""

    def __init__(self, app: Flask, interval: float):
        self.app = app
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def run_once(self) -> int:
        """One round over every site with work; how many events it integrated."""
        from cmp.services import tlog

        with self.app.app_context():
            try:
                return sum(done.integrated for done in tlog.integrate_pending())
            finally:
                db.session.remove()

    def run(self, stop: threading.Event | None = None) -> None:
        """Run rounds until `stop` is set; a failed round is logged and the next one tries again."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sequencer round failed; retrying")
            stop.wait(self.interval)

    def ensure_started(self) -> None:
        """Start the background thread in this process, once (a forked worker starts its own)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self.run, name="cmp-sequencer", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join()
        self._pid = None


def init_sequencer(app: Flask) -> None:
    """Keep the app's sequencer in `app.extensions` and start it the way `CMP_SEQUENCER` says."""
    sequencer = Sequencer(app, app.config["CMP_SEQUENCER_INTERVAL_MS"] / 1000)
    app.extensions["cmp.sequencer"] = sequencer
    mode = app.config["CMP_SEQUENCER"]
    if mode == "thread":
        app.before_request(sequencer.ensure_started)
    elif mode == "inline":
        app.after_request(_integrate_written)


def _integrate_written(response):
    """Integrate the sites this request queued events for, once its writes are committed.

    It waits for an integration of the same site under way elsewhere, so the response leaves with its events in a
    signed checkpoint. The write is durable already: a failure here leaves the events pending for the next round
    and does not fail the response.
    """
    from cmp.services import chain, tlog

    site_ids = chain.sealed_sites()
    if site_ids:
        try:
            for site_id in sorted(site_ids):
                tlog.integrate(db.session.get(Site, site_id), wait=True)
        except Exception:
            log.exception("inline integration failed; the events stay pending")
    return response
