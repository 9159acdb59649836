"""WSGI entry point: `gunicorn wsgi:app`."""

import gc

from cmp import create_app
from cmp.banner import record_code

app = create_app()

# The notices must name the banner code this process serves before it serves any (CNIL 2020-092 §48).
record_code(app)

# What the app built to start lives as long as the process. Frozen, it is left out of the collector's full
# passes, which would otherwise walk all of it again each time a large request (a bulk lookup allocates some
# 50,000 objects) sets one off.
gc.freeze()
