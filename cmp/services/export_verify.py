"""Verify an export from the file alone: no database, no application settings.

A complete export (format 3) is checked per site as `cmp verify` checks the database: each site's events in seq
order through chain.check_events (hashes, evidence, positions without gaps, version 1 links), then the Merkle tree
they make, seeded with the hashes the export states for a purged prefix, against the site's signed checkpoint,
whose signature is checked with a key the caller trusts (never the one the file names). The file holds each site's
events up to its checkpoint's size: an event past it is under no signature, and a fault. Exports in formats 1 and 2
(a hash chain, no tree) are checked link by link to the last link their end entry states. A filtered export is not
contiguous: each event's own hash and evidence digest are checked, and the report says its place was not.
Across the file, entries must be framed (export first, end last) and in id order.

The file is read once: each entry's framing is checked as it is read, and each event is handed to its site's
check. A fault of the framing anywhere in the file is reported before any fault of a log. A site whose log does
not verify in that pass is read again, alone, by the plain walk (`_in_seq_order` into chain.check_events), which
names its first fault: the one pass only ever accepts, so every fault is named as the plain walk names it.
"""

from __future__ import annotations

import csv
import heapq
import json
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from cmp.services import chain, merkle, notes
from cmp.services.export import CSV_COLUMNS, FORMAT, FORMAT_VERSION
from cmp.services.export_fields import (
    ESCAPE,
    FIELDS,
    FORMAT_1_FIELD_NAMES,
    FORMAT_1_NAMES,
    NAMES,
    NOTICE_FIELDS,
    Kind,
    RecordError,
    from_cell,
    read_event,
    read_notice,
)

# Events of one site held back while waiting for a lower seq: writers take their id before their place in
# the log, so id order (the file's) and seq order differ by a few places under concurrency. Past this
# many, the lowest is released: a gap that large is a fault check_events then names.
REORDER_WINDOW = 10_000
# Events of one site the one pass hands chain.check_events at a time: a call per event would cost as much as
# the event's hash.
CHECK_BATCH = 1024
# Versions of the format this release verifies: 1 differs from 2 only in field names and unescaped CSV cells;
# 3 carries each site's signed checkpoint, and its events may have version 2 hashes.
READABLE_VERSIONS = (1, 2, FORMAT_VERSION)
# The first format whose sites carry a signed tree.
TREE_VERSION = 3
HASH_VERSIONS = (1, chain.HASH_VERSION)
FORMAT_1_CSV_COLUMNS = ("entry", *FORMAT_1_FIELD_NAMES, "meta")


@dataclass(frozen=True)
class SiteReport:
    site: str
    result: chain.Verification
    links_checked: bool = True
    notes: tuple[str, ...] = ()


@dataclass
class FileReport:
    sites: list[SiteReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(report.result.ok for report in self.sites)


class _Fault(Exception):
    def __init__(self, reason: str, event_id: str | None = None, seq: int | None = None):
        super().__init__(reason)
        self.reason, self.event_id, self.seq = reason, event_id, seq


def json_line(line: str):
    """`json.loads(line)`: the same value or the same error, in about 0.6 of the time for an export's lines.

    orjson reads what json reads to the same values, but for integers past 64 bits, which it reads as floats
    where json keeps them exact, and for what it refuses (lone surrogates, NaN, numbers out of range) and json
    reads. An export's values hold no float: a line that reads to one, or that orjson refuses, is read by json.
    """
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
    return value if _holds_no_float(value) else json.loads(line)


def _holds_no_float(value) -> bool:
    kind = value.__class__
    if kind is not dict and kind is not list:
        return kind is not float
    for item in value.values() if kind is dict else value:
        kind = item.__class__
        if kind is float or ((kind is dict or kind is list) and not _holds_no_float(item)):
            return False
    return True


def _entries(path: Path) -> Iterator[tuple[int, dict]]:
    """(line or row number, entry as JSON values) from a JSON lines or CSV export, told apart by the first byte."""
    with open(path, encoding="utf-8", newline="") as stream:
        first = stream.read(1)
        stream.seek(0)
        if first == "{":
            format_1 = None
            for number, line in enumerate(stream, 1):
                if line.isspace():
                    continue
                try:
                    entry = json_line(line)
                except json.JSONDecodeError:
                    raise _Fault(f"line {number} is not JSON") from None
                if not isinstance(entry, dict):
                    raise _Fault(f"line {number} is not a JSON object")
                if format_1 is None:
                    format_1 = isinstance(entry.get("meta"), dict) and entry["meta"].get("version") == 1
                elif format_1 and entry.get("entry") == "event":
                    entry = {FORMAT_1_NAMES.get(name, name): value for name, value in entry.items()}
                yield number, entry
            return
        reader = csv.reader(stream)
        header = next(reader, None)
        if header not in (list(CSV_COLUMNS), list(FORMAT_1_CSV_COLUMNS)):
            raise _Fault("the file is neither JSON lines nor a CSV export with this version's columns")
        escaped = header == list(CSV_COLUMNS)
        for number, row in enumerate(reader, 2):
            if len(row) != len(CSV_COLUMNS):
                raise _Fault(f"row {number} has {len(row)} cells, not {len(CSV_COLUMNS)}")
            entry = {"entry": row[0]}
            if row[0] == "event":
                entry.update(_csv_event(row[1:-1], escaped))
            else:
                try:
                    entry["meta"] = json.loads(row[-1])
                except json.JSONDecodeError:
                    raise _Fault(f"row {number}: meta is not JSON") from None
            yield number, entry


# The fields whose cells from_cell converts (integers, booleans, nested values): it reads every other one as its
# text, null when empty, once a leading escape is stripped.
_CONVERTED = tuple((index, spec) for index, spec in enumerate(FIELDS) if spec.kind not in (Kind.TEXT, Kind.TIME))
_STARTS_ESCAPED = operator.methodcaller("startswith", ESCAPE)


def _csv_event(cells: list[str], escaped: bool) -> dict:
    """An event row's cells as the JSON values `from_cell` reads, by field name: the cells of text as they are,
    the few others through from_cell. A row with an escaped cell (rare: a text that starts like a formula) is read
    cell by cell."""
    if escaped and any(map(_STARTS_ESCAPED, cells)):
        return {spec.name: from_cell(spec, cell) for spec, cell in zip(FIELDS, cells, strict=True)}
    values = [cell or None for cell in cells]
    for index, spec in _CONVERTED:
        if values[index] is not None:
            values[index] = from_cell(spec, values[index], escaped=escaped)
    return dict(zip(NAMES, values, strict=True))


def _events(path: Path) -> Iterator[tuple[int, object]]:
    for number, entry in _entries(path):
        if entry.get("entry") == "event":
            try:
                yield number, read_event(entry)
            except RecordError as exc:
                raise _Fault(f"entry {number}: {exc}", entry.get("id")) from None


@dataclass
class _Outline:
    """What the one reading of the file establishes: the manifest, the end entry, events per site, and each site's
    check of its log."""

    manifest: dict
    sites: dict[str, dict]
    end: dict
    counts: dict[str, int]
    checks: dict[str, _SiteCheck]


def _sites(manifest: Mapping) -> dict[str, dict]:
    """Each site's part of the export entry, in format 3's shape: formats 1 and 2 stated only where the chain starts."""
    if manifest.get("version") == TREE_VERSION:
        sites = manifest.get("sites")
        if not isinstance(sites, dict) or not all(isinstance(site, dict) for site in sites.values()):
            raise _Fault("the export entry does not state each site's checkpoint")
        return sites
    if not isinstance(manifest.get("checkpoints"), dict):
        raise _Fault("the export entry does not say where each site's chain starts")
    return {key: {"purged": start} for key, start in manifest["checkpoints"].items()}


def _outline(path: Path, notice_hashes: dict | None = None, key: notes.Verifier | None = None) -> _Outline:
    """Read the file once: check its framing, raising the first fault, and hand each event to its site's check."""
    manifest, sites, end, counts, checks, previous = None, None, None, {}, {}, None
    for number, entry in _entries(path):
        kind = entry.get("entry")
        if manifest is None:
            if kind != "export" or not isinstance(entry.get("meta"), dict):
                raise _Fault("the file does not start with an export entry (not an export, or its start was cut)")
            manifest = entry["meta"]
            if manifest.get("format") != FORMAT or manifest.get("version") not in READABLE_VERSIONS:
                raise _Fault(
                    f"unsupported export format {manifest.get('format')!r} {manifest.get('version')!r} (this "
                    f"release reads {FORMAT!r} {' and '.join(map(str, READABLE_VERSIONS))}; check the file with "
                    "the release that wrote it)"
                )
            sites = _sites(manifest)
            checks = {site: _site_check(manifest, site, stated, notice_hashes, key) for site, stated in sites.items()}
            continue
        if end is not None:
            raise _Fault(f"entry {number} follows the end entry (added after the export was written)")
        if kind == "end":
            end = entry.get("meta")
            continue
        if kind != "event":
            raise _Fault(f"entry {number} is neither an event nor the end")
        try:
            event = read_event(entry)
        except RecordError as exc:
            raise _Fault(f"entry {number}: {exc}", entry.get("id")) from None
        if event.site not in sites:
            raise _Fault(f"event of site {event.site!r}, which the export does not cover", event.id, event.seq)
        if event.v not in HASH_VERSIONS:
            raise _Fault(f"hash version {event.v} is not one this version can check", event.id, event.seq)
        if previous is not None and event.id <= previous.id:
            # Exports are written in id order; the record before a step back is the one that came too early.
            raise _Fault(
                f"records are out of the export's id order at entry {number - 1} (lines were moved)",
                previous.id,
                previous.seq,
            )
        previous = event
        counts[event.site] = counts.get(event.site, 0) + 1
        checks[event.site].add(number, event)
    if manifest is None:
        raise _Fault("the file is empty")
    if not isinstance(end, dict) or not isinstance(end.get("sites"), dict):
        raise _Fault("the export has no end entry (the file was cut short)")
    return _Outline(manifest, sites, end, counts, checks)


class _SeqOrder:
    """One site's events, released in seq order from `expected`, holding back only the few that come early in id
    order (held as (seq, entry number, event), the lowest first)."""

    def __init__(self, expected: int):
        self.expected = expected
        self.waiting: list[tuple[int, int, object]] = []

    def add(self, number: int, event) -> list:
        """The events `event` releases, in order: itself alone when it is the one expected and none waits."""
        waiting = self.waiting
        if not waiting and event.seq == self.expected:
            self.expected += 1
            return [event]
        heapq.heappush(waiting, (event.seq, number, event))
        released = []
        while waiting and (waiting[0][0] <= self.expected or len(waiting) > REORDER_WINDOW):
            seq, _, ready = heapq.heappop(waiting)
            self.expected = max(self.expected, seq + 1)
            released.append(ready)
        return released

    def rest(self) -> Iterator:
        """The events still held back, lowest seq first (a gap check_events then names)."""
        while self.waiting:
            yield heapq.heappop(self.waiting)[2]


def _in_seq_order(path: Path, site: str, expected: int) -> Iterator[object]:
    """One site's events in seq order from `expected`, read from the file again (the plain walk)."""
    order = _SeqOrder(expected)
    for number, event in _events(path):
        if event.site == site:
            yield from order.add(number, event)
    yield from order.rest()


class _Unverified(Exception):
    """The one pass could not accept a site's log: the plain walk names why."""


class _SiteCheck:
    """One site's check in the one pass over the file: fed the site's events in the file's order, then asked for
    the report once the file is read and its framing is known to be good.

    It only ever accepts. At the first fault or error it stops, and `report` gives None: the plain walk, which
    reads the file again for this site, then names the fault (or raises the error) exactly as it always has.
    """

    failed = False

    def add(self, number: int, event) -> None:
        if self.failed:
            return
        try:
            self._add(number, event)
        except Exception:  # any fault or error: the plain walk meets it again and decides
            self.failed = True

    def report(self, end: Mapping) -> SiteReport | None:
        if self.failed:
            return None
        try:
            return self._report(end)
        except Exception:  # as in `add`
            return None

    def _add(self, number: int, event) -> None:
        raise NotImplementedError

    def _report(self, end: Mapping) -> SiteReport:
        raise NotImplementedError


class _Unchecked(_SiteCheck):
    """A site whose check could not start (its checkpoint or start does not read): the plain walk says why."""

    failed = True


def _site_check(
    manifest: Mapping, site: str, stated: Mapping, notice_hashes: dict | None, key: notes.Verifier | None
) -> _SiteCheck:
    hashes = None if notice_hashes is None else notice_hashes.get(site, {})
    try:
        if not manifest.get("complete"):
            return _FilteredCheck(site, hashes)
        if manifest.get("version") == TREE_VERSION:
            signed, start, tree, notes_ = _tree_start(site, stated, key)
            return _LogCheck(site, hashes, start, notes_, tree, signed)
        start, notes_ = _chain_start(stated["purged"])
        return _LogCheck(site, hashes, start, notes_)
    except Exception:  # as in _SiteCheck.add
        return _Unchecked()


class _LogCheck(_SiteCheck):
    """A complete export's site: its events in seq order through chain.check_events, a batch at a time, each batch
    added to the tree once it has been checked; at the end, the head the end entry states, then the signed
    checkpoint (format 3) or the last link (formats 1 and 2)."""

    def __init__(
        self,
        site: str,
        notice_hashes,
        start: tuple[int, str],
        notes_: tuple[str, ...],
        tree: chain.RootBuilder | None = None,
        signed: _Signed | None = None,
    ):
        self.site, self.notice_hashes, self.notes, self.tree, self.signed = site, notice_hashes, notes_, tree, signed
        self.last = start  # the (seq, hash) of the last event checked
        self.checked = 0
        self.order = _SeqOrder(start[0] + 1)
        self.batch: list = []

    def _add(self, number: int, event) -> None:
        for ready in self.order.add(number, event):
            self.batch.append(ready)
            if len(self.batch) == CHECK_BATCH:
                self._check_batch()

    def _check_batch(self) -> None:
        batch = self.batch
        if not batch:
            return
        result = chain.check_events(batch, self.site, notice_hashes=self.notice_hashes, start=self.last)
        if not result.ok:
            raise _Unverified(result.reason)
        if self.tree is not None:
            for event in batch:
                self.tree.add(merkle.leaf_hash(bytes.fromhex(event.hash)))
        self.checked += len(batch)
        self.last = (batch[-1].seq, batch[-1].hash)
        self.batch = []

    def _report(self, end: Mapping) -> SiteReport:
        self.batch.extend(self.order.rest())
        self._check_batch()
        # Every event checked is at most the head (their places run without a gap to the last): the plain walk's
        # checks against the head pass exactly when the last one is the head.
        head_seq = end.get("last_seq")
        if head_seq is not None and head_seq != self.last[0]:
            raise _Unverified("the log does not end at its head")
        if self.tree is None:
            if end.get("head_hash") != self.last[1]:
                raise _Unverified("the chain does not end at the last link the end entry states")
            result = chain.Verification(True, self.checked, head_hash=self.last[1])
        else:
            root = self.tree.root().hex()
            if (self.tree.size, root) != (self.signed.size, self.signed.root):
                raise _Unverified("the tree is not the one the log signed")
            result = chain.Verification(True, self.checked, head_hash=root, checkpoint_size=self.tree.size)
        return SiteReport(self.site, result, True, self.notes)


FILTERED_NOTE = "filtered export: each event's hash and evidence were checked; its place in the log was not checkable"


class _FilteredCheck(_SiteCheck):
    """A filtered export's site: each event checked alone, as `_filtered` checks it."""

    def __init__(self, site: str, notice_hashes):
        self.site, self.notice_hashes = site, notice_hashes
        self.checked = 0

    def _add(self, number: int, event) -> None:
        start = (event.seq - 1, event.prev_hash)
        if not chain.check_events([event], self.site, notice_hashes=self.notice_hashes, start=start).ok:
            raise _Unverified("an event does not verify")
        self.checked += 1

    def _report(self, end: Mapping) -> SiteReport:
        return SiteReport(self.site, chain.Verification(True, self.checked), False, (FILTERED_NOTE,))


def verify_file(path: Path, notices_path: Path | None = None, *, key: notes.Verifier | None = None) -> FileReport:
    """Check an export file (and, given, its notices file); the report names the first fault per site.

    `key` is the log's verifier key the checkpoints must be signed with; without it, the app's own log key when an
    app is running. A complete export in format 3 with neither fails: the key the file names proves nothing.
    """
    try:
        return _verify_file(path, notices_path, key or _app_key())
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # Entries of the wrong shape (an edited export or end entry): the file cannot be trusted as a whole.
        report = FileReport()
        report.sites.append(_failed("file", _Fault(f"the export is malformed ({type(exc).__name__}: {exc})")))
        return report


def _app_key() -> notes.Verifier | None:
    from flask import has_app_context

    from cmp.services import tlog

    return tlog.log_key().verifier if has_app_context() else None


def _verify_file(path: Path, notices_path: Path | None, key: notes.Verifier | None) -> FileReport:
    report = FileReport()
    notice_hashes = None
    try:
        if notices_path is not None:
            notice_hashes = _notice_hashes(notices_path)
        outline = _outline(path, notice_hashes, key)
    except _Fault as fault:
        report.sites.append(_failed("file", fault))
        return report
    for site, stated in outline.sites.items():
        hashes = None if notice_hashes is None else notice_hashes.get(site, {})
        end = outline.end["sites"].get(site) or {}
        try:
            # The one pass's report, or else the plain walk, which reads the file again to name the fault.
            site_report = outline.checks[site].report(end) or _walked(
                path, outline.manifest, site, stated, end, hashes, key
            )
        except _Fault as fault:
            site_report = _failed(site, fault)
        if site_report.result.ok:
            expected = end.get("events")
            found = outline.counts.get(site, 0)
            if expected != found:
                site_report = _failed(
                    site, _Fault(f"the export holds {found} events of this site but its end entry says {expected}")
                )
        report.sites.append(site_report)
    return report


def _walked(
    path: Path, manifest: Mapping, site: str, stated: Mapping, end: Mapping, notice_hashes, key: notes.Verifier | None
) -> SiteReport:
    """The plain walk of one site's log, reading the file again: its report names the first fault."""
    if not manifest.get("complete"):
        return _filtered(path, site, notice_hashes)
    if manifest.get("version") == TREE_VERSION:
        return _complete_tree(path, site, stated, end, notice_hashes, key)
    return _complete_chain(path, site, stated["purged"], end, notice_hashes)


@dataclass(frozen=True)
class _Signed:
    """What a verified checkpoint states: the tree's size and root (hex)."""

    size: int
    root: str


class _Walk:
    """A site's events in seq order as check_events reads them, each added to a tree once it has been checked.

    Keeps the last hash walked and the tree's root at `size` (the signed checkpoint's), for the checks that follow.
    """

    def __init__(self, events: Iterable, tree: chain.RootBuilder | None, start: tuple[int, str], size: int | None):
        self.events, self.tree, self.size = events, tree, size
        self.last_hash = start[1]
        self.signed_root = self._root_at_size()

    def _root_at_size(self) -> str | None:
        if self.tree is None or self.tree.size != self.size:
            return None
        return self.tree.root().hex()

    def __iter__(self):
        for event in self.events:
            yield event
            self.last_hash = event.hash
            if self.tree is not None:
                self.tree.add(merkle.leaf_hash(bytes.fromhex(event.hash)))
                self.signed_root = self._root_at_size() or self.signed_root


def _tree_start(
    site: str, stated: Mapping, key: notes.Verifier | None
) -> tuple[_Signed, tuple[int, str], chain.RootBuilder, tuple[str, ...]]:
    """A format 3 site's signed checkpoint, where its events start, the tree of the purged positions, and notes."""
    signed, notes_ = _signed_checkpoint(site, stated.get("checkpoint"), key)
    purged = stated.get("purged") or {}
    seq, hash_ = int(purged.get("seq", 0)), str(purged.get("hash", chain.GENESIS_HASH))
    tree = _resumed_tree(seq, stated.get("purged_subtrees") or [])
    if seq:
        notes_ = (
            f"positions 1 to {seq} were purged by retention: the tree holds them as the "
            f"{len(stated['purged_subtrees'])} subtree hashes the export states, which the signed root covers",
            *notes_,
        )
    return signed, (seq, hash_), tree, notes_


def _complete_tree(
    path: Path, site: str, stated: Mapping, end: Mapping, notice_hashes, key: notes.Verifier | None
) -> SiteReport:
    signed, (seq, hash_), tree, notes_ = _tree_start(site, stated, key)
    walk = _Walk(_in_seq_order(path, site, seq + 1), tree, (seq, hash_), signed.size)
    result = chain.check_events(
        walk, site, head_seq=end.get("last_seq"), notice_hashes=notice_hashes, start=(seq, hash_)
    )
    if result.ok:
        result = _against_checkpoint(result, tree, walk.signed_root, signed)
    return SiteReport(site, _explain_notice(result, notice_hashes), True, notes_)


def _signed_checkpoint(site: str, note: object, key: notes.Verifier | None) -> tuple[_Signed, tuple[str, ...]]:
    """The site's signed tree size and root, once the checkpoint verifies under `key` and names this site's log."""
    if note is None:
        # A log without a checkpoint has integrated nothing: its tree is empty, and the export holds no event.
        return _Signed(0, merkle.EMPTY_TREE_HASH.hex()), ("the log had no signed checkpoint: its tree is empty",)
    if key is None:
        raise _Fault(
            "no key to check the signed checkpoint with: give the log's verifier key (the key the file names is "
            "never trusted)"
        )
    try:
        opened = notes.open_note(str(note), [key])
        checkpoint = notes.Checkpoint.parse(opened.text)
    except notes.NoteError as exc:
        raise _Fault(f"the checkpoint does not verify under the log's key {key.name}: {exc}") from None
    origin = f"{key.name}/{site}"
    if checkpoint.origin != origin:
        raise _Fault(f"the checkpoint is of the log {checkpoint.origin!r}, not this site's ({origin!r})")
    signed = _Signed(checkpoint.size, checkpoint.root.hex())
    others = [signature.name for signature in opened.signatures if signature not in opened.verified]
    if not others:
        return signed, ()
    return signed, (
        f"the checkpoint carries {len(others)} cosignatures ({', '.join(others)}), not checked: no "
        "witness key was given",
    )


def _resumed_tree(size: int, subtrees: object) -> chain.RootBuilder:
    """A tree that has seen `size` leaves, from the hashes of the complete subtrees covering them, largest first."""
    try:
        if not isinstance(subtrees, list):
            raise ValueError("no subtree hashes")
        return chain.RootBuilder.resume(size, [bytes.fromhex(node) for node in subtrees])
    except (TypeError, ValueError) as exc:
        raise _Fault(f"the export's subtree hashes for the {size} purged positions do not cover them: {exc}") from None


def _against_checkpoint(
    result: chain.Verification, tree: chain.RootBuilder, signed_root: str | None, checkpoint: _Signed
) -> chain.Verification:
    """The walked tree against the signed checkpoint: same size, same root."""
    size = checkpoint.size
    if size > tree.size:
        return chain.Verification(
            False,
            result.checked,
            None,
            tree.size + 1,
            f"the log signed a checkpoint of {size} events but the export holds {tree.size} "
            "(events were removed from the end)",
        )
    if size < tree.size:
        return chain.Verification(
            False,
            result.checked,
            None,
            size + 1,
            f"the export holds {tree.size} events but its checkpoint signs {size}: those past it are under no "
            "signature (an older checkpoint was put in, or events were added)",
        )
    if signed_root != checkpoint.root:
        return chain.Verification(
            False,
            result.checked,
            None,
            None,
            f"the tree of {size} events is not the one the log signed (events were changed, reordered, inserted "
            "or removed, or the log was rewritten)",
        )
    return chain.Verification(True, result.checked, head_hash=signed_root, checkpoint_size=size)


def _chain_start(start: Mapping) -> tuple[tuple[int, str], tuple[str, ...]]:
    """Where a format 1 or 2 site's chain starts, and a note when retention purged its beginning."""
    seq, hash_ = int(start.get("seq", 0)), str(start.get("hash", chain.GENESIS_HASH))
    notes_ = ()
    if seq:
        notes_ = (f"the chain resumes after retention checkpoint seq {seq}; its hash {hash_} is taken as given",)
    return (seq, hash_), notes_


def _complete_chain(path: Path, site: str, start: Mapping, end: Mapping, notice_hashes) -> SiteReport:
    """Formats 1 and 2: a hash chain, checked link by link to the last link the end entry states."""
    (seq, hash_), notes_ = _chain_start(start)
    walk = _Walk(_in_seq_order(path, site, seq + 1), None, (seq, hash_), None)
    result = chain.check_events(
        walk, site, head_seq=end.get("last_seq"), notice_hashes=notice_hashes, start=(seq, hash_)
    )
    if result.ok and end.get("head_hash") != walk.last_hash:
        result = chain.Verification(
            False,
            result.checked,
            None,
            None,
            "the chain's last hash is not the one the end entry states (events were removed from the end)",
        )
    elif result.ok:
        result = chain.Verification(True, result.checked, head_hash=walk.last_hash)
    return SiteReport(site, _explain_notice(result, notice_hashes), True, notes_)


def _filtered(path: Path, site: str, notice_hashes) -> SiteReport:
    checked = 0
    for _, event in _events(path):
        if event.site != site:
            continue
        # Alone, an event still shows its own hash and evidence digest; its place in the log cannot be.
        result = chain.check_events([event], site, notice_hashes=notice_hashes, start=(event.seq - 1, event.prev_hash))
        checked += 1
        if not result.ok:
            result = chain.Verification(False, checked, result.first_bad, result.first_bad_seq, result.reason)
            return SiteReport(site, _explain_notice(result, notice_hashes), False)
    return SiteReport(site, chain.Verification(True, checked), False, (FILTERED_NOTE,))


def _explain_notice(result: chain.Verification, notice_hashes) -> chain.Verification:
    """Say so when an event's notice is missing from the notices file, rather than altered."""
    if result.ok or notice_hashes is None or not (result.reason or "").startswith("notice version "):
        return result
    version = int(result.reason.split()[2])
    if version in notice_hashes:
        return result
    reason = f"notice version {version} is not in the notices file"
    return chain.Verification(False, result.checked, result.first_bad, result.first_bad_seq, reason)


def _failed(site: str, fault: _Fault) -> SiteReport:
    return SiteReport(site, chain.Verification(False, 0, fault.event_id, fault.seq, fault.reason))


def _notice_hashes(path: Path) -> dict[str, dict[int, str]]:
    """Site -> version -> the hash of the notice's content recomputed; a notice that does not match is a fault."""
    hashes: dict[str, dict[int, str]] = {}
    with open(path, encoding="utf-8", newline="") as stream:
        first = stream.read(1)
        stream.seek(0)
        if first == "{":
            records = (json.loads(line) for line in stream if line.strip())
        else:
            reader = csv.DictReader(stream)
            records = ({f.name: from_cell(f, row.get(f.name, "")) for f in NOTICE_FIELDS} for row in reader)
        try:
            for record in records:
                notice = read_notice(record)
                recomputed = chain.sha256_hex(chain.canonical_json(notice.content))
                if recomputed != notice.content_hash:
                    raise _Fault(
                        f"notice {notice.site} version {notice.version}: its content does not match its "
                        "content_hash (the notice was altered)"
                    )
                hashes.setdefault(notice.site, {})[notice.version] = recomputed
        except (RecordError, json.JSONDecodeError, AttributeError) as exc:
            raise _Fault(f"the notices file cannot be read: {exc}") from None
    return hashes
