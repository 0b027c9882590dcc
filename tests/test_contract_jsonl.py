# SPDX-License-Identifier: GPL-2.0-only
"""Contract conformance: ``migtrace … --json`` against shared/contract/json-lines.md.

The schema table below is written BY HAND from json-lines.md (not derived
from the emitters): one entry per kind, each required field with its JSON
type.  Every bundled capture under ``traces/`` (found by globbing, so new
captures are covered as they land) and hand-made ``--as`` inputs are decoded
with the real ``migtrace`` process and every line is checked.

Known contract violations in other engineers' code are listed in
``KNOWN_VIOLATIONS``: the per-capture checks ignore them, and one strict
xfail test per violation asserts it is gone, so the test flips to XPASS
(failing the suite) the moment the emitter is fixed.
"""
from __future__ import annotations

import json
import re
import struct
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import ROOT, TRACES, run_cli

# --------------------------------------------------------------------------------------
# Type predicates (json-lines.md "Integers are JSON integers; timestamps `ts` are float
# seconds and `ts_ns` integer nanoseconds; absent values are `null`")

Check = Callable[[Any], bool]


def INT(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def FLOAT(v: Any) -> bool:
    return isinstance(v, float)


def NUM(v: Any) -> bool:
    return INT(v) or FLOAT(v)


def STR(v: Any) -> bool:
    return isinstance(v, str)


def BOOL(v: Any) -> bool:
    return isinstance(v, bool)


def DICT(v: Any) -> bool:
    return isinstance(v, dict)


def LIST(v: Any) -> bool:
    return isinstance(v, list)


def ANY(v: Any) -> bool:
    return True


_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
#: family prefixes the naming rule removes (json-lines.md "Naming rule")
_PREFIXES = ("VIRTIO_", "VIRTIOVF_", "VFIO_MIG_", "QEMU_VM_", "MIG_CMD_", "MIG_RP_MSG_")


def NAME(v: Any) -> bool:
    """A spec constant name, upper case, family prefix removed."""
    return isinstance(v, str) and bool(_NAME_RE.match(v)) and not v.startswith(_PREFIXES)


def HEX(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]*", v) is not None and len(v) % 2 == 0


def SNAKE(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[a-z][a-z0-9_]*", v) is not None


def ADDR(v: Any) -> bool:
    """"ip:port" (IPv6 addresses may be bracketed)."""
    return isinstance(v, str) and re.fullmatch(r"(\d+\.\d+\.\d+\.\d+|\[?[0-9a-fA-F:.]+\]?):\d+", v) is not None


def PCI(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", v) is not None


def MAC(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", v) is not None


def OPT(c: Check) -> Check:
    def f(v: Any) -> bool:
        return v is None or c(v)
    f.__name__ = f"{getattr(c, '__name__', 'check')}|null"
    return f


def ENUM(*values: Any) -> Check:
    def f(v: Any) -> bool:
        return any(v == x and type(v) is type(x) for x in values)
    f.__name__ = "one of " + "|".join(map(str, values))
    return f


def LIST_OF(c: Check) -> Check:
    def f(v: Any) -> bool:
        return isinstance(v, list) and all(c(x) for x in v)
    f.__name__ = f"list of {getattr(c, '__name__', 'check')}"
    return f


def OBJ(**fields: Check) -> Check:
    """A JSON object with at least these fields (more are welcome)."""
    def f(v: Any) -> bool:
        return isinstance(v, dict) and all(k in v and c(v[k]) for k, c in fields.items())
    f.__name__ = "{" + ", ".join(fields) + "}"
    return f


def DICT_OF(c: Check) -> Check:
    def f(v: Any) -> bool:
        return isinstance(v, dict) and all(isinstance(k, str) and c(x) for k, x in v.items())
    f.__name__ = f"object of {getattr(c, '__name__', 'check')}"
    return f


# --------------------------------------------------------------------------------------
# The schema table, by hand from json-lines.md.  OPT(...) where the contract allows an
# absent value (a raw stream file has no flow and no capture clock; a bare buffer has no
# tag/owner/time; PART/END sections whose START was not captured have no idstr, …).

PHASES = ENUM("setup", "precopy", "stopcopy", "config")
SECTION_TYPES = ENUM("START", "PART", "END", "FULL")
GAP = OBJ(direction=ENUM("c2s", "s2c"), start=INT, end=INT)
DECODE_FORMATS = ("pcap", "pcapng", "qemu-stream", "trace-dat", "ftrace-text", "trace-cmd-report",
                  "qemu-log", "vfio-stream", "dev-parts", "admin-request", "admin-completion")

SCHEMA: dict[str, dict[str, Check]] = {
    # Capture structure
    "flow": dict(flow=INT, client=ADDR, server=ADDR, role=ENUM("main", "multifd", "other"),
                 c2s_bytes=INT, s2c_bytes=INT, retransmitted_bytes=INT, gaps=LIST_OF(GAP),
                 first_ts=FLOAT, last_ts=FLOAT),
    # length: null only for a section cut by a gap (marked `incomplete`), see check_object
    "section": dict(flow=OPT(INT), offset=INT, length=OPT(INT), type=SECTION_TYPES, section_id=INT,
                    idstr=OPT(STR), instance_id=OPT(INT), version_id=OPT(INT), ts=OPT(FLOAT)),
    "command": dict(flow=OPT(INT), offset=INT, cmd=INT, cmd_name=OPT(NAME), len=INT, value=ANY),
    "rp_message": dict(flow=INT, offset=INT, type=INT, type_name=OPT(NAME), len=INT, value=ANY,
                       ts=OPT(FLOAT)),
    "ram": dict(section_id=INT, section_type=SECTION_TYPES, zero_pages=INT, normal_pages=INT,
                xbzrle_pages=INT, compressed_pages=INT, bytes=OPT(INT),  # null: section cut by a gap
                blocks=DICT_OF(OBJ(zero_pages=INT, normal_pages=INT))),
    "multifd_packet": dict(flow=INT, offset=INT, version=OPT(INT), flags=OPT(INT), packet_num=OPT(INT),
                           ramblock=OPT(STR), normal_pages=OPT(INT), zero_pages=OPT(INT),
                           device_state=OPT(OBJ(idstr=STR, instance_id=INT, idx=INT, config=BOOL))),
    "vmdesc": dict(offset=INT, page_size=OPT(INT), devices=INT),
    "vfio_marker": dict(device=STR, section_id=INT, offset=INT, marker=OPT(NAME), value=INT),
    # data_offset: null for phase `config` (the config state is not part of the device's
    # concatenated vfio-virtio data, so it has no offset there) -- checked in check_object.
    "vfio_chunk": dict(device=STR, section_id=INT, phase=PHASES, offset=INT, data_offset=OPT(INT),
                       size=INT, ts=OPT(FLOAT)),
    # VFIO device data and virtio
    "vfio_record": dict(device=OPT(STR), index=INT, offset=INT, record_size=INT, flags=INT, tag=INT,
                        tag_name=OPT(NAME), optional=BOOL, phase=OPT(PHASES), parts=INT,
                        trailer_bytes=ENUM(0, 8), ts=OPT(FLOAT)),
    "dev_part": dict(index=INT, offset=INT, part_type=INT, part_type_name=OPT(NAME), flags=INT,
                     optional=BOOL, selector=DICT, length=INT, value=DICT),
    "admin_cmd": dict(tag=OPT(INT), owner=OPT(PCI), ts=OPT(FLOAT), opcode=INT, opcode_name=OPT(NAME),
                      group_type=INT, group_type_name=OPT(NAME), group_member_id=INT, data=DICT),
    "admin_result": dict(tag=OPT(INT), owner=OPT(PCI), ts=OPT(FLOAT), opcode=INT, opcode_name=OPT(NAME),
                         status=INT, status_name=OPT(NAME), status_qualifier=INT,
                         status_qualifier_name=OPT(NAME), result=DICT),
    # Traces
    # ts_ns: null only for QEMU log lines printed without a timestamp (checked in _check_event)
    "event": dict(source=ENUM("trace-dat", "ftrace-text", "trace-cmd-report", "qemu-log"), ts_ns=OPT(INT),
                  cpu=OPT(INT), pid=OPT(INT), comm=OPT(STR), system=OPT(STR), event=STR, fields=DICT,
                  text=OPT(STR), qemu=OPT(OBJ(event=STR, args=DICT))),
    # Always
    "finding": dict(severity=ENUM("error", "warning", "info"), code=SNAKE, message=STR, offset=OPT(INT)),
    "summary": dict(format=ENUM(*DECODE_FORMATS), counts=DICT_OF(INT), errors=INT, warnings=INT),
    # migtrace summary --json
    "migration_summary": dict(
        captures=LIST_OF(STR), qemu_profile=OPT(STR), total_ms=OPT(FLOAT), setup_ms=OPT(FLOAT),
        precopy_iterations=OPT(INT), precopy_iterations_method=OPT(ENUM("trace", "qmp", "stream")),
        dirty_syncs=OPT(INT), qemu_iterate_sections=OPT(INT), ram_zero_pages=OPT(INT), ram_normal_pages=OPT(INT),
        bytes_main=OPT(INT), bytes_multifd=OPT(INT), downtime_qemu_ms=OPT(FLOAT),
        downtime_wire_ms=OPT(FLOAT), downtime_model_ms=OPT(FLOAT),
        downtime_breakdown_ms=OPT(OBJ(ram=OPT(FLOAT), vfio=OPT(FLOAT), config=OPT(FLOAT),
                                      dst_load=OPT(FLOAT)))),
    "device_summary": dict(
        device=STR, precopy_chunks=OPT(INT), precopy_snapshots=OPT(INT),
        precopy_policy=ENUM("cap128", "ratelimited", "unknown"), stopcopy_records=OPT(INT),
        stopcopy_bytes=OPT(INT), record_bytes_min=OPT(INT), record_bytes_median=OPT(INT),
        record_bytes_p95=OPT(INT), record_bytes_max=OPT(INT), trailer_bug=BOOL,
        parts_per_record_median=OPT(NUM), bytes_by_part_type=OPT(DICT_OF(INT)),
        admin_latency_ms=OPT(DICT_OF(FLOAT))),
    # migtrace compare --json
    "comparison": dict(
        metric=STR, by=STR, baseline=STR, candidate=STR, n_baseline=INT, n_candidate=INT,
        baseline_median=OPT(NUM), candidate_median=OPT(NUM), change_pct=OPT(FLOAT),
        ci_low_pct=OPT(FLOAT), ci_high_pct=OPT(FLOAT), p_value=OPT(FLOAT), effect_size=OPT(FLOAT),
        threshold_pct=FLOAT, worse_when=ENUM("higher", "lower"),
        verdict=ENUM("regression", "improvement", "unchanged", "inconclusive")),
    "compare_summary": dict(baseline=STR, candidates=LIST_OF(STR), runs=INT, runs_failed=INT,
                            regressions=INT, improvements=INT, inconclusive=INT),
}

#: ``ram`` of a START section also carries these (json-lines.md, ``ram``).
RAM_START = dict(mem_size=INT, ram_blocks=LIST_OF(OBJ(idstr=STR, used_length=INT)))

#: ``dev_part.selector`` by part type (json-lines.md, ``dev_part``).
SELECTORS: dict[str | None, Check] = {
    "PCI_COMMON_CFG": OBJ(offset=INT),
    "VQ_CFG": OBJ(vq_index=INT),
    "VQ_NOTIFY_CFG": OBJ(vq_index=INT),
    "NET_CVQ_CFG": OBJ(**{"class": INT, "command": INT, "class_name": OPT(NAME), "command_name": OPT(NAME)}),
    None: OBJ(raw=HEX),
}

_RX = OBJ(on=BOOL)
#: ``dev_part.value`` by part type, and for NET_CVQ_CFG by command name.
VALUES: dict[str, Check] = {
    "DEV_FEATURES": OBJ(bits=LIST_OF(INT), names=LIST_OF(STR)),
    "DRV_FEATURES": OBJ(bits=LIST_OF(INT), names=LIST_OF(STR)),
    "PCI_COMMON_CFG": OBJ(field=STR, value=INT),
    "DEVICE_STATUS": OBJ(value=INT, names=LIST_OF(NAME)),
    "VQ_CFG": OBJ(queue_size=INT, vector=INT, enabled=INT, queue_desc=INT, queue_driver=INT,
                  queue_device=INT),
    "VQ_NOTIFY_CFG": OBJ(queue_notify_off=INT, queue_notif_config_data=INT),
}
NET_VALUES: dict[str, Check] = {
    **{f"RX_{n}": _RX for n in ("PROMISC", "ALLMULTI", "ALLUNI", "NOMULTI", "NOUNI", "NOBCAST")},
    "MAC_TABLE_SET": OBJ(unicast=LIST_OF(MAC), multicast=LIST_OF(MAC)),
    "MAC_ADDR_SET": OBJ(mac=MAC),
    "VLAN_ADD": OBJ(vlans=LIST_OF(INT)),
    "ANNOUNCE_ACK": OBJ(),
    "MQ_VQ_PAIRS_SET": OBJ(virtqueue_pairs=INT),
    "MQ_RSS_CONFIG": OBJ(hash_types=INT, indirection_table=LIST_OF(INT), unclassified_queue=INT,
                         max_tx_vq=INT, hash_key=HEX),
    "MQ_HASH_CONFIG": OBJ(hash_types=INT, hash_key=HEX),
}

#: Fields holding spec constant names (the naming rule applies), per kind.
NAME_FIELDS = {
    "section": ("type",), "command": ("cmd_name",), "rp_message": ("type_name",),
    "ram": ("section_type",), "vfio_marker": ("marker",), "vfio_record": ("tag_name",),
    "dev_part": ("part_type_name",), "admin_cmd": ("opcode_name", "group_type_name"),
    "admin_result": ("opcode_name", "status_name", "status_qualifier_name"),
}
_NUMBER_TEXT = re.compile(r"^(0[xX][0-9a-fA-F]+|-?\d+)$")


def _describe(c: Check) -> str:
    return getattr(c, "__name__", "check")


def check_object(obj: Any) -> list[tuple[str, str, str]]:
    """Contract violations of one JSON Lines object as (kind, field, problem)."""
    if not isinstance(obj, dict):
        return [("?", "-", f"line is not a JSON object: {obj!r:.80}")]
    kind = obj.get("kind")
    if not isinstance(kind, str):
        return [("?", "kind", "object has no kind")]
    out: list[tuple[str, str, str]] = []
    for field, c in SCHEMA.get(kind, {}).items():
        if field not in obj:
            out.append((kind, field, "required field missing"))
        elif not c(obj[field]):
            out.append((kind, field, f"expected {_describe(c)}, got {obj[field]!r:.120}"))
    # timestamps in extra fields follow the same rule as ts / ts_ns
    for k, v in obj.items():
        if k in SCHEMA.get(kind, {}):
            continue
        if k.endswith("_ns") and not OPT(INT)(v):
            out.append((kind, k, f"*_ns must be integer nanoseconds, got {v!r:.60}"))
        elif (k == "ts" or k.startswith("ts_") or k.endswith("_ts")) and not k.endswith("_ns") \
                and not OPT(FLOAT)(v):
            out.append((kind, k, f"timestamps are float seconds, got {v!r:.60}"))
    if kind == "ram" and obj.get("section_type") == "START":
        for field, c in RAM_START.items():
            if field not in obj or not c(obj[field]):
                out.append((kind, field, f"START ram needs {field} as {_describe(c)}, got {obj.get(field)!r:.80}"))
    if kind == "section" and obj.get("length") is None and not obj.get("incomplete"):
        out.append((kind, "length", "length is null but the section is not marked incomplete"))
    if kind == "vfio_chunk" and obj.get("phase") != "config" and not INT(obj.get("data_offset")):
        out.append((kind, "data_offset", f"{obj.get('phase')} chunk needs an integer data_offset, "
                                         f"got {obj.get('data_offset')!r}"))
    if kind == "dev_part":
        out += _check_dev_part(obj)
    if kind == "event":
        out += _check_event(obj)
    if kind == "admin_cmd":
        for k, v in obj.get("data", {}).items() if isinstance(obj.get("data"), dict) else ():
            if k.endswith("_name") and v is not None and not (NAME(v) or LIST_OF(NAME)(v)):
                out.append((kind, f"data.{k}", f"names are upper-case spec names without prefix: {v!r:.60}"))
    return out


def _check_dev_part(obj: dict) -> list[tuple[str, str, str]]:
    out = []
    if not ("admin_tag" in obj or ("device" in obj and "record" in obj)):
        out.append(("dev_part", "device/record|admin_tag", "needs device and record, or admin_tag"))
    for k in ("device", "record", "admin_tag"):
        if k in obj and obj[k] is not None and not (STR if k == "device" else INT)(obj[k]):
            out.append(("dev_part", k, f"bad type {obj[k]!r:.60}"))
    name = obj.get("part_type_name")
    sel, val = obj.get("selector"), obj.get("value")
    if name in SELECTORS or name is None:
        c = SELECTORS[name]
        if not c(sel):
            out.append(("dev_part", "selector", f"{name}: expected {_describe(c)}, got {sel!r:.100}"))
    elif sel != {} and isinstance(sel, dict) and sel:
        # "{}" when unused (DEV_FEATURES, DRV_FEATURES, DEVICE_STATUS)
        out.append(("dev_part", "selector", f"{name}: unused selector must be {{}}, got {sel!r:.100}"))
    if isinstance(val, dict) and set(val) == {"raw"}:
        if not HEX(val["raw"]):
            out.append(("dev_part", "value.raw", f"raw value must be hex, got {val['raw']!r:.60}"))
        return out  # undecodable value: {raw} plus a finding
    if name is None:
        out.append(("dev_part", "value", f"unknown part type needs {{raw: hex}}, got {val!r:.100}"))
    elif name == "NET_CVQ_CFG":
        cmd = sel.get("command_name") if isinstance(sel, dict) else None
        c = NET_VALUES.get(cmd)
        if c is not None and not c(val):
            out.append(("dev_part", "value", f"NET_CVQ_CFG {cmd}: expected {_describe(c)}, got {val!r:.120}"))
    elif name in VALUES and not VALUES[name](val):
        out.append(("dev_part", "value", f"{name}: expected {_describe(VALUES[name])}, got {val!r:.120}"))
    return out


def _check_event(obj: dict) -> list[tuple[str, str, str]]:
    out = []
    if obj.get("ts_ns") is None and obj.get("source") != "qemu-log":
        out.append(("event", "ts_ns", f"{obj.get('source')} events always have a time"))
    f = obj.get("fields") or {}
    if obj.get("event") == "print" and obj.get("system") == "ftrace":
        if not {"ip", "buf"} <= set(f):
            out.append(("event", "fields", f"print needs {{ip, buf}}, got {sorted(f)}"))
        elif not OPT(INT)(f["ip"]):
            # ip is an address: a number (or null where the source does not carry it)
            out.append(("event", "fields.ip", f"print ip must be an integer address or null, got {f['ip']!r:.60}"))
    if obj.get("event") == "raw_data" and obj.get("system") == "ftrace":
        if not (INT(f.get("id")) and HEX(f.get("buf"))):
            out.append(("event", "fields", f"raw_data needs {{id: int, buf: hex}}, got {f!r:.100}"))
    q = obj.get("qemu")
    if isinstance(q, dict) and isinstance(q.get("args"), dict):
        for k, v in q["args"].items():
            if isinstance(v, str) and _NUMBER_TEXT.match(v):
                out.append(("event", f"qemu.args.{k}", f"numbers are parsed from hex/decimal, got text {v!r}"))
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_loads(line: str) -> Any:
    """json.loads that refuses NaN/Infinity (Python's json accepts them; JSON does not)."""
    return json.loads(line, parse_constant=_no_constants)


def check_stream(lines: list[str], *, summary_kind: str | None = "summary") -> list[tuple[str, str, str]]:
    """Violations of a whole --json output: every line, and the closing summary."""
    out: list[tuple[str, str, str]] = []
    objs = []
    for i, line in enumerate(lines):
        try:
            objs.append(strict_loads(line))
        except ValueError:
            out.append(("?", f"line {i + 1}", f"not JSON: {line!r:.100}"))
            continue
        out += check_object(objs[-1])
    if summary_kind is None:
        return out
    kinds = [o.get("kind") for o in objs if isinstance(o, dict)]
    if not kinds or kinds[-1] != summary_kind:
        out.append((summary_kind, "-", f"the last line must be the {summary_kind}, got {kinds[-1:]}"))
        return out
    if kinds.count(summary_kind) != 1:
        out.append((summary_kind, "-", f"{kinds.count(summary_kind)} {summary_kind} lines"))
    if summary_kind == "summary":
        s = objs[-1]
        body = objs[:-1]
        counts: dict[str, int] = {}
        for o in body:
            counts[o["kind"]] = counts.get(o["kind"], 0) + 1
        if s.get("counts") != counts:
            out.append(("summary", "counts", f"counts {s.get('counts')} != lines emitted {counts}"))
        for sev, field in (("error", "errors"), ("warning", "warnings")):
            n = sum(1 for o in body if o["kind"] == "finding" and o.get("severity") == sev)
            if s.get(field) != n:
                out.append(("summary", field, f"{field}={s.get(field)} but {n} {sev} findings emitted"))
    return out


# --------------------------------------------------------------------------------------
# Known violations in other engineers' code (reported to the lead; see docs/json-lines.md).
# id -> (predicate on a violation tuple, reason).  Each gets a strict xfail below.

KNOWN_VIOLATIONS: dict[str, tuple[Callable[[tuple[str, str, str]], bool], str]] = {}


def _unexpected(viol: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [v for v in viol if not any(pred(v) for pred, _ in KNOWN_VIOLATIONS.values())]


# --------------------------------------------------------------------------------------
# Running the CLI (cached: each capture is decoded once per session)

@lru_cache(maxsize=None)
def cli(*argv: str) -> tuple[int, tuple[str, ...], str]:
    proc = run_cli(*argv)
    return proc.returncode, tuple(proc.stdout.splitlines()), proc.stderr


def _objs(lines: tuple[str, ...]) -> list[dict]:
    return [json.loads(x) for x in lines]


_NOT_CAPTURES = {".py", ".md", ".json", ".toml", ".ipynb", ".parquet", ".html", ".png", ".svg",
                 ".S", ".ld", ".sh"}  # the tiny guest's source and build script (traces/real/guest)


def _sampled_sim_run(p: Path) -> bool:
    """The simulated corpus repeats the same run shape many times (seeds x firmware):
    every run under traces/sim/variants/ (each a different scenario) and the first run of
    every other group are enough to cover its capture kinds, and keep the suite fast."""
    sim = TRACES / "sim"
    try:
        rel = p.relative_to(sim)
    except ValueError:
        return True
    if len(rel.parts) < 3:
        return True
    group, run = rel.parts[0], rel.parts[1]
    if group == "variants":
        return True
    runs = sorted(d.name for d in (sim / group).iterdir() if (d / "run.json").is_file())
    return bool(runs) and run == runs[0]


def bundled_captures() -> list[Path]:
    """Every capture file bundled under traces/ (and tests/data/, if any); the simulated
    corpus sampled by :func:`_sampled_sim_run`."""
    found = []
    for base in (TRACES, ROOT / "tests" / "data"):
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if not p.is_file() or p.suffix in _NOT_CAPTURES or p.name.startswith("."):
                continue
            if p.name.endswith("info-migrate.txt") or "__pycache__" in p.parts:
                continue  # `info migrate` text is summary input, not a decode capture
            if p.suffix == ".jsonl":
                continue  # query-migrate series (roles qmp-source/-destination): load()/summary input
            if p.suffix == ".bin":
                continue  # sample blobs without magic need --as (README examples test them)
            if _sampled_sim_run(p):
                found.append(p)
    return found


CAPTURES = bundled_captures()


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


_STREAM_KINDS = {"header", "configuration", "section", "command", "eof", "vmdesc", "vfio_marker", "vfio_chunk",
                 "multifd_packet"}


def check_order(objs: list[dict]) -> list[str]:
    """json-lines.md: units in capture order (each flow's byte stream in order; flows in
    order of their first packet), records numbered in order, parts refer to their record."""
    bad = []
    flows = [o for o in objs if o["kind"] == "flow"]
    if [f["flow"] for f in flows] != list(range(len(flows))):
        bad.append(f"flow indices {[f['flow'] for f in flows]}")
    if [f["first_ts"] for f in flows] != sorted(f["first_ts"] for f in flows):
        bad.append("flows not in order of their first packet")
    last: dict[Any, int] = {}
    for o in objs:
        if o["kind"] in _STREAM_KINDS and INT(o.get("offset")):
            key = o.get("flow")
            if o["offset"] < last.get(key, -1):
                bad.append(f"{o['kind']} at {o['offset']} after offset {last[key]} in flow {key}")
            last[key] = max(last.get(key, -1), o["offset"])
    idx: dict[Any, list[int]] = {}
    for o in objs:
        if o["kind"] == "vfio_record":
            idx.setdefault(o["device"], []).append(o["index"])
    for dev, ids in idx.items():
        if ids != list(range(len(ids))):
            bad.append(f"vfio_record indices of {dev}: {ids[:10]}")
    recs = {(o["device"], o["index"]) for o in objs if o["kind"] == "vfio_record"}
    dangling = {(o["device"], o["record"]) for o in objs
                if o["kind"] == "dev_part" and o.get("record") is not None} - recs
    if dangling:
        bad.append(f"dev_part lines refer to records never emitted: {sorted(dangling)[:5]}")
    srcs = {o["source"] for o in objs if o["kind"] == "event"}
    fmt = objs[-1].get("format") if objs else None
    if srcs and srcs != {fmt}:
        bad.append(f"event sources {srcs} but summary format {fmt}")
    return bad


@pytest.mark.parametrize("capture", CAPTURES, ids=_rel)
def test_decode_json_of_every_bundled_capture_conforms(capture: Path) -> None:
    rc, lines, err = cli("decode", "--json", _rel(capture))
    assert rc in (0, 1), f"exit {rc}: {err}"
    assert lines, "no output"
    viol = _unexpected(check_stream(list(lines)))
    assert not viol, "\n".join(map(str, viol[:40]))
    objs = _objs(lines)
    assert check_order(objs) == []
    # exit code 1 exactly when error findings were emitted (cli.md "Exit codes")
    assert rc == (1 if objs[-1]["errors"] else 0)


@pytest.mark.timeout(1800)  # decodes every bundled capture when run on its own
def test_bundled_captures_cover_every_capture_family() -> None:
    formats = set()
    for p in CAPTURES:
        rc, lines, _ = cli("decode", "--json", _rel(p))
        if lines:
            formats.add(json.loads(lines[-1]).get("format"))
    assert {"pcap", "pcapng", "qemu-stream", "trace-dat", "ftrace-text", "trace-cmd-report",
            "qemu-log"} <= formats


def _kinds_seen() -> dict[str, dict]:
    seen: dict[str, dict] = {}
    for p in CAPTURES:
        _, lines, _ = cli("decode", "--json", _rel(p))
        for o in _objs(lines):
            seen.setdefault(o["kind"], o)
    return seen


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kind", ["flow", "section", "command", "rp_message", "ram", "multifd_packet",
                                  "vmdesc", "vfio_marker", "vfio_chunk", "vfio_record", "dev_part",
                                  "admin_cmd", "admin_result", "event", "finding"])
def test_every_decode_kind_is_emitted_by_some_bundled_capture(kind: str) -> None:
    seen = _kinds_seen()
    if kind not in seen:
        pytest.skip(f"no bundled capture emits {kind!r} yet (VFIO-bearing generated captures "
                    "under traces/generated/ have not landed)")
    assert not check_object(seen[kind])


# --------------------------------------------------------------------------------------
# Hand-made inputs for --as (bytes written out from the spec tables, device-parts.md §2,
# §4, §8; vfio-virtio-stream.md §3; virtio-admin.md §3, §7)

def _hdr(part_type: int, selector: bytes, length: int, flags: int = 0) -> bytes:
    # virtio_dev_part_hdr: le16 part_type, u8 flags, u8 reserved, 8-byte selector, le32 length
    return struct.pack("<HBB8sI", part_type, flags, 0, selector, length)


#: (part_type_name, bytes) in spec order; values noted next to each
PARTS = [
    # DEV_FEATURES, optional: bits 5 (NET_F_MAC), 22 (NET_F_MQ), 32 (F_VERSION_1)
    ("DEV_FEATURES", _hdr(0x100, bytes(8), 8, 1) + bytes.fromhex("2000400001000000")),
    ("DRV_FEATURES", _hdr(0x101, bytes(8), 8) + bytes.fromhex("2000400001000000")),
    # PCI_COMMON_CFG offset 18 = num_queues, value 2
    ("PCI_COMMON_CFG", _hdr(0x102, bytes.fromhex("1200000000000000"), 2) + bytes.fromhex("0200")),
    # DEVICE_STATUS 0x0f = ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK
    ("DEVICE_STATUS", _hdr(0x103, bytes(8), 1) + bytes.fromhex("0f")),
    # VQ_CFG index 0 and 1: size 256, vector 1, enabled 1, desc/driver/device 0x1000/0x2000/0x3000
    ("VQ_CFG", _hdr(0x104, bytes(8), 32) + bytes.fromhex(
        "0001" "0100" "0100" "0000" "0010000000000000" "0020000000000000" "0030000000000000")),
    ("VQ_CFG", _hdr(0x104, bytes.fromhex("0100000000000000"), 32) + bytes.fromhex(
        "0001" "0200" "0100" "0000" "0040000000000000" "0050000000000000" "0060000000000000")),
    ("VQ_NOTIFY_CFG", _hdr(0x105, bytes(8), 8) + bytes.fromhex("0000" "0000" "00000000")),
    ("VQ_NOTIFY_CFG", _hdr(0x105, bytes.fromhex("0100000000000000"), 8) + bytes.fromhex("0100" "0100" "00000000")),
    # net CVQ: RX_PROMISC on (0,0), MAC_ADDR_SET 52:54:00:12:34:56 (1,1), MQ_VQ_PAIRS_SET 1 (4,0),
    # MQ_RSS_CONFIG (4,1): hash_types 0x3f, mask 1 (2 entries), unclassified 0, table [0, 1],
    # max_tx_vq 1, key length 4, key de ad be ef
    ("NET_CVQ_CFG", _hdr(0x200, bytes.fromhex("0000000000000000"), 1) + b"\x01"),
    ("NET_CVQ_CFG", _hdr(0x200, bytes.fromhex("0101000000000000"), 6) + bytes.fromhex("525400123456")),
    ("NET_CVQ_CFG", _hdr(0x200, bytes.fromhex("0400000000000000"), 2) + bytes.fromhex("0100")),
    ("NET_CVQ_CFG", _hdr(0x200, bytes.fromhex("0401000000000000"), 19) + bytes.fromhex(
        "3f000000" "0100" "0000" "0000" "0100" "0100" "04" "deadbeef")),
    # an unassigned common type 0x0150 with a selector and a 2-byte value
    (None, _hdr(0x150, bytes.fromhex("0102030405060708"), 2) + bytes.fromhex("aabb")),
]
PARTS_BLOB = b"".join(b for _, b in PARTS)


def _record(payload: bytes, flags: int = 0, tag: int = 0, size: int | None = None) -> bytes:
    # virtiovf_migration_header: le64 record_size, le32 flags, le32 tag
    return struct.pack("<QII", len(payload) if size is None else size, flags, tag) + payload


KNOWN_PARTS = b"".join(b for n, b in PARTS if n is not None)
VFIO_STREAM = (_record(KNOWN_PARTS)
               + _record(KNOWN_PARTS + bytes(8), )            # kernel 6.13.0-6.15.2 8-byte trailer
               + _record(b"\x11\x22\x33\x44", flags=1, tag=7)  # unknown optional tag: skipped, reported
               + _record(KNOWN_PARTS[:10], size=100))         # truncated last record

#: DEV_PARTS_GET (0xf) request, SR-IOV (1), VF 1; data: resource object hdr (type 0, id 0),
#: type 1 = ALL, reserved[7]
ADMIN_REQUEST = (struct.pack("<HH12sQ", 0xF, 1, bytes(12), 1)
                 + bytes.fromhex("0000" "0000" "00000000" "01" "00000000000000"))
#: DEV_PARTS_GET result: status OK, qualifier OK, reserved, then the parts
ADMIN_COMPLETION_OK = struct.pack("<HH4s", 0, 0, bytes(4)) + KNOWN_PARTS
#: DEV_MODE_SET (0x11) failed: EINVAL (22), INVALID_FIELD (3)
ADMIN_COMPLETION_EINVAL = struct.pack("<HH4s", 22, 3, bytes(4))


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("handmade")
    files = {"parts": PARTS_BLOB, "vfio": VFIO_STREAM, "req": ADMIN_REQUEST,
             "cpl": ADMIN_COMPLETION_OK, "einval": ADMIN_COMPLETION_EINVAL}
    out = {}
    for name, data in files.items():
        (d / name).write_bytes(data)
        out[name] = d / name
    return out


def _decode_as(kind: str, path: Path, *extra: str) -> tuple[int, list[dict]]:
    rc, lines, err = cli("decode", "--json", "--as", kind, *extra, str(path))
    viol = _unexpected(check_stream(list(lines)))
    assert not viol, "\n".join(map(str, viol))
    objs = _objs(lines)
    assert objs[-1]["format"] == kind
    return rc, objs


def test_as_dev_parts(handmade) -> None:
    rc, objs = _decode_as("dev-parts", handmade["parts"])
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert [p["part_type_name"] for p in parts] == [n for n, _ in PARTS]
    # offsets: where each header starts in the file
    offs, pos = [], 0
    for _, b in PARTS:
        offs.append(pos)
        pos += len(b)
    assert [p["offset"] for p in parts] == offs
    assert [p["index"] for p in parts] == list(range(len(PARTS)))
    assert all(p["device"] is None and p["record"] is None and p["admin_tag"] is None for p in parts)
    f = parts[0]
    assert f["flags"] == 1 and f["optional"] is True and f["selector"] == {} and f["length"] == 8
    assert f["value"]["bits"] == [5, 22, 32]
    assert {"VIRTIO_NET_F_MAC", "VIRTIO_NET_F_MQ", "VIRTIO_F_VERSION_1"} <= set(f["value"]["names"])
    assert parts[2]["selector"]["offset"] == 18
    assert (parts[2]["value"]["field"], parts[2]["value"]["value"]) == ("num_queues", 2)
    assert parts[3]["value"]["value"] == 15
    assert set(parts[3]["value"]["names"]) == {"ACKNOWLEDGE", "DRIVER", "DRIVER_OK", "FEATURES_OK"}
    vq1 = parts[5]
    assert vq1["selector"]["vq_index"] == 1
    assert {k: vq1["value"][k] for k in ("queue_size", "vector", "enabled", "queue_desc", "queue_driver",
                                          "queue_device")} == dict(
        queue_size=256, vector=2, enabled=1, queue_desc=0x4000, queue_driver=0x5000, queue_device=0x6000)
    assert parts[7]["value"]["queue_notify_off"] == 1 and parts[7]["value"]["queue_notif_config_data"] == 1
    rx, mac, pairs, rss = parts[8:12]
    assert (rx["selector"]["class"], rx["selector"]["command"]) == (0, 0)
    assert rx["selector"]["command_name"] == "RX_PROMISC" and rx["value"]["on"] is True
    assert mac["selector"]["command_name"] == "MAC_ADDR_SET" and mac["value"]["mac"] == "52:54:00:12:34:56"
    assert pairs["value"]["virtqueue_pairs"] == 1
    assert rss["selector"]["command_name"] == "MQ_RSS_CONFIG"
    assert {k: rss["value"][k] for k in ("hash_types", "indirection_table", "unclassified_queue",
                                         "max_tx_vq")} == dict(hash_types=0x3F, indirection_table=[0, 1],
                                                               unclassified_queue=0, max_tx_vq=1)
    assert rss["value"]["hash_key"].lower() == "deadbeef"
    unk = parts[12]
    assert unk["part_type"] == 0x150 and unk["part_type_name"] is None
    assert unk["selector"] == {"raw": "0102030405060708"} and unk["value"] == {"raw": "aabb"}
    # the unknown type is reported with its offset (json-lines.md: "{raw: hex} plus a finding")
    assert any(o["kind"] == "finding" and o["offset"] == offs[12] for o in objs)


def test_as_vfio_stream(handmade) -> None:
    rc, objs = _decode_as("vfio-stream", handmade["vfio"])
    recs = [o for o in objs if o["kind"] == "vfio_record"]
    n = len(PARTS) - 1
    size0 = len(KNOWN_PARTS)
    assert [(r["index"], r["offset"], r["record_size"], r["tag"], r["optional"]) for r in recs[:3]] == [
        (0, 0, size0, 0, False), (1, 16 + size0, size0 + 8, 0, False),
        (2, 32 + 2 * size0 + 8, 4, 7, True)]
    assert recs[0]["tag_name"] == "DEVICE_DATA" and recs[2]["tag_name"] is None
    assert recs[0]["parts"] == n and recs[0]["trailer_bytes"] == 0
    assert recs[1]["parts"] == n and recs[1]["trailer_bytes"] == 8
    assert all(r["device"] is None and r["phase"] is None and r["ts"] is None for r in recs)
    parts = [o for o in objs if o["kind"] == "dev_part" and o["record"] == 1]
    # dev_part offsets are positions in the concatenated device data
    assert parts[0]["offset"] == 16 + size0 + 16
    codes = [(o["severity"], o["offset"]) for o in objs if o["kind"] == "finding"]
    trunc_at = 48 + 2 * size0 + 8 + 4
    assert ("error", trunc_at) in codes  # reported at the truncated record's header
    assert rc == 1  # the truncated last record is an input error (cli.md)


def test_as_admin_request(handmade) -> None:
    rc, objs = _decode_as("admin-request", handmade["req"])
    assert rc == 0
    cmd = objs[0]
    assert cmd["kind"] == "admin_cmd"
    assert (cmd["opcode"], cmd["opcode_name"], cmd["group_type"], cmd["group_type_name"],
            cmd["group_member_id"]) == (15, "DEV_PARTS_GET", 1, "SRIOV", 1)
    assert cmd["tag"] is None and cmd["owner"] is None and cmd["ts"] is None
    assert cmd["data"]["type"] == 1 and cmd["data"]["type_name"] == "ALL"


def test_as_admin_completion(handmade) -> None:
    rc, objs = _decode_as("admin-completion", handmade["cpl"], "--opcode", "0xf", "--subtype", "1")
    res = objs[0]
    assert res["kind"] == "admin_result"
    assert (res["opcode"], res["opcode_name"], res["status"], res["status_name"], res["status_qualifier"],
            res["status_qualifier_name"]) == (15, "DEV_PARTS_GET", 0, "OK", 0, "OK")
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert [p["part_type_name"] for p in parts] == [n for n, _ in PARTS if n is not None]
    assert parts[0]["offset"] == 8  # after the 8-byte status header, in the completion buffer
    rc, objs = _decode_as("admin-completion", handmade["einval"], "--opcode", "17")
    res = objs[0]
    assert (res["opcode_name"], res["status"], res["status_name"], res["status_qualifier"],
            res["status_qualifier_name"]) == ("DEV_MODE_SET", 22, "EINVAL", 3, "INVALID_FIELD")


def test_admin_completion_without_opcode_is_a_usage_error(handmade) -> None:
    rc, lines, err = cli("decode", "--json", "--as", "admin-completion", str(handmade["cpl"]))
    assert rc == 2 and not lines and "--opcode" in err


# --------------------------------------------------------------------------------------
# Capture auto-detection by content (cli.md table), --as overrides, unknown input

def _pcap_header(magic: bytes) -> bytes:
    # pcap file header: magic, version 2.4, thiszone, sigfigs, snaplen, linktype 1 (Ethernet)
    bo = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    return magic + struct.pack(bo + "HHiIII", 2, 4, 0, 0, 65535, 1)


def _pcapng() -> bytes:
    # Section Header Block (28 bytes, no options) + Interface Description Block (Ethernet)
    shb = struct.pack("<II", 0x0A0D0D0A, 28) + struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 65535) + struct.pack("<I", 20)
    return shb + idb


DETECTION = {
    "pcap-us-le": (_pcap_header(b"\xd4\xc3\xb2\xa1"), "pcap"),
    "pcap-us-be": (_pcap_header(b"\xa1\xb2\xc3\xd4"), "pcap"),
    "pcap-ns-le": (_pcap_header(b"\x4d\x3c\xb2\xa1"), "pcap"),
    "pcap-ns-be": (_pcap_header(b"\xa1\xb2\x3c\x4d"), "pcap"),
    "pcapng": (_pcapng(), "pcapng"),
    # QEVM, version 3, then QEMU_VM_EOF (0x01)
    "qemu-stream": (b"QEVM" + struct.pack(">I", 3) + b"\x01", "qemu-stream"),
    "ftrace-text": (b"# tracer: nop\n#\n"
                    b"      qemu-1234    [001] .....  100.000001: tracing_mark_write: migrate_set_state new state active\n",
                    "ftrace-text"),
    "trace-cmd-report": (b"cpus=2\n"
                         b"            qemu-1234  [001]   100.000001: print:                tracing_mark_write: x\n",
                         "trace-cmd-report"),
    "qemu-log": (b"1234@1700000000.000001:migrate_set_state new state active\n"
                 b"1234@1700000000.000002:migrate_set_state new state completed\n", "qemu-log"),
}


@pytest.mark.parametrize("name", sorted(DETECTION))
def test_detection_by_content(tmp_path, name) -> None:
    data, kind = DETECTION[name]
    p = tmp_path / "capture.bin"  # the name says nothing: detection is by content
    p.write_bytes(data)
    rc, lines, err = cli("decode", "--json", str(p))
    assert rc in (0, 1), err
    assert not _unexpected(check_stream(list(lines)))
    assert json.loads(lines[-1])["format"] == kind


@pytest.mark.parametrize("rel,kind", [
    ("traces/real/ftrace/markers-v7-none.dat", "trace-dat"),
    ("traces/real/ftrace-text/trace.txt", "ftrace-text"),
    ("traces/real/ftrace-text/report.txt", "trace-cmd-report"),
    ("traces/real/qemu-tcp-returnpath.src.log", "qemu-log"),
    ("traces/real/qemu-file.mig", "qemu-stream"),
    ("traces/real/loopback-ipv6.pcapng", "pcapng"),
    ("traces/real/loopback-ipv4.pcap", "pcap"),
])
def test_detection_of_real_captures(rel, kind) -> None:
    if not (ROOT / rel).is_file():
        pytest.skip(f"{rel} not bundled")
    rc, lines, err = cli("decode", "--json", rel)
    assert json.loads(lines[-1])["format"] == kind


@pytest.mark.parametrize("rel,as_kind", [
    ("traces/real/ftrace-text/report.txt", "trace-cmd-report"),
    ("traces/real/qemu-tcp-returnpath.src.log", "qemu-log"),
    ("traces/real/ftrace/markers-v6.dat", "trace-dat"),
    ("traces/real/qemu-file.mig", "qemu-stream"),
    ("traces/real/loopback-ipv4.pcap", "pcap"),
])
def test_as_names_the_kind_explicitly(rel, as_kind) -> None:
    rc, lines, err = cli("decode", "--json", "--as", as_kind, rel)
    assert rc in (0, 1), err
    assert not _unexpected(check_stream(list(lines)))
    assert json.loads(lines[-1])["format"] == as_kind


def test_as_overrides_detection(tmp_path) -> None:
    # a dev-parts buffer whose first bytes happen to be the pcap magic d4 c3 b2 a1:
    # part_type 0xc3d4, flags 0xb2, reserved 0xa1 -- detection says pcap, --as says parts
    blob = bytes.fromhex("d4c3b2a1") + bytes(8) + struct.pack("<I", 2) + b"\x00\x01"
    p = tmp_path / "parts.bin"
    p.write_bytes(blob)
    assert json.loads(cli("decode", "--json", str(p))[1][-1])["format"] == "pcap"
    rc, objs = _decode_as("dev-parts", p)
    part = next(o for o in objs if o["kind"] == "dev_part")
    assert part["part_type"] == 0xC3D4 and part["flags"] == 0xB2 and part["length"] == 2
    # the same ftrace text decoded as a QEMU log: --as wins, format follows it
    rc, lines, _ = cli("decode", "--json", "--as", "ftrace-text", "traces/real/ftrace-text/report.txt")
    assert json.loads(lines[-1])["format"] == "ftrace-text"


def test_unknown_format_is_a_usage_error_listing_what_was_tried(tmp_path) -> None:
    p = tmp_path / "noise.bin"
    p.write_bytes(bytes(range(256)) * 4)
    rc, lines, err = cli("decode", "--json", str(p))
    assert rc == 2
    assert not lines  # nothing on stdout
    for tried in ("pcap", "pcapng", "QEVM", "trace.dat", "ftrace", "trace-cmd report", "QEMU log", "--as"):
        assert tried in err, f"{tried!r} not named in: {err}"


# --------------------------------------------------------------------------------------
# Exit codes (cli.md): 0 / 1 / 2, and 3 for compare

def test_exit_0_on_clean_capture() -> None:
    rc, lines, err = cli("decode", "--json", "traces/real/qemu-file.mig")
    assert rc == 0 and json.loads(lines[-1])["errors"] == 0


def test_exit_1_on_truncated_capture_with_findings_and_partial_decode(tmp_path) -> None:
    src = (ROOT / "traces/real/qemu-tcp-returnpath.pcap").read_bytes()
    p = tmp_path / "cut.pcap"
    p.write_bytes(src[: len(src) // 2 + 7])  # cut mid-record
    rc, lines, err = cli("decode", "--json", str(p))
    assert rc == 1, err
    assert not _unexpected(check_stream(list(lines)))
    objs = _objs(lines)
    errors = [o for o in objs if o["kind"] == "finding" and o["severity"] == "error"]
    assert errors and any(INT(o["offset"]) for o in errors)
    # everything before the cut is still decoded
    assert sum(o["kind"] == "section" for o in objs) >= 3 and sum(o["kind"] == "ram" for o in objs) >= 3
    # the flow's gaps and the tcp_gap findings name the same missing byte ranges
    flow = next(o for o in objs if o["kind"] == "flow")
    gaps = [(g["direction"], g["start"], g["end"]) for g in flow["gaps"]]
    tcp_gaps = [(o["direction"], o["start"], o["end"]) for o in objs
                if o["kind"] == "finding" and o["code"] == "tcp_gap"]
    assert gaps and gaps == tcp_gaps
    assert all(start < end for _, start, end in gaps) and gaps[0][1] == flow["c2s_bytes"]
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ("decode", "traces/does-not-exist.pcap"),
    ("decode", "--as", "nonsense", "traces/real/qemu-file.mig"),
    ("decode",),
    ("flows", "traces/real/qemu-file.mig"),      # not a pcap
    ("nosuchcommand",),
    (),
])
def test_exit_2_on_usage_errors(argv) -> None:
    rc, lines, err = cli(*argv)
    assert rc == 2, (rc, err)
    assert not any(x.startswith("{") for x in lines)
    assert "Traceback" not in err


def test_exit_2_on_unreadable_file(tmp_path) -> None:
    import os

    p = tmp_path / "secret.pcap"
    p.write_bytes(_pcap_header(b"\xd4\xc3\xb2\xa1"))
    p.chmod(0)
    if os.geteuid() == 0:
        # root reads anything; a directory is the unreadable file we can make
        p = tmp_path / "adir"
        p.mkdir()
    rc, lines, err = cli("decode", "--json", str(p))
    assert rc == 2 and not lines and "Traceback" not in err


# --------------------------------------------------------------------------------------
# --help of every subcommand has an example; progress/log output never on stdout

def _subcommands() -> list[str]:
    from analysis.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return list(sub.choices)


SUBCOMMANDS = _subcommands()


def test_first_wave_subcommands_exist() -> None:
    assert {"decode", "flows", "extract"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help_has_an_example(cmd: str) -> None:
    rc, lines, err = cli(cmd, "--help")
    assert rc == 0, err
    text = "\n".join(lines)
    assert "example" in text.lower()
    assert any(ln.strip().startswith(f"migtrace {cmd} ") for ln in lines), text


#: --help examples naming bundled paths that do not exist (owners' files; reported to the lead)
BROKEN_EXAMPLES: dict[str, str] = {}


@pytest.mark.parametrize("cmd", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=BROKEN_EXAMPLES[c])) if c in BROKEN_EXAMPLES
    else c for c in SUBCOMMANDS])
def test_help_examples_name_bundled_files_that_exist(cmd: str) -> None:
    """An example that names a bundled ``traces/…`` path must work as printed."""
    _, lines, _ = cli(cmd, "--help")
    missing = []
    for ln in lines:
        if not ln.strip().startswith("migtrace "):
            continue
        for word in ln.split():
            if word.startswith("traces/") and not (ROOT / word).exists():
                missing.append(word)
    assert not missing, f"examples of `migtrace {cmd}` name missing bundled paths: {missing}"


@pytest.mark.parametrize("rel", ["traces/real/qemu-tcp-multifd.pcap", "traces/real/ftrace/markers-v7-zstd.dat",
                                 "traces/real/qemu-tcp-returnpath.src.log"])
def test_nothing_but_json_on_stdout_and_no_log_without_progress(rel) -> None:
    rc, lines, err = cli("decode", "--json", rel)
    assert rc == 0
    for ln in lines:
        assert isinstance(json.loads(ln), dict)
    # stderr is not a terminal and --progress was not given: no progress, no log lines
    assert err == "", err


@pytest.mark.parametrize("argv", [
    ("decode", "--json", "--progress", "traces/real/qemu-tcp-multifd.pcap"),
    ("flows", "--json", "--progress", "traces/real/qemu-tcp-multifd.pcap"),
    ("summary", "--json", "--progress", "traces/real/qemu-tcp-returnpath.pcap",
     "traces/real/qemu-tcp-returnpath.src.log"),
])
def test_progress_goes_to_stderr_only(argv) -> None:
    rc, lines, err = cli(*argv)
    assert rc in (0, 1), err
    for ln in lines:
        assert isinstance(json.loads(ln), dict), ln


# --------------------------------------------------------------------------------------
# migtrace flows --json

#: migration pcaps: real, generated, and the simulated source streams (admin captures have no TCP)
FLOW_CAPTURES = [p for p in CAPTURES if p.suffix in (".pcap", ".pcapng") and not p.name.startswith("admin")]


@pytest.mark.parametrize("capture", FLOW_CAPTURES, ids=_rel)
def test_flows_json_conforms(capture: Path) -> None:
    rc, lines, err = cli("flows", "--json", _rel(capture))
    assert rc in (0, 1), err
    viol = _unexpected(check_stream(list(lines)))
    assert not viol, "\n".join(map(str, viol[:20]))
    objs = _objs(lines)
    assert {o["kind"] for o in objs} <= {"flow", "finding", "summary"}
    # the same flow objects as `decode` emits for the capture
    _, dlines, _ = cli("decode", "--json", _rel(capture))
    dflows = [o for o in _objs(dlines) if o["kind"] == "flow"]
    flows = [o for o in objs if o["kind"] == "flow"]
    if dflows:  # admin captures have no TCP flows in decode
        assert flows == dflows


def test_flows_roles_on_real_multifd_capture() -> None:
    _, lines, _ = cli("flows", "--json", "traces/real/qemu-tcp-multifd.pcap")
    flows = [o for o in _objs(lines) if o["kind"] == "flow"]
    assert [f["flow"] for f in flows] == list(range(len(flows)))
    assert sorted(f["role"] for f in flows) == ["main", "multifd", "multifd"]
    assert all(f["first_ts"] <= f["last_ts"] for f in flows)


# --------------------------------------------------------------------------------------
# migtrace summary --json: migration_summary, then device_summary per device (+ findings)

MIGRATION_METRICS = ("total_ms", "setup_ms", "precopy_iterations", "precopy_iterations_method", "dirty_syncs",
                     "qemu_iterate_sections", "ram_zero_pages", "ram_normal_pages",
                     "bytes_main", "bytes_multifd", "downtime_qemu_ms", "downtime_wire_ms",
                     "downtime_model_ms", "downtime_breakdown_ms")
DEVICE_METRICS = ("precopy_chunks", "precopy_snapshots", "stopcopy_records", "stopcopy_bytes",
                  "record_bytes_min", "record_bytes_median", "record_bytes_p95", "record_bytes_max",
                  "parts_per_record_median", "bytes_by_part_type", "admin_latency_ms")


def _sim_runs() -> list[Path]:
    base = TRACES / "sim"
    return sorted(p.parent for p in base.rglob("run.json"))[:1] + \
        sorted(p.parent for p in base.rglob("run.json") if p.parent.name in ("qemu10", "two-vfs", "trailer"))


SUMMARY_INPUTS = [
    ("traces/real/qemu-tcp-returnpath.pcap", "traces/real/qemu-tcp-returnpath.src.log",
     "traces/real/qemu-tcp-returnpath.dst.log"),
    ("traces/real/qemu-tcp-multifd.pcap",),
    *[(_rel(p),) for p in _sim_runs()],
]


def check_summary_output(lines: list[str]) -> list[tuple[str, str, str]]:
    viol = check_stream(lines, summary_kind=None)
    objs = [strict_loads(x) for x in lines]
    kinds = [o["kind"] for o in objs]
    if not kinds or kinds[0] != "migration_summary":
        viol.append(("migration_summary", "-", f"output must start with migration_summary: {kinds[:3]}"))
    if set(kinds) - {"migration_summary", "device_summary", "finding"}:
        viol.append(("?", "kind", f"unexpected kinds {set(kinds) - {'migration_summary', 'device_summary', 'finding'}}"))
    # "a metric that the captures cannot support is null with the reason in a finding"
    findings = [o for o in objs if o["kind"] == "finding"]
    for o in objs:
        metrics = {"migration_summary": MIGRATION_METRICS, "device_summary": DEVICE_METRICS}.get(o["kind"], ())
        for m in metrics:
            if o.get(m) is None and not any(
                    f.get("metric") == m or m in f.get("message", "") for f in findings):
                viol.append((o["kind"], m, "null without a finding giving the reason"))
    return viol


@pytest.mark.parametrize("inputs", SUMMARY_INPUTS, ids=lambda t: t[0])
def test_summary_json_conforms(inputs) -> None:
    for p in inputs:
        if not (ROOT / p).exists():
            pytest.skip(f"{p} not bundled")
    rc, lines, err = cli("summary", "--json", *inputs)
    assert rc in (0, 1), err
    viol = _unexpected(check_summary_output(list(lines)))
    assert not viol, "\n".join(map(str, viol[:30]))
    objs = _objs(lines)
    ms = objs[0]
    assert ms["captures"] and all(isinstance(c, str) for c in ms["captures"])


def test_summary_of_real_returnpath_capture_values() -> None:
    rc, lines, _ = cli("summary", "--json", *SUMMARY_INPUTS[0])
    ms = _objs(lines)[0]
    assert ms["qemu_profile"] == "7.2"
    assert ms["bytes_multifd"] == 0 and INT(ms["bytes_main"]) and ms["bytes_main"] > 600_000
    assert set(ms["downtime_breakdown_ms"]) >= {"ram", "vfio", "config", "dst_load"}


# --------------------------------------------------------------------------------------
# migtrace compare --json: comparison per (metric, candidate), then compare_summary

def _compare_table(tmp_path: Path, shift: float) -> Path:
    import pandas as pd

    rows = []
    for fw, scale in (("1.0", 1.0), ("1.1", 1.0 + shift)):
        for i in range(8):
            rows.append({"run_id": f"{fw}/{i}", "status": "ok", "firmware.version": fw,
                         "device": "0000:00:05.0/vfio", "kernel": "6.14.2",
                         # deterministic, no RNG: a small spread around 100 ms
                         "downtime_wire_ms": (100.0 + (i % 4) * 0.5) * scale,
                         "stopcopy_bytes": 70000 + 10 * i, "precopy_policy": "ratelimited"})
    path = tmp_path / f"table-{shift}.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("shift,code", [(0.3, 3), (0.0, 0)])
def test_compare_json_conforms_and_exit_code(tmp_path, shift, code) -> None:
    if "compare" not in SUBCOMMANDS:
        pytest.skip("migtrace compare has not landed")
    t = _compare_table(tmp_path, shift)
    proc = run_cli("compare", str(t), "--baseline", "1.0", "--json")
    assert proc.returncode == code, proc.stderr
    lines = proc.stdout.splitlines()
    viol = _unexpected(check_stream(lines, summary_kind="compare_summary"))
    assert not viol, "\n".join(map(str, viol[:30]))
    objs = [strict_loads(x) for x in lines]
    comps = [o for o in objs if o["kind"] == "comparison"]
    s = objs[-1]
    assert {o["kind"] for o in objs} <= {"comparison", "finding", "compare_summary"}
    assert s["baseline"] == "1.0" and s["candidates"] == ["1.1"] and s["runs"] == 16 and s["runs_failed"] == 0
    for verdict, field in (("regression", "regressions"), ("improvement", "improvements"),
                           ("inconclusive", "inconclusive")):
        assert s[field] == sum(c["verdict"] == verdict for c in comps)
    d = next(c for c in comps if c["metric"] == "downtime_wire_ms")
    assert (d["by"], d["baseline"], d["candidate"], d["n_baseline"], d["n_candidate"]) == (
        "firmware.version", "1.0", "1.1", 8, 8)
    assert d["worse_when"] == "higher"
    assert d["verdict"] == ("regression" if shift else "unchanged")


# --------------------------------------------------------------------------------------
# One strict xfail per known violation: XPASS (a failure) as soon as it is fixed, so the
# entry in KNOWN_VIOLATIONS gets removed and the per-capture checks cover it again.

def _violations_of(vid: str, lines: list[str], summary_kind: str | None = "summary") -> list:
    pred = KNOWN_VIOLATIONS[vid][0]
    return [v for v in check_stream(lines, summary_kind=summary_kind) if pred(v)]


# --------------------------------------------------------------------------------------
# Other --json modes: extract (flow + findings + summary), corpus (findings + corpus_summary)

def test_extract_json_conforms(tmp_path) -> None:
    out = tmp_path / "main.mig"
    rc, lines, err = cli("extract", "traces/real/qemu-tcp-returnpath.pcap", "--main", "-o", str(out), "--json")
    assert rc == 0, err
    assert not _unexpected(check_stream(list(lines)))
    objs = _objs(lines)
    assert [o["kind"] for o in objs] == ["flow", "summary"] and objs[0]["role"] == "main"
    assert out.stat().st_size == objs[0]["c2s_bytes"]
    # the extracted main channel decodes like the capture's (cli.md: raw QEMU stream)
    rc2, lines2, _ = cli("decode", "--json", str(out))
    assert json.loads(lines2[-1])["format"] == "qemu-stream"


def test_extract_gap_is_an_error_unless_filled(tmp_path) -> None:
    src = (ROOT / "traces/real/qemu-tcp-returnpath.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(src[: len(src) // 2 + 7])
    rc, lines, err = cli("extract", str(cut), "--main", "-o", str(tmp_path / "a.mig"), "--json")
    assert rc == 1 and not _unexpected(check_stream(list(lines)))
    rc, lines, err = cli("extract", str(cut), "--main", "-o", str(tmp_path / "b.mig"), "--json",
                         "--fill-gaps", "zero")
    assert rc in (0, 1) and not _unexpected(check_stream(list(lines)))


def test_corpus_json_conforms(tmp_path) -> None:
    if "corpus" not in SUBCOMMANDS:
        pytest.skip("migtrace corpus has not landed")
    runs = _sim_runs()
    if not runs:
        pytest.skip("no simulated run bundled")
    rc, lines, err = cli("corpus", _rel(runs[0]), "-o", str(tmp_path / "t.parquet"), "--no-cache", "--json")
    assert rc in (0, 1), err
    objs = [strict_loads(x) for x in lines]
    assert objs and objs[-1]["kind"] == "corpus_summary"
    assert [v for o in objs[:-1] for v in check_object(o)] == []
    s = objs[-1]
    assert (s["runs"], s["decoded"], s["failed"]) == (1, 1, 0) and INT(s["rows"])


@pytest.mark.parametrize("doc", ["docs/cli.md", "docs/json-lines.md"])
def test_contract_docs_name_bundled_files_that_exist(doc) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    paths = set(re.findall(r"\btraces/[\w./-]+[\w/]", text))
    missing = sorted(p for p in paths if not (ROOT / p).exists() and "…" not in p and "{" not in p)
    assert not missing, missing


def test_cli_doc_lists_every_subcommand_and_every_as_kind() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for cmd in SUBCOMMANDS:
        assert f"### `migtrace {cmd}" in text, cmd
    for kind in DECODE_FORMATS:
        assert f"`{kind}`" in text, kind


# --------------------------------------------------------------------------------------
# Bad input through every --as kind: findings and exit 0/1, never a traceback or an
# internal_error, and the output still follows the contract

def _noise() -> bytes:
    # deterministic bytes without any magic: a multiplicative sequence
    return bytes((i * 197 + 89) % 251 for i in range(3000))


BAD_INPUTS = {
    "noise": _noise,
    "cut-trace-dat": lambda: (ROOT / "traces/real/ftrace/markers-v7-zstd.dat").read_bytes()[:5000],
}


@pytest.mark.parametrize("as_kind", DECODE_FORMATS)
@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
def test_bad_input_as_every_kind_gives_findings_not_tracebacks(tmp_path, bad, as_kind) -> None:
    p = tmp_path / "in.bin"
    p.write_bytes(BAD_INPUTS[bad]())
    extra = ("--opcode", "15", "--subtype", "1") if as_kind == "admin-completion" else ()
    rc, lines, err = cli("decode", "--json", "--as", as_kind, *extra, str(p))
    assert rc in (0, 1), err
    assert "Traceback" not in err
    assert not _unexpected(check_stream(list(lines)))
    objs = _objs(lines)
    assert not [o for o in objs if o.get("code") == "internal_error"], objs[-2:]
    assert rc == (1 if objs[-1]["errors"] else 0)


@pytest.mark.parametrize("rel", ["traces/real/qemu-tcp-returnpath.pcap", "traces/real/qemu-file.mig",
                                 "traces/real/ftrace/markers-v6.dat", "traces/real/ftrace-text/report.txt",
                                 "traces/real/qemu-tcp-multifd.src.log"])
def test_human_output_one_line_per_unit(rel) -> None:
    rc, lines, err = cli("decode", rel)
    assert rc == 0, err
    _, jlines, _ = cli("decode", "--json", rel)
    # the same units, one human line each, ending with the summary
    assert len(lines) == len(jlines)
    assert lines[-1].startswith("summary")
    assert not any(ln.startswith("{") for ln in lines)


# --------------------------------------------------------------------------------------
# Offsets are seekable (contract README: "so that a user can seek to them"): the byte at
# each unit's offset in its byte stream is the unit's type byte (qemu-migration-stream.md
# §4: EOF 0x00, START 0x01, PART 0x02, END 0x03, FULL 0x04, VMDESCRIPTION 0x06,
# CONFIGURATION 0x07, COMMAND 0x08; the file header starts with "QEVM").

_TYPE_BYTE = {("section", "START"): 1, ("section", "PART"): 2, ("section", "END"): 3, ("section", "FULL"): 4,
              ("eof", None): 0, ("vmdesc", None): 6, ("configuration", None): 7, ("command", None): 8}


def _offset_mismatches(objs: list[dict], stream: bytes, flow: int | None) -> list[str]:
    bad = []
    for o in objs:
        if o.get("flow") != flow or o.get("offset") is None:
            continue
        key = (o["kind"], o.get("type") if o["kind"] == "section" else None)
        if key in _TYPE_BYTE:
            off = o["offset"]
            if off >= len(stream) or stream[off] != _TYPE_BYTE[key]:
                bad.append(f"{key} at {off}: byte {stream[off:off + 1].hex() or 'EOF'}")
        if o["kind"] == "header" and stream[o["offset"]:o["offset"] + 4] != b"QEVM":
            bad.append(f"header at {o['offset']}")
    return bad


@pytest.mark.parametrize("rel", ["traces/real/qemu-file.mig", "traces/generated/qemu-9x-vfio.mig"])
def test_stream_file_offsets_point_at_the_units(rel) -> None:
    if not (ROOT / rel).exists():
        pytest.skip(f"{rel} not bundled")
    _, lines, _ = cli("decode", "--json", rel)
    objs = _objs(lines)
    assert sum(o["kind"] == "section" for o in objs) > 5
    assert _offset_mismatches(objs, (ROOT / rel).read_bytes(), None) == []


@pytest.mark.parametrize("rel", ["traces/real/qemu-tcp-returnpath.pcap", "traces/generated/qemu-10x-multifd.pcapng"])
def test_capture_offsets_point_into_the_reassembled_main_channel(tmp_path, rel) -> None:
    if not (ROOT / rel).exists():
        pytest.skip(f"{rel} not bundled")
    main = tmp_path / "main.mig"
    rc, _, err = cli("extract", rel, "--main", "-o", str(main))
    assert rc == 0, err
    _, lines, _ = cli("decode", "--json", rel)
    objs = _objs(lines)
    flow = next(o["flow"] for o in objs if o["kind"] == "flow" and o["role"] == "main")
    assert _offset_mismatches(objs, main.read_bytes(), flow) == []


def test_vfio_stream_offsets_point_at_record_headers(handmade) -> None:
    _, objs = _decode_as("vfio-stream", handmade["vfio"])
    data = handmade["vfio"].read_bytes()
    for r in (o for o in objs if o["kind"] == "vfio_record"):
        assert struct.unpack_from("<QII", data, r["offset"]) == (r["record_size"], r["flags"], r["tag"])
    for p in (o for o in objs if o["kind"] == "dev_part"):
        assert struct.unpack_from("<HB", data, p["offset"]) == (p["part_type"], p["flags"])


# --------------------------------------------------------------------------------------
# run-manifest.md: "a malformed run.json is an error naming the file and the field"

@pytest.mark.parametrize("manifest,field", [
    ({"schema": 1, "kind": "real", "captures": [{"path": "c.pcap", "role": "source-stream"}]}, "run_id"),
    ({"schema": 1, "run_id": "x", "kind": "bogus", "captures": [{"path": "c.pcap", "role": "source-stream"}]},
     "kind"),
    ({"schema": 1, "run_id": "x", "kind": "real", "captures": [{"path": "c.pcap", "role": "nonsense"}]},
     "role"),
])
def test_malformed_run_json_is_a_usage_error_naming_file_and_field(tmp_path, manifest, field) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "c.pcap").write_bytes((ROOT / "traces/real/qemu-tcp-returnpath.pcap").read_bytes())
    (run / "run.json").write_text(json.dumps(manifest))
    rc, lines, err = cli("summary", "--json", str(run))
    assert rc == 2 and not lines
    assert "run.json" in err and field in err and "Traceback" not in err


# cli.md: log messages go to stderr "only when stderr is a terminal or --progress is given"
@pytest.mark.parametrize("argv", [
    ("summary", "--json", "traces/real/qemu-tcp-returnpath.pcap", "traces/real/qemu-tcp-returnpath.src.log"),
    ("flows", "traces/real/qemu-tcp-multifd.pcap"),
    ("extract", "traces/real/qemu-tcp-returnpath.pcap", "--main", "-o", "{tmp}/m.mig"),
    ("plot", "timeline", "traces/real/qemu-tcp-returnpath.pcap", "-o", "{tmp}/t.svg"),
    ("compare", "{table}", "--baseline", "1.0", "--json", "-o", "{tmp}/r.html"),
], ids=["summary", "flows", "extract", "plot", "compare"])
def test_no_log_on_stderr_without_progress(tmp_path, argv) -> None:
    table = _compare_table(tmp_path, 0.0)
    argv = tuple(a.format(tmp=tmp_path, table=table) for a in argv)
    proc = run_cli(*argv)
    assert proc.returncode in (0, 1, 3), proc.stderr
    assert proc.stderr == ""


# --------------------------------------------------------------------------------------
# admin-capture.md through the CLI: a pcap of LINKTYPE_USER records written by hand

def _admin_record(direction: int, tag: int, owner: int, opcode: int, subtype: int, payload: bytes) -> bytes:
    # version 1, direction, reserved, tag, owner, opcode, subtype (all little-endian)
    return struct.pack("<BBHIIHH", 1, direction, 0, tag, owner, opcode, subtype) + payload


def _pcap(linktype: int, packets: list[tuple[int, int, bytes]]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for sec, usec, data in packets:
        out += struct.pack("<IIII", sec, usec, len(data), len(data)) + data
    return out


@pytest.mark.parametrize("linktype,extra", [(147, ()), (150, ("--admin-linktype", "150"))])
def test_admin_capture_pcap_decodes_paired_records(tmp_path, linktype, extra) -> None:
    owner = 0x3B11  # 0000:3b:02.1 = bus 0x3b << 8 | device 2 << 3 | function 1
    req = _admin_record(0, 9, owner, 0xF, 1, ADMIN_REQUEST)
    cpl = _admin_record(1, 9, owner, 0xF, 1, ADMIN_COMPLETION_OK)
    p = tmp_path / "admin.pcap"
    p.write_bytes(_pcap(linktype, [(1700000000, 250000, req), (1700000000, 250750, cpl)]))
    rc, lines, err = cli("decode", "--json", *extra, str(p))
    assert rc == 0, err
    assert not _unexpected(check_stream(list(lines)))
    objs = _objs(lines)
    assert objs[-1]["format"] == "pcap"
    cmd = next(o for o in objs if o["kind"] == "admin_cmd")
    res = next(o for o in objs if o["kind"] == "admin_result")
    assert (cmd["tag"], cmd["owner"], cmd["opcode_name"]) == (9, "0000:3b:02.1", "DEV_PARTS_GET")
    assert (res["tag"], res["owner"], res["status_name"]) == (9, "0000:3b:02.1", "OK")
    # float seconds at epoch scale carry ~0.24 us of rounding; the ns fields are exact
    assert cmd["ts"] == pytest.approx(1700000000.25, abs=1e-6) and cmd["ts_ns"] == 1700000000250000000
    assert res["ts"] == pytest.approx(1700000000.25075, abs=1e-6) and res["latency_ns"] == 750000
    parts = [o for o in objs if o["kind"] == "dev_part"]
    assert len(parts) == len(PARTS) - 1 and all(x["admin_tag"] == 9 for x in parts)
    assert parts[0]["offset"] == 8  # in the completion's device-writable buffer


def test_values_without_a_name_are_null_with_a_finding(tmp_path) -> None:
    """json-lines.md: "A value with no name is reported with name null (and usually a finding)"."""
    req = tmp_path / "req.bin"
    # opcode 0x0050 (reserved), group_type 7 (reserved), member 0, no data
    req.write_bytes(struct.pack("<HH12sQ", 0x50, 7, bytes(12), 0))
    rc, objs = _decode_as("admin-request", req)
    cmd = objs[0]
    assert (cmd["opcode"], cmd["opcode_name"], cmd["group_type"], cmd["group_type_name"]) == (0x50, None, 7, None)
    assert [o for o in objs if o["kind"] == "finding"]
    cpl = tmp_path / "cpl.bin"
    # status 99 (undefined), qualifier 0x20 (reserved)
    cpl.write_bytes(struct.pack("<HH4s", 99, 0x20, bytes(4)))
    rc, objs = _decode_as("admin-completion", cpl, "--opcode", "17")
    res = objs[0]
    assert (res["status"], res["status_name"], res["status_qualifier"], res["status_qualifier_name"]) == (
        99, None, 0x20, None)
    assert len([o for o in objs if o["kind"] == "finding"]) >= 1


def test_compare_help_example_groups_exist_in_the_bundled_corpus() -> None:
    if "compare" not in SUBCOMMANDS:
        pytest.skip("migtrace compare has not landed")
    manifests = [json.loads(p.read_text()) for p in (TRACES / "sim").rglob("run.json")]

    def values(field: str) -> set:
        out = set()
        for m in manifests:
            v: object = m
            for k in field.split("."):
                v = v.get(k) if isinstance(v, dict) else None
            out.add(v)
        return out
    _, lines, _ = cli("compare", "--help")
    checked = 0
    for ln in lines:
        words = ln.split()
        if words[:2] != ["migtrace", "compare"] or not words[2].startswith("traces/sim"):
            continue
        checked += 1
        versions = values(words[words.index("--by") + 1] if "--by" in words else "firmware.version")
        for opt in ("--baseline", "--candidate"):
            if opt in words:
                assert words[words.index(opt) + 1] in versions, (opt, words[words.index(opt) + 1], versions)
    assert checked >= 1, "no compare --help example runs on the bundled corpus"


def test_example_lines_in_the_json_lines_doc_conform() -> None:
    text = (ROOT / "docs" / "json-lines.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.S)
    assert len(blocks) >= 20
    kinds = set()
    for b in blocks:
        try:
            objs = [strict_loads(b)]
        except json.JSONDecodeError:  # a block of JSON Lines: one object per line
            objs = [strict_loads(line) for line in b.splitlines() if line.strip()]
        for obj in objs:
            kinds.add(obj["kind"])
            assert _unexpected(check_object(obj)) == [], b[:200]
    assert set(SCHEMA) <= kinds  # an example for every contract kind


@pytest.mark.timeout(1800)  # decodes every bundled capture when run on its own
def test_every_finding_code_emitted_by_the_bundled_captures_is_documented() -> None:
    from tests.test_contract_findings import documented_codes

    emitted = set()
    for p in CAPTURES:
        _, lines, _ = cli("decode", "--json", _rel(p))
        emitted |= {o["code"] for o in _objs(lines) if o["kind"] == "finding"}
    assert emitted, "the bundled captures emit no findings at all?"
    assert sorted(emitted - set(documented_codes())) == []


def test_console_script_is_installed_and_same_as_module() -> None:
    import shutil
    import subprocess

    exe = shutil.which("migtrace")
    if exe is None:
        pytest.skip("the package is not installed (pip install -e .): no migtrace on PATH")
    out = subprocess.run([exe, "decode", "--json", "traces/real/qemu-file.mig"], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0 and tuple(out.stdout.splitlines()) == cli("decode", "--json",
                                                                        "traces/real/qemu-file.mig")[1]
