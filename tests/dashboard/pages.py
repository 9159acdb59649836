"""Reading the dashboard as a browser would: its forms, its tables and its session."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from flask import current_app

from cmp.extensions import db
from cmp.services import keys


def new_key(*scopes: str, bound_to=()) -> str:
    """A new API key with these scopes (and sites), committed; returns the token an auditor would paste."""
    token = keys.create_key("auditor", list(scopes), list(bound_to)).token
    db.session.commit()
    return token


def session_of(client) -> dict:
    """The dashboard session's content, read the way Flask reads it; empty without a cookie."""
    cookie = client.get_cookie("cmp_audit", path="/audit")
    if cookie is None:
        return {}
    return current_app.session_interface.get_signing_serializer(current_app).loads(cookie.value)


def csrf_token(client) -> str:
    """The form token of the client's session, as the sign-in page holds it."""
    token = session_of(client).get("csrf")
    if token is None:
        page = client.get("/audit/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return token


def sign_in(client, token: str, next: str | None = None):
    """Fill in and send the sign-in form."""
    form = {"csrf_token": csrf_token(client), "api_key": token}
    if next is not None:
        form["next"] = next
    return client.post("/audit/login", data=form)


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id", ""), [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._in_body:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table(html: str, table_id: str) -> list[list[str]]:
    """The body rows of the table with this id, each a list of its cells' text."""
    parser = _Tables()
    parser.feed(html)
    return parser.tables[table_id]
