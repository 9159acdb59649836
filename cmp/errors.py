"""Domain errors: raised by services, rendered by the one error helper in `cmp.api.errors`."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `code` is stable and machine-readable."""

    status = 400

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class BadRequest(DomainError):
    status = 400


class UnsupportedMediaType(DomainError):
    status = 415


class NotFound(DomainError):
    status = 404


class Invalid(DomainError):
    status = 422


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403


class Unauthorized(DomainError):
    status = 401
