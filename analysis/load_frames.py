# SPDX-License-Identifier: GPL-2.0-only
"""Contract unit dicts → tidy DataFrames, in bulk.

The emitters (``analysis.emit.*``) yield the objects of
``/work/shared/contract/json-lines.md``; this module turns the units of all
captures of one migration into one DataFrame per kind.  Consuming the
contract objects (not decoder internals) keeps the analysis decoupled from
the decoders' Python APIs.  Every unit carries two private keys added by the
loader: ``_capture`` (index into ``Migration.captures``) and ``_side``
(``source`` / ``destination`` / None).

Column naming: units in the name (``_ns``, ``_bytes``, ``_pages``); times are
``ts_ns`` on the migration's common clock (see :mod:`analysis.align`) and
``capture_ts_ns`` on the capture's own clock.  docs/analysis.md lists every
column.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

import pandas as pd

#: column → dtype, per frame.  Empty frames keep these columns and dtypes.
SCHEMAS: dict[str, dict[str, str]] = {
    "events": {"capture": "Int64", "side": "string", "source": "string", "ts_ns": "Int64",
               "capture_ts_ns": "Int64", "cpu": "Int64", "pid": "Int64", "comm": "string",
               "system": "string", "event": "string", "qemu_event": "string", "device": "string",
               "args": "object", "text": "string"},
    "sections": {"capture": "Int64", "flow": "Int64", "offset": "Int64", "length_bytes": "Int64",
                 "type": "string", "section_id": "Int64", "idstr": "string", "instance_id": "Int64",
                 "version_id": "Int64", "ts_ns": "Int64", "end_ts_ns": "Int64", "capture_ts_ns": "Int64",
                 "ram_zero_pages": "Int64", "ram_normal_pages": "Int64", "ram_bytes": "Int64",
                 "vfio_data_bytes": "Int64"},
    "chunks": {"capture": "Int64", "flow": "Int64", "device": "string", "section_id": "Int64",
               "section": "Int64", "phase": "string", "offset": "Int64", "data_offset": "Int64",
               "size_bytes": "Int64", "ts_ns": "Int64", "capture_ts_ns": "Int64"},
    "records": {"capture": "Int64", "device": "string", "index": "Int64", "offset": "Int64",
                "record_size_bytes": "Int64", "total_bytes": "Int64", "flags": "Int64", "tag": "Int64",
                "tag_name": "string", "optional": "boolean", "phase": "string", "n_parts": "Int64",
                "trailer_bytes": "Int64", "ts_ns": "Int64", "capture_ts_ns": "Int64"},
    "parts": {"capture": "Int64", "device": "string", "record": "Int64", "admin_tag": "Int64",
              "index": "Int64", "offset": "Int64", "part_type": "Int64", "part_type_name": "string",
              "flags": "Int64", "optional": "boolean", "length_bytes": "Int64", "total_bytes": "Int64",
              "phase": "string", "selector": "object", "value": "object"},
    "admin": {"capture": "Int64", "owner": "string", "tag": "Int64", "opcode": "Int64",
              "opcode_name": "string", "group_member_id": "Int64", "request_ts_ns": "Int64",
              "completion_ts_ns": "Int64", "latency_ns": "Int64", "status": "Int64",
              "status_name": "string", "status_qualifier_name": "string", "parts_bytes": "Int64",
              "data": "object", "result": "object"},
    "flows": {"capture": "Int64", "flow": "Int64", "client": "string", "server": "string",
              "role": "string", "c2s_bytes": "Int64", "s2c_bytes": "Int64",
              "retransmitted_bytes": "Int64", "n_gaps": "Int64", "first_ts_ns": "Int64",
              "last_ts_ns": "Int64", "midstream": "boolean"},
    "rp_messages": {"capture": "Int64", "flow": "Int64", "offset": "Int64", "type": "Int64",
                    "type_name": "string", "value": "object", "ts_ns": "Int64", "capture_ts_ns": "Int64"},
    "commands": {"capture": "Int64", "flow": "Int64", "offset": "Int64", "cmd": "Int64",
                 "cmd_name": "string", "len": "Int64", "value": "object", "ts_ns": "Int64",
                 "capture_ts_ns": "Int64"},
    "multifd": {"capture": "Int64", "flow": "Int64", "offset": "Int64", "version": "Int64",
                "flags": "Int64", "packet_num": "Int64", "normal_pages": "Int64", "zero_pages": "Int64",
                "device": "string", "ts_ns": "Int64", "capture_ts_ns": "Int64"},
}


def ts_ns_of(u: dict[str, Any], key: str = "ts") -> int | None:
    """Integer nanoseconds of a unit: ``<key>_ns`` when present, else float seconds ``<key>``."""
    v = u.get(key + "_ns")
    if v is not None:
        return int(v)
    v = u.get(key)
    if v is None:
        return None
    return int(round(float(v) * 1e9))


def frame(kind: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A DataFrame with exactly the schema's columns and dtypes."""
    schema = SCHEMAS[kind]
    df = pd.DataFrame.from_records(rows, columns=list(schema)) if rows else pd.DataFrame(columns=list(schema))
    for col, dtype in schema.items():
        if dtype == "object":
            df[col] = df[col].astype(object)
        elif dtype == "boolean":
            df[col] = df[col].astype("boolean")
        else:
            df[col] = pd.array(df[col].tolist(), dtype=dtype) if len(df) else df[col].astype(dtype)
    return df


def _qemu(u: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    q = u.get("qemu")
    if isinstance(q, dict):
        return q.get("event"), dict(q.get("args") or {})
    return None, {}


def build_frames(units: Iterable[dict[str, Any]], offsets: dict[int, int] | None = None
                 ) -> tuple[dict[str, pd.DataFrame], list[dict[str, Any]]]:
    """Build every unit frame; returns (frames by name, findings as contract dicts).

    ``offsets`` maps capture index → clock offset (ns) added to that
    capture's timestamps to put them on the common clock.
    """
    offsets = offsets or {}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    findings: list[dict[str, Any]] = []
    last_section: dict[tuple[int, int | None], int] = {}   # (capture, section_id) → row in sections
    last_record: dict[tuple[int, str | None, int | None], int] = {}
    last_admin: dict[tuple[int, int | None], dict[str, Any]] = {}
    pending_cmd: dict[tuple[int, str | None, int | None], list[dict[str, Any]]] = defaultdict(list)

    def ts(u: dict[str, Any], cap: int, key: str = "ts") -> tuple[int | None, int | None]:
        raw = ts_ns_of(u, key)
        return (None if raw is None else raw + offsets.get(cap, 0)), raw

    for u in units:
        kind = u.get("kind")
        cap = int(u.get("_capture", 0))
        side = u.get("_side")
        if kind == "event":
            t, raw = ts(u, cap)
            qev, args = _qemu(u)
            rows["events"].append({
                "capture": cap, "side": side, "source": u.get("source"), "ts_ns": t, "capture_ts_ns": raw,
                "cpu": u.get("cpu"), "pid": u.get("pid"), "comm": u.get("comm"), "system": u.get("system"),
                "event": u.get("event"), "qemu_event": qev,
                "device": args.get("name") if isinstance(args.get("name"), str) else None,
                "args": args, "text": u.get("text")})
        elif kind == "section":
            t, raw = ts(u, cap)
            rows["sections"].append({
                "capture": cap, "flow": u.get("flow"), "offset": u.get("offset"), "length_bytes": u.get("length"),
                "type": u.get("type"), "section_id": u.get("section_id"), "idstr": u.get("idstr"),
                "instance_id": u.get("instance_id"), "version_id": u.get("version_id"), "ts_ns": t,
                "end_ts_ns": None, "capture_ts_ns": raw, "ram_zero_pages": None, "ram_normal_pages": None,
                "ram_bytes": None, "vfio_data_bytes": None})
            last_section[(cap, u.get("section_id"))] = len(rows["sections"]) - 1
        elif kind == "ram":
            i = last_section.get((cap, u.get("section_id")))
            if i is not None:
                s = rows["sections"][i]
                s["ram_zero_pages"] = int(u.get("zero_pages") or 0)
                s["ram_normal_pages"] = int(u.get("normal_pages") or 0)
                s["ram_bytes"] = int(u.get("bytes") or 0)
            else:  # a RAM unit without its section header still counts
                t, raw = ts(u, cap)
                rows["sections"].append({
                    "capture": cap, "flow": u.get("flow"), "offset": None, "length_bytes": None,
                    "type": u.get("section_type"), "section_id": u.get("section_id"), "idstr": "ram",
                    "instance_id": 0, "version_id": None, "ts_ns": t, "end_ts_ns": None, "capture_ts_ns": raw,
                    "ram_zero_pages": int(u.get("zero_pages") or 0),
                    "ram_normal_pages": int(u.get("normal_pages") or 0),
                    "ram_bytes": int(u.get("bytes") or 0), "vfio_data_bytes": None})
        elif kind == "vfio_chunk":
            t, raw = ts(u, cap)
            sec = last_section.get((cap, u.get("section_id")))
            if sec is not None and u.get("flow") is not None and rows["sections"][sec]["flow"] != u.get("flow"):
                sec = None  # carried by a multifd flow, not by the last main-channel section
            rows["chunks"].append({
                "capture": cap, "flow": u.get("flow"), "device": u.get("device"), "section_id": u.get("section_id"),
                "section": sec, "phase": u.get("phase"), "offset": u.get("offset"),
                "data_offset": u.get("data_offset"), "size_bytes": u.get("size"), "ts_ns": t, "capture_ts_ns": raw})
            if sec is not None:
                s = rows["sections"][sec]
                s["vfio_data_bytes"] = (s["vfio_data_bytes"] or 0) + int(u.get("size") or 0)
        elif kind == "vfio_record":
            t, raw = ts(u, cap)
            size = u.get("record_size")
            trailer = u.get("trailer_bytes") or 0
            rows["records"].append({
                "capture": cap, "device": u.get("device"), "index": u.get("index"), "offset": u.get("offset"),
                "record_size_bytes": size, "total_bytes": None if size is None else 16 + int(size),  # a trailer is inside record_size
                "flags": u.get("flags"), "tag": u.get("tag"), "tag_name": u.get("tag_name"),
                "optional": u.get("optional"), "phase": u.get("phase"), "n_parts": u.get("parts"),
                "trailer_bytes": trailer, "ts_ns": t, "capture_ts_ns": raw})
            last_record[(cap, u.get("device"), u.get("index"))] = len(rows["records"]) - 1
        elif kind == "dev_part":
            length = u.get("length")
            rec = u.get("record")
            phase = None
            ri = last_record.get((cap, u.get("device"), rec))
            if ri is not None:
                phase = rows["records"][ri]["phase"]
            rows["parts"].append({
                "capture": cap, "device": u.get("device"), "record": rec, "admin_tag": u.get("admin_tag"),
                "index": u.get("index"), "offset": u.get("offset"), "part_type": u.get("part_type"),
                "part_type_name": u.get("part_type_name"), "flags": u.get("flags"), "optional": u.get("optional"),
                "length_bytes": length, "total_bytes": None if length is None else 16 + int(length),
                "phase": phase, "selector": u.get("selector"), "value": u.get("value")})
            if u.get("admin_tag") is not None and length is not None:
                a = last_admin.get((cap, u.get("admin_tag")))
                if a is not None:
                    a["parts_bytes"] = (a["parts_bytes"] or 0) + 16 + int(length)
        elif kind == "admin_cmd":
            t, raw = ts(u, cap)
            row = {"capture": cap, "owner": u.get("owner"), "tag": u.get("tag"), "opcode": u.get("opcode"),
                   "opcode_name": u.get("opcode_name"), "group_member_id": u.get("group_member_id"),
                   "request_ts_ns": t, "completion_ts_ns": None, "latency_ns": None, "status": None,
                   "status_name": None, "status_qualifier_name": None, "parts_bytes": None,
                   "data": u.get("data"), "result": None}
            rows["admin"].append(row)
            pending_cmd[(cap, u.get("owner"), u.get("tag"))].append(row)
            last_admin[(cap, u.get("tag"))] = row
        elif kind == "admin_result":
            t, raw = ts(u, cap)
            q = pending_cmd.get((cap, u.get("owner"), u.get("tag")))
            if q:
                row = q.pop(0)
            else:  # completion without its request in the capture
                row = {"capture": cap, "owner": u.get("owner"), "tag": u.get("tag"), "opcode": u.get("opcode"),
                       "opcode_name": u.get("opcode_name"), "group_member_id": None, "request_ts_ns": None,
                       "completion_ts_ns": None, "latency_ns": None, "status": None, "status_name": None,
                       "status_qualifier_name": None, "parts_bytes": None, "data": None, "result": None}
                rows["admin"].append(row)
            row.update({"completion_ts_ns": t, "status": u.get("status"), "status_name": u.get("status_name"),
                        "status_qualifier_name": u.get("status_qualifier_name"), "result": u.get("result")})
            if row["opcode"] is None:
                row["opcode"], row["opcode_name"] = u.get("opcode"), u.get("opcode_name")
            if t is not None and row["request_ts_ns"] is not None:
                row["latency_ns"] = t - row["request_ts_ns"]
            last_admin[(cap, u.get("tag"))] = row
        elif kind == "flow":
            f, raw_f = ts(u, cap, "first_ts")
            l, raw_l = ts(u, cap, "last_ts")
            rows["flows"].append({
                "capture": cap, "flow": u.get("flow"), "client": u.get("client"), "server": u.get("server"),
                "role": u.get("role"), "c2s_bytes": u.get("c2s_bytes"), "s2c_bytes": u.get("s2c_bytes"),
                "retransmitted_bytes": u.get("retransmitted_bytes"), "n_gaps": len(u.get("gaps") or []),
                "first_ts_ns": f, "last_ts_ns": l, "midstream": False})
        elif kind == "rp_message":
            t, raw = ts(u, cap)
            rows["rp_messages"].append({
                "capture": cap, "flow": u.get("flow"), "offset": u.get("offset"), "type": u.get("type"),
                "type_name": u.get("type_name"), "value": u.get("value"), "ts_ns": t, "capture_ts_ns": raw})
        elif kind == "command":
            t, raw = ts(u, cap)
            rows["commands"].append({
                "capture": cap, "flow": u.get("flow"), "offset": u.get("offset"), "cmd": u.get("cmd"),
                "cmd_name": u.get("cmd_name"), "len": u.get("len"), "value": u.get("value"),
                "ts_ns": t, "capture_ts_ns": raw})
        elif kind == "multifd_packet":
            t, raw = ts(u, cap)
            ds = u.get("device_state")
            rows["multifd"].append({
                "capture": cap, "flow": u.get("flow"), "offset": u.get("offset"), "version": u.get("version"),
                "flags": u.get("flags"), "packet_num": u.get("packet_num"), "normal_pages": u.get("normal_pages"),
                "zero_pages": u.get("zero_pages"), "device": ds.get("idstr") if isinstance(ds, dict) else None,
                "ts_ns": t, "capture_ts_ns": raw})
        elif kind == "finding":
            f = {k: v for k, v in u.items() if not k.startswith("_")}
            f["capture"] = cap
            findings.append(f)
    # connections the capture caught after their start (dissect/qemu/midstream.py)
    late = {(f["capture"], f.get("flow")) for f in findings if f.get("code") == "flow_picked_up_midstream"}
    for r in rows["flows"]:
        r["midstream"] = (r["capture"], r["flow"]) in late
    _name_late_sections(rows["sections"], rows["chunks"], findings)
    _section_ends(rows["sections"], rows["chunks"])
    frames = {name: frame(name, rows.get(name, [])) for name in SCHEMAS}
    return frames, findings


def _name_late_sections(sections: list[dict[str, Any]], chunks: list[dict[str, Any]],
                        findings: list[dict[str, Any]]) -> None:
    """VFIO sections picked up mid-stream are named by a later section (the decoder's
    ``vfio_device_named``): their rows and chunks get that name, as the records already have it."""
    named = {(f["capture"], f.get("section_id")): f.get("device") for f in findings
             if f.get("code") == "vfio_device_named"}
    if not named:
        return
    for r in sections:
        if r["idstr"] is None:
            r["idstr"] = named.get((r["capture"], r["section_id"]))
    for c in chunks:
        if c["device"] is None:
            c["device"] = named.get((c["capture"], c["section_id"]))


def _section_ends(sections: list[dict[str, Any]], chunks: list[dict[str, Any]]) -> None:
    """``end_ts_ns`` of a section: the start of the next section of its flow.

    The last section of a flow ends at the last timestamp seen inside it (its
    chunks) or, lacking any, at its own start: the capture holds no later
    main-channel unit with a time.
    """
    by_flow: dict[tuple[int, Any], list[dict[str, Any]]] = defaultdict(list)
    for s in sections:
        by_flow[(s["capture"], s["flow"])].append(s)
    last_chunk: dict[int, int] = {}
    for c in chunks:
        if c["section"] is not None and c["ts_ns"] is not None:
            last_chunk[c["section"]] = max(last_chunk.get(c["section"], c["ts_ns"]), c["ts_ns"])
    index = {id(s): i for i, s in enumerate(sections)}
    for seq in by_flow.values():
        for a, b in zip(seq, seq[1:]):
            a["end_ts_ns"] = b["ts_ns"] if b["ts_ns"] is not None else a["ts_ns"]
        if seq:
            last = seq[-1]
            last["end_ts_ns"] = last_chunk.get(index[id(last)], last["ts_ns"])
