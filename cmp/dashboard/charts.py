"""The dashboard's charts: SVG drawn by pygal from the consent statistics, with no script in it.

Each chart is an image (`<img>`), and the page repeats its numbers in a table, so nothing depends on
seeing the picture. Colours are the Okabe-Ito palette, told apart with any colour vision.
"""

from __future__ import annotations

from collections.abc import Callable

import pygal
from pygal.style import Style

from cmp.models import Site
from cmp.services import stats
from cmp.services.rollups import DECISION_ACTIONS
from cmp.services.stats import ActionMix, Period
from cmp.vocabulary import Action

ACTION_LABELS = {
    Action.ACCEPT_ALL: "Accepted all",
    Action.SAVE: "Chose some",
    Action.REJECT_ALL: "Rejected all",
    Action.WITHDRAW: "Withdrew",
    Action.GPC: "Refused by GPC",
}
ACTION_COLOURS = ("#009E73", "#56B4E9", "#D55E00", "#CC79A7", "#4D4D4D")
RATE_COLOURS = ("#009E73", "#D55E00")
# The country chart shows this many countries, those with most decisions; its table lists them all.
MAX_COUNTRIES = 15
WIDTH, HEIGHT = 960, 420


def _style(colours: tuple[str, ...]) -> Style:
    return Style(
        background="#ffffff",
        plot_background="#ffffff",
        foreground="#1a1a1a",
        foreground_strong="#1a1a1a",
        foreground_subtle="#595959",
        colors=colours,
        font_family="system-ui, sans-serif",
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        title_font_size=16,
        value_font_size=11,
        opacity=".9",
        opacity_hover=".9",
    )


def _without_scripts(tree):
    """pygal always embeds its configuration as a script for its tooltips; a static image needs none."""
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return tree


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}%"


def _chart(kind, title: str, colours: tuple[str, ...], **options):
    chart = kind(
        js=[],
        style=_style(colours),
        title=title,
        width=WIDTH,
        height=HEIGHT,
        explicit_size=True,
        range=(0, 100),
        value_formatter=_percent,
        legend_at_bottom=True,
        legend_at_bottom_columns=5,
        no_data_text="No banner decisions in this period",
        print_values=False,
        **options,
    )
    chart.add_xml_filter(_without_scripts)
    return chart


def _action_chart(title: str, mixes: list[ActionMix], **options) -> bytes:
    chart = _chart(pygal.StackedBar, title, ACTION_COLOURS, **options)
    chart.x_labels = [mix.group for mix in mixes]
    for action in DECISION_ACTIONS:
        chart.add(ACTION_LABELS[action], [mix.share(action) if mix.total else None for mix in mixes])
    return chart.render()


def purposes_chart(site: Site, period: Period) -> bytes:
    # pygal draws horizontal bars from the bottom up: reversed, the first purpose is on top as in the table.
    rates = stats.purpose_rates(site, period)[::-1]
    chart = _chart(pygal.HorizontalStackedBar, "Consent and refusal rate by purpose", RATE_COLOURS)
    chart.x_labels = [rate.purpose for rate in rates]
    chart.add("Granted", [rate.granted_share if rate.decided else None for rate in rates])
    chart.add("Denied", [rate.denied_share if rate.decided else None for rate in rates])
    return chart.render()


def days_chart(site: Site, period: Period) -> bytes:
    mixes = stats.by_day(site, period)
    # Long periods would crowd the axis: label about a dozen days and leave the rest to the table.
    every = max(1, len(mixes) // 12)
    return _action_chart(
        "Banner decisions by day (UTC)",
        mixes,
        x_label_rotation=45,
        show_minor_x_labels=False,
        x_labels_major=[mix.group for mix in mixes[::every]],
    )


def countries_chart(site: Site, period: Period) -> bytes:
    mixes = stats.by_country(site, period)[:MAX_COUNTRIES]
    return _action_chart("Banner decisions by country", mixes)


def modes_chart(site: Site, period: Period) -> bytes:
    return _action_chart("Banner decisions by mode", stats.by_mode(site, period))


# Chart name (as in /audit/charts/<name>.svg) -> how to draw it.
CHARTS: dict[str, Callable[[Site, Period], bytes]] = {
    "purposes": purposes_chart,
    "days": days_chart,
    "countries": countries_chart,
    "modes": modes_chart,
}
