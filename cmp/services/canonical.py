"""RFC 8785 (JCS) canonical JSON, byte for byte what `rfc8785.dumps` writes, at the speed of orjson.

Every consent event's hash covers the canonical JSON of its payload, so offline verification of an export
spends most of its time here. `rfc8785.dumps` is pure Python. orjson, with sorted keys and integers held to
53 bits, writes the same bytes for most values; this module sends a value to orjson only where the two agree:

- strings: orjson escapes exactly as JCS does at every code point (the short escapes \\b \\f \\n \\r \\t,
  other controls as lowercase \\u00xx, nothing else: '/', DEL and non-ASCII stay as they are), and it refuses
  lone surrogates, as rfc8785 does;
- integers: JCS refuses those of magnitude 2**53 or more (I-JSON, RFC 7493 section 2.2); so does orjson with
  OPT_STRICT_INTEGER, and the refusal hands the value over to rfc8785;
- floats never: JCS writes numbers as ECMAScript does (1 for 1.0, 1e+21, 1e-7), orjson does not;
- object keys: orjson sorts by code point, JCS by UTF-16 code unit. The two orders differ only where a
  character in U+E000..U+FFFF meets one beyond U+FFFF (whose surrogate pair sorts first in UTF-16), so keys
  that lack either kind sort alike;
- containers of exactly dict, list and tuple (rfc8785 also takes their subclasses, orjson not all of them);
  subclasses of str and int, enumerations among them, count by their content in both.

Anything else, and anything orjson refuses, goes to `rfc8785.dumps`: its output, or its error, is the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import orjson
import rfc8785

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# Scalars orjson writes as JCS does; a value of any other type is looked at more closely.
_SCALARS = frozenset((str, int, bool, type(None)))
# Deeper values (cycles too) go to rfc8785, whose own recursion decides; orjson stops at 255 levels anyway.
_MAX_DEPTH = 128
_HIGH_BMP = re.compile("[\ue000-\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def dumps(value: object) -> bytes:
    """The RFC 8785 canonical JSON of `value`: `rfc8785.dumps(value)`, raising what it raises."""
    if _agrees(value, 0):
        try:
            return orjson.dumps(value, option=_OPTIONS)
        except orjson.JSONEncodeError:
            pass  # integers past 53 bits, lone surrogates, keys not exactly str: rfc8785 decides these
    return rfc8785.dumps(value)


def _agrees(value: object, depth: int) -> bool:
    """Whether orjson's output for `value`, if it writes any, is the canonical JSON; cheap, builds no output."""
    kind = type(value)
    items: Iterable
    if kind is dict:
        if not _keys_sort_alike(value):
            return False
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind in _SCALARS or isinstance(value, (str, int))
    if depth >= _MAX_DEPTH:
        return False
    if _SCALARS.issuperset(map(type, items)):
        return True  # one pass in C over the values, nearly always enough: a payload's values are scalars
    for item in items:
        if type(item) not in _SCALARS and not _agrees(item, depth + 1):
            return False
    return True


def _keys_sort_alike(mapping: dict) -> bool:
    """Whether code-point order (orjson's) and UTF-16 code-unit order (JCS's) agree on these keys.

    A key that is not a string fails the join; orjson refuses such keys too, and rfc8785 decides.
    """
    try:
        joined = "".join(mapping)
    except TypeError:
        return False
    return joined.isascii() or _HIGH_BMP.search(joined) is None or _ASTRAL.search(joined) is None
