"""Thin JSON blueprints: parse with a schema, call a service, dump the result."""
