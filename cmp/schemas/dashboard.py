"""The auditor dashboard's query: which site, over which UTC days."""

from datetime import UTC, datetime, timedelta

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

from cmp.schemas.fields import Pattern
from cmp.vocabulary import MAX_PERIOD_DAYS, SITE_KEY

# With no dates given, the dashboard shows the last 30 days, today (UTC) included.
DEFAULT_PERIOD_DAYS = 30


class DashboardQuerySchema(Schema):
    """`site` (default: the first the key may audit), `from` and `to` (YYYY-MM-DD, UTC days, both included)."""

    class Meta:
        # A bookmarked or shared address may carry parameters of its own; they change nothing.
        unknown = EXCLUDE

    site = fields.String(load_default=None, validate=Pattern(SITE_KEY, error="not a site key"))
    first = fields.Date(data_key="from", load_default=None)
    last = fields.Date(data_key="to", load_default=None)

    @post_load
    def _period(self, data, **kwargs):
        """`to` defaults to today, `from` to 30 days before `to`; both days count."""
        last = data["last"] = data["last"] or datetime.now(UTC).date()
        first = data["first"] = data["first"] or last - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        if first > last:
            raise ValidationError("must not be after to", "from")
        if (last - first).days + 1 > MAX_PERIOD_DAYS:
            raise ValidationError(f"a period covers at most {MAX_PERIOD_DAYS} days", "from")
        return data


dashboard_query_schema = DashboardQuerySchema()
