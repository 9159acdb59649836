"""marshmallow schemas, one module per resource; instances are created once and reused."""
