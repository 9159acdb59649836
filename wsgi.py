"""WSGI entry point: `gunicorn wsgi:app`."""

import gc

from cmp import create_app

app = create_app()

# What the app built to start lives as long as the process. Frozen, it is left out of the collector's full
# passes, which would otherwise walk all of it again each time a large request (a bulk lookup allocates some
# 50,000 objects) sets one off.
gc.freeze()
