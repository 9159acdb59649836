"""Shapes shared by every route: the error, and the probes."""

from marshmallow import Schema, fields


class ErrorBodySchema(Schema):
    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema)


class StatusSchema(Schema):
    status = fields.String()
    database = fields.String()


class GpcSupportSchema(Schema):
    gpc = fields.Boolean()
    lastUpdate = fields.String()
