"""WSGI entry point: `gunicorn wsgi:app`."""

from cmp import create_app

app = create_app()
