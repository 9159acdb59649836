"""`canonical.dumps` writes what `rfc8785.dumps` writes and refuses what it refuses, and is fast on event payloads.

Each case where orjson alone strays from RFC 8785 is shown to stray (so the comparison can fail), then to be
handled; the properties compare both encoders on arbitrary JSON values and on values shaped like the payloads
the hash chain covers.
"""

from __future__ import annotations

import itertools
import string
from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import Enum, IntEnum
from types import SimpleNamespace
from unittest import mock

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from cmp.catalog import BANNER_TEXTS, BUILTIN_LOCALES, DEFAULT_PURPOSES
from cmp.services import canonical, chain
from cmp.services.evidence import coarse_user_agent
from cmp.vocabulary import Action, Decision, GivenBy, Mode, Source
from tests.helpers import CHROME

SAFE = 2**53 - 1


def outcome(encode, value) -> bytes | tuple[type, str]:
    """The bytes written, or the kind and message of the refusal: both encoders must give the same."""
    try:
        return encode(value)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        return type(exc), str(exc)


def orjson_alone(value) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@contextmanager
def without_fallback():
    """Fail the test if `dumps` hands its value to rfc8785 instead of writing it with orjson."""

    def refuse(value):
        raise AssertionError(f"fell back to rfc8785 for {value!r}")

    with mock.patch.object(canonical, "rfc8785", SimpleNamespace(dumps=refuse)):
        yield


class Colour(Enum):
    RED = "red"


class Numbered(IntEnum):
    ONE = 1
    HUGE = 2**60


class Labelled(str, Enum):  # noqa: UP042 - a StrEnum's value is its text; this one's is not
    """Text and value differ: both encoders write the text, not the value."""

    def __new__(cls, text: str, code: int):
        member = str.__new__(cls, text)
        member._value_ = code
        return member

    ONE = ("one", 1)


class Shouty(str):
    def __str__(self) -> str:
        return self.upper()


class Counted(int):
    def __str__(self) -> str:
        return "many"


class Ordered(dict):
    pass


class Listed(list):
    pass


Point = namedtuple("Point", "x y")

# Values on which orjson with sorted keys alone writes something else than RFC 8785, or refuses differently.
ORJSON_STRAYS = {
    "key order: U+E000 sorts after U+1F600 in UTF-16": {"\ue000": 1, "\U0001f600": 2},
    "key order inside a nested object": {"a": [{"\uffff": 0, "\U00010000": 1}]},
    "integral float": 1.0,
    "float below 1e21 written in full": 1e20,
    "float above 1e-7 written in full": 1e-6,
    "negative zero": -0.0,
    "integral float past 2**53": 9007199254740992.0,
    "float in a container": {"x": [2.5, 1e16]},
    "integer past 2**53": 2**53,
    "negative integer past 2**53": -(2**53),
    "integer past 2**63": 2**63,
    "enumeration of an unsupported type": Colour.RED,
    "datetime": datetime(2024, 1, 1, tzinfo=UTC),
    "lone surrogate in a value": "\ud800",
    "lone surrogate in a key": {"\udfff": 1},
    "integer key": {1: "a"},
    "None key": {None: "a"},
    "str subclass as key": {Decision.GRANTED: 1},
    "named tuple": Point(1, 2),
    "set": {1, 2},
    "bytes": b"x",
}


@pytest.mark.parametrize("value", ORJSON_STRAYS.values(), ids=ORJSON_STRAYS.keys())
def test_where_orjson_strays_dumps_still_agrees(value):
    assert outcome(orjson_alone, value) != outcome(rfc8785.dumps, value)
    assert outcome(canonical.dumps, value) == outcome(rfc8785.dumps, value)


def test_every_code_point_is_escaped_or_kept_as_rfc8785_does():
    """One string holding every scalar value: the C0 controls, '"', '\\', '/', DEL, U+2028, astral planes."""
    everything = "".join(map(chr, itertools.chain(range(0xD800), range(0xE000, 0x110000))))
    with without_fallback():
        written = canonical.dumps({"text": everything})
    assert written == rfc8785.dumps({"text": everything})
    assert written.startswith(b'{"text":"\\u0000\\u0001')
    assert b"\\b\\t\\n\\u000b\\f\\r\\u000e" in written
    assert b'\\"' in written and b"\\\\" in written and b"/" in written and b"\\/" not in written
    assert "~\x7f\x80".encode() in written and "\u2028".encode() in written
    assert written.endswith('\U0010ffff"}'.encode())


@pytest.mark.parametrize("bound", [SAFE, -SAFE])
def test_the_largest_safe_integers_take_the_fast_path(bound):
    with without_fallback():
        assert canonical.dumps([bound]) == f"[{bound}]".encode()


def test_integers_one_past_the_safe_range_are_refused_as_rfc8785_refuses_them():
    for value in (SAFE + 1, -SAFE - 1, [SAFE + 1], {"n": Numbered.HUGE}):
        with pytest.raises(rfc8785.IntegerDomainError):
            canonical.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        Action.ACCEPT_ALL,
        {"action": Action.SAVE, "decisions": {"analytics": Decision.DENIED}},
        [Numbered.ONE, Labelled.ONE, Shouty("quiet"), Counted(3)],
        {"flag": True, "other": False, "nothing": None},
        (1, ("two", [3.0]), {"four": (4,)}),
        Ordered(b=1, a=2),
        OrderedDict([("z", 1), ("a", 2)]),
        Listed([1, "x"]),
        {"": 0, "a": {"": []}},
        {"é": 1, "e": 2, "\u00ff": 3, "\U0001f600": 4, "z": 5},
    ],
)
def test_subclasses_enumerations_tuples_and_empty_keys_agree(value):
    assert canonical.dumps(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("depth", [127, 128, 129, 300])
def test_deep_nesting_agrees_on_either_side_of_the_depth_limit(depth):
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    assert canonical.dumps(value) == rfc8785.dumps(value)


def test_a_cycle_is_refused_as_rfc8785_refuses_it():
    cycle: list = []
    cycle.append(cycle)
    assert outcome(canonical.dumps, cycle) == outcome(rfc8785.dumps, cycle)
    assert outcome(canonical.dumps, cycle)[0] is RecursionError


# Characters around every boundary that matters: controls, DEL, the surrogate gap, U+E000..U+FFFF and astral.
EDGE_CHARACTERS = st.sampled_from(
    ["a", "Z", "\x00", "\x08", "\x1f", '"', "\\", "/", "\x7f", "é", "\u2028", "\ud7ff", "\ue000", "\uffff"]
    + ["\U00010000", "\U0001f600", "\U0010ffff"]
)
TEXT = st.text(EDGE_CHARACTERS, max_size=6) | st.text(st.characters(exclude_categories=("Cs",)), max_size=6)
INTEGERS = st.one_of(
    st.integers(min_value=-SAFE, max_value=SAFE),
    st.integers(),
    st.sampled_from([SAFE, SAFE + 1, -SAFE, -SAFE - 1, 2**63, -(2**64)]),
)
FLOATS = st.one_of(
    st.floats(),
    st.sampled_from([0.0, -0.0, 1e21, 1e20, 1e-7, 1e-6, 5e-324, 1.7976931348623157e308, 9007199254740993.0]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTEGERS, FLOATS, TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(TEXT, inner, max_size=5),
    ),
    max_leaves=10,
)


@settings(max_examples=2000, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_is_written_or_refused_as_rfc8785_does(value):
    assert outcome(canonical.dumps, value) == outcome(rfc8785.dumps, value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(EDGE_CHARACTERS, max_size=4), st.integers(0, 9), min_size=2, max_size=8))
def test_keys_sort_by_utf16_code_units(mapping):
    written = canonical.dumps(mapping)
    assert written == rfc8785.dumps(mapping)
    assert list(orjson.loads(written)) == sorted(mapping, key=lambda key: key.encode("utf-16-be"))


# The seeded purposes and the custom ones a site adds (README, "A tour").
PURPOSE_NAMES = [purpose["key"] for purpose in DEFAULT_PURPOSES] + ["partner_sharing", "cross_border_transfer"]
PURPOSE_KEYS = st.sampled_from(PURPOSE_NAMES)
HEX64 = st.text("0123456789abcdef", min_size=64, max_size=64)
MOMENTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1))
USER_AGENTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "browser": st.text(max_size=64),
            "browser_major": st.one_of(st.none(), st.integers(0, 9999)),
            "os": st.text(max_size=64),
            "device": st.sampled_from(["bot", "tablet", "mobile", "desktop", "other"]),
            "bot": st.booleans(),
        }
    ),
)


def either(members):
    """A vocabulary value as the services hold it (the enumeration) or as it is read back (plain text)."""
    return st.sampled_from(list(members)).flatmap(lambda member: st.sampled_from([member, str(member)]))


@st.composite
def consent_events(draw) -> SimpleNamespace:
    """An event with every field chain.event_payload reads, in the shapes the models allow."""
    received = draw(MOMENTS)
    return SimpleNamespace(
        id=draw(st.text("0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=26, max_size=26)),
        seq=draw(st.integers(1, SAFE)),
        subject_id=draw(st.text(min_size=1, max_size=32)),
        action=draw(either(Action)),
        source=draw(either(Source)),
        decisions=draw(st.dictionaries(PURPOSE_KEYS, either(Decision), max_size=len(PURPOSE_NAMES))),
        notice_version=draw(st.one_of(st.none(), st.integers(1, 2**31 - 1))),
        notice_hash=draw(st.one_of(st.none(), HEX64)),
        locale=draw(st.one_of(st.none(), st.sampled_from(BUILTIN_LOCALES))),
        mode=draw(either(Mode)),
        country=draw(st.one_of(st.none(), st.text(string.ascii_uppercase, min_size=2, max_size=2))),
        gpc=draw(st.booleans()),
        received_at=received,
        expires_at=draw(st.one_of(st.none(), st.just(received + timedelta(days=365)))),
        given_by=draw(st.one_of(st.none(), either(GivenBy))),
        evidence_digest=draw(HEX64),
        prev_hash=draw(st.one_of(st.none(), HEX64)),
    )


@settings(max_examples=300, deadline=None)
@given(consent_events(), st.sampled_from(["demo", "shop", "a-2"]))
def test_event_payloads_take_the_fast_path_and_agree(event, site_key):
    payload = chain.event_payload(event, site_key)
    expected = rfc8785.dumps(payload)
    with without_fallback():
        assert canonical.dumps(payload) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.none(), HEX64.map(lambda text: text[:32])),
    st.one_of(st.none(), st.sampled_from(["203.0.113.0", "2001:db8:1::"])),
    USER_AGENTS,
    st.one_of(st.none(), st.text(max_size=80).map(lambda path: f"https://shop.example/{path}")),
)
def test_evidence_payloads_take_the_fast_path_and_agree(salt, ip_prefix, user_agent, page_url):
    payload = {"salt": salt, "ip_prefix": ip_prefix, "user_agent": user_agent, "page_url": page_url}
    expected = rfc8785.dumps(payload)
    with without_fallback():
        assert canonical.dumps(payload) == expected


def test_a_browsers_evidence_takes_the_fast_path_and_agrees():
    payload = {"salt": "0" * 32, "ip_prefix": "203.0.113.0", "user_agent": coarse_user_agent(CHROME), "page_url": None}
    assert payload["user_agent"]["browser_major"] == 120
    with without_fallback():
        written = canonical.dumps(payload)
    assert written == rfc8785.dumps(payload)


def test_a_notice_snapshot_in_every_builtin_language_takes_the_fast_path_and_agrees():
    """Notice content is hashed too: nested lists and objects, Chinese, German and French texts."""
    content = {
        "site": "shop",
        "locales": list(BUILTIN_LOCALES),
        "texts": {locale: BANNER_TEXTS[locale] for locale in BUILTIN_LOCALES},
        "purposes": DEFAULT_PURPOSES,
        "cookies": [{"name": "_ga", "lifetime_seconds": 63072000, "descriptions": {"zh-CN": "分析"}}],
    }
    with without_fallback():
        written = canonical.dumps(content)
    assert written == rfc8785.dumps(content)
