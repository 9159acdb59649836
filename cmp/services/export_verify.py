"""Verify an export from the file alone: no database, no application settings.

A complete export is checked link by link per site, as `cmp verify` checks the database: each site's events
in seq order through chain.check_events, from the checkpoint the export states (the genesis, or where
retention resumed the chain, whose hash is taken as given) to the last link its end entry states. A filtered
export is not contiguous: each event's own hash and evidence digest are checked, and the report says links
were not checkable. Across the file, entries must be framed (export first, end last) and in id order.
"""

from __future__ import annotations

import csv
import heapq
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cmp.services import chain
from cmp.services.export import CSV_COLUMNS, FORMAT, FORMAT_VERSION
from cmp.services.export_fields import (
    FIELDS,
    FORMAT_1_FIELD_NAMES,
    FORMAT_1_NAMES,
    NOTICE_FIELDS,
    RecordError,
    from_cell,
    read_event,
    read_notice,
)

# Events of one site held back while waiting for a lower seq: writers take their id before their place in
# the chain, so id order (the file's) and seq order differ by a few places under concurrency. Past this
# many, the lowest is released: a gap that large is a fault check_events then names.
REORDER_WINDOW = 10_000
# Versions of the format this release verifies: 1 differs from 2 only in field names and unescaped CSV cells.
READABLE_VERSIONS = (1, FORMAT_VERSION)
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


def _entries(path: Path) -> Iterator[tuple[int, dict]]:
    """(line or row number, entry as JSON values) from a JSON lines or CSV export, told apart by the first byte."""
    with open(path, encoding="utf-8", newline="") as stream:
        first = stream.read(1)
        stream.seek(0)
        if first == "{":
            format_1 = None
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
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
                for spec, cell in zip(FIELDS, row[1:-1], strict=True):
                    entry[spec.name] = from_cell(spec, cell, escaped=escaped)
            else:
                try:
                    entry["meta"] = json.loads(row[-1])
                except json.JSONDecodeError:
                    raise _Fault(f"row {number}: meta is not JSON") from None
            yield number, entry


def _events(path: Path) -> Iterator[tuple[int, object]]:
    for number, entry in _entries(path):
        if entry.get("entry") == "event":
            try:
                yield number, read_event(entry)
            except RecordError as exc:
                raise _Fault(f"entry {number}: {exc}", entry.get("id")) from None


@dataclass
class _Outline:
    """What one reading of the file establishes: the manifest, the end entry, events per site."""

    manifest: dict
    end: dict
    counts: dict[str, int]


def _outline(path: Path) -> _Outline:
    manifest, end, counts, previous = None, None, {}, None
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
            if not isinstance(manifest.get("checkpoints"), dict):
                raise _Fault("the export entry does not say where each site's chain starts")
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
        if event.site not in manifest["checkpoints"]:
            raise _Fault(f"event of site {event.site!r}, which the export does not cover", event.id, event.seq)
        if event.v != chain.HASH_VERSION:
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
    if manifest is None:
        raise _Fault("the file is empty")
    if not isinstance(end, dict) or not isinstance(end.get("sites"), dict):
        raise _Fault("the export has no end entry (the file was cut short)")
    return _Outline(manifest, end, counts)


def _in_seq_order(path: Path, site: str, expected: int) -> Iterator[object]:
    """One site's events in seq order from `expected`, holding back only the few that come early in id order."""
    waiting: list[tuple[int, int, object]] = []
    for number, event in _events(path):
        if event.site != site:
            continue
        heapq.heappush(waiting, (event.seq, number, event))
        while waiting and (waiting[0][0] <= expected or len(waiting) > REORDER_WINDOW):
            seq, _, ready = heapq.heappop(waiting)
            expected = max(expected, seq + 1)
            yield ready
    while waiting:
        yield heapq.heappop(waiting)[2]


def verify_file(path: Path, notices_path: Path | None = None) -> FileReport:
    """Check an export file (and, given, its notices file); the report names the first fault per site."""
    try:
        return _verify_file(path, notices_path)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # Entries of the wrong shape (an edited export or end entry): the file cannot be trusted as a whole.
        report = FileReport()
        report.sites.append(_failed("file", _Fault(f"the export is malformed ({type(exc).__name__}: {exc})")))
        return report


def _verify_file(path: Path, notices_path: Path | None) -> FileReport:
    report = FileReport()
    notice_hashes = None
    try:
        if notices_path is not None:
            notice_hashes = _notice_hashes(notices_path)
        outline = _outline(path)
    except _Fault as fault:
        report.sites.append(_failed("file", fault))
        return report
    complete = bool(outline.manifest.get("complete"))
    for site, start in outline.manifest["checkpoints"].items():
        hashes = None if notice_hashes is None else notice_hashes.get(site, {})
        try:
            site_report = (
                _complete(path, site, start, outline.end["sites"].get(site) or {}, hashes)
                if complete
                else _filtered(path, site, hashes)
            )
        except _Fault as fault:
            site_report = _failed(site, fault)
        if site_report.result.ok:
            expected = (outline.end["sites"].get(site) or {}).get("events")
            found = outline.counts.get(site, 0)
            if expected != found:
                site_report = _failed(
                    site, _Fault(f"the export holds {found} events of this site but its end entry says {expected}")
                )
        report.sites.append(site_report)
    return report


def _complete(path: Path, site: str, start: Mapping, end: Mapping, notice_hashes) -> SiteReport:
    seq, hash_ = int(start.get("seq", 0)), str(start.get("hash", chain.GENESIS_HASH))
    notes = ()
    if seq:
        notes = (f"the chain resumes after retention checkpoint seq {seq}; its hash {hash_} is taken as given",)
    result = chain.check_events(
        _in_seq_order(path, site, seq + 1),
        site,
        head_seq=end.get("last_seq"),
        head_hash=end.get("head_hash"),
        notice_hashes=notice_hashes,
        start=(seq, hash_),
    )
    return SiteReport(site, _explain_notice(result, notice_hashes), True, notes)


def _filtered(path: Path, site: str, notice_hashes) -> SiteReport:
    checked = 0
    for _, event in _events(path):
        if event.site != site:
            continue
        # Alone, an event still shows its own hash and evidence digest; the link to its predecessor cannot be.
        result = chain.check_events([event], site, notice_hashes=notice_hashes, start=(event.seq - 1, event.prev_hash))
        checked += 1
        if not result.ok:
            result = chain.Verification(False, checked, result.first_bad, result.first_bad_seq, result.reason)
            return SiteReport(site, _explain_notice(result, notice_hashes), False)
    note = "filtered export: each event's hash and evidence were checked; links between events were not checkable"
    return SiteReport(site, chain.Verification(True, checked), False, (note,))


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
