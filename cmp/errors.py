"""Domain errors: raised by services and views, rendered by `cmp.api.errors` whatever asked.

Each names what went wrong in the domain's words; which HTTP status says so is the renderer's business.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `code` is stable and machine-readable."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class Malformed(DomainError):
    """The request cannot be read at all (a body that is not JSON, a form without its token)."""


class UnsupportedBody(DomainError):
    """The body is of a kind the route does not take."""


class Unauthenticated(DomainError):
    """No credential, or not a valid one."""


class NotPermitted(DomainError):
    """The credential is valid but may not do this (a scope, a site, an origin)."""


class Unknown(DomainError):
    """What the request names does not exist here (a site, a subject, a receipt)."""


class Refused(DomainError):
    """The request contradicts what is stored (a decision that changed meanwhile, identifiers of two people)."""


class Invalid(DomainError):
    """The request is readable but its values break a rule; `details` name them."""


class Unavailable(DomainError):
    """Something the request needs cannot be reached now; asking again later may succeed."""
