"""Sample gunicorn settings for one cmp instance: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every instance is stateless: run as many as you like behind a load balancer, all with the same
CMP_DATABASE_URL, CMP_SECRET_KEY, CMP_HMAC_KEY and (for shared rate limits) CMP_REDIS_URL.
"""

import multiprocessing
import os

bind = os.environ.get("CMP_BIND", "0.0.0.0:8000")
# gunicorn's advice for sync workers; each holds at most CMP_DB_POOL_SIZE connections (plus overflow).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# A request waits at most a few seconds for the database (connect and pool timeouts), far below this.
timeout = 30
graceful_timeout = 30
keepalive = 2
# Recycle workers now and then, spread out so they do not all restart at once.
max_requests = 10_000
max_requests_jitter = 1_000
# cmp writes its own JSON request log to stderr; gunicorn's access log would repeat it.
accesslog = None
errorlog = "-"
# Behind a TLS-terminating load balancer: believe its X-Forwarded-Proto for the request's scheme.
# (Client addresses are taken from X-Forwarded-For by cmp itself, only through CMP_TRUSTED_PROXIES.)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
