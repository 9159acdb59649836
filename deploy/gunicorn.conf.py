"""Sample gunicorn settings for one cmp instance: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every instance is stateless: run as many as you like behind a load balancer, all with the same
CMP_DATABASE_URL, CMP_SECRET_KEY, CMP_HMAC_KEY and (for shared rate limits) CMP_REDIS_URL.
"""

import multiprocessing
import os

bind = os.environ.get("CMP_BIND", "0.0.0.0:8000")
# Processes: gunicorn's advice. Each holds at most CMP_DB_POOL_SIZE connections (plus overflow); keep
# threads at or below the pool size so no thread waits for a connection.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threaded workers: the main thread keeps telling the arbiter it is alive while a request thread streams a
# long audit export, which a sync worker would be killed for after `timeout`.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# A worker whose main loop is stuck this long is restarted; requests themselves wait at most a few seconds for
# the database (connect and pool timeouts).
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
# gunicorn's runtime control socket has one default path per user: two instances on one host would share it.
control_socket_disable = True
