# SPDX-License-Identifier: GPL-2.0-only
"""One fuzz target per decoder family: seeds from ``traces/`` and a function that decodes one input.

A target's ``run(data, path)`` drives the family's decoder over the whole input
(every unit pulled, DataFrames built where the family has one, every unit
JSON-encoded by the CLI's own encoder with the strict UTF-8 check) and returns
``(units, findings)``.  Exceptions of the types in ``documented`` are the
family's documented errors (:class:`dissect.common.findings.DecodeError`, a
manifest's :class:`analysis.manifest.ManifestError`); any other exception is a
crash.  The library is called directly, never the CLI: the CLI turns decoder
exceptions into an ``internal_error`` finding, which would hide them.
"""
from __future__ import annotations

import argparse
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
TRACES = ROOT / "traces"


@dataclass
class Target:
    name: str
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes, Path], tuple[int, int]]
    documented: tuple[type[BaseException], ...] = ()
    #: bytes that mean something to this family (spliced in by the mutator)
    dictionary: list[bytes] = field(default_factory=list)


def _files(*globs: str, limit: int = 1 << 20) -> list[bytes]:
    out = []
    for g in globs:
        for p in sorted(TRACES.glob(g)):
            if p.is_file() and p.stat().st_size <= limit:
                out.append(p.read_bytes())
    return out


def _args(**kw: Any) -> argparse.Namespace:
    base = dict(trace_events=None, as_kind=None, opcode=None, subtype=0, admin_linktype=None, debug=False)
    base.update(kw)
    return argparse.Namespace(**base)


def _encoder():
    from analysis.cli.output import UnitWriter

    class _Null:
        def write(self, s: str) -> None:
            s.encode("utf-8")  # strict: a lone surrogate raises here (a crash: invalid JSON text)

    return UnitWriter(_Null(), as_json=True)


def _units(objs: Iterable[dict[str, Any]]) -> tuple[int, int]:
    w = _encoder()
    n = f = 0
    for o in objs:
        w.write(o)
        n += 1
        f += o.get("kind") == "finding"
    return n, f


def _emit(kind: str, **kw: Any) -> Callable[[bytes, Path], tuple[int, int]]:
    def run(data: bytes, path: Path) -> tuple[int, int]:
        from analysis.emit import emitter_for

        path.write_bytes(data)
        return _units(emitter_for(kind)(path, _args(**kw)))
    return run


# -- capture files ------------------------------------------------------------

def _reader(data: bytes, path: Path) -> tuple[int, int]:
    from dissect.capture.reader import CaptureReader

    path.write_bytes(data)
    r = CaptureReader(path)
    n = 0
    for p in r.packets():
        n += 1
        len(p.data)
    return n, len(r.findings)


def _late_seeds() -> list[bytes]:
    """Real pcaps as a capture started after migrate would hold them: the first packets (SYNs,
    stream header, multifd init packets) dropped, the first 300 kB kept: the mid-stream pick-up
    (dissect/qemu/midstream.py) is what they reach."""
    out = []
    for name, drop in (("real/qemu10/multifd-rp.pcap", 40), ("real/qemu10/multipass.pcap", 60)):
        p = TRACES / name
        if not p.is_file():
            continue
        b = p.read_bytes()
        pos, n = 24, 0
        while n < drop and pos + 16 <= len(b):
            pos += 16 + struct.unpack_from("<I", b, pos + 8)[0]  # pcap record: incl_len at +8
            n += 1
        out.append((b[:24] + b[pos:])[:300_000])
    # the generated VFIO migration from its 31st packet: both devices' sections were named before,
    # so their data is held, named at switchover and split from the first whole record
    p = TRACES / "generated/qemu-9x-vfio-rp.pcapng"
    if p.is_file():
        b = p.read_bytes()
        keep, pos, n = bytearray(), 0, 0
        while pos + 12 <= len(b):
            btype, blen = struct.unpack_from("<II", b, pos)
            if blen < 12:
                break
            if btype != 6 or n >= 30:  # every block but the first 30 enhanced packet blocks
                keep += b[pos:pos + blen]
            n += btype == 6
            pos += blen
        out.append(bytes(keep))
    return out


def _tcp(data: bytes, path: Path) -> tuple[int, int]:
    from dissect.capture.tcp import reassemble

    path.write_bytes(data)
    got = reassemble(path)
    n, f = len(got.flows), len(got.findings)
    # the full migration decode on top of the reassembled streams
    n2, f2 = _emit("migration-capture")(data, path)
    return n + n2, f + f2


# -- QEMU stream: file streams, multifd and mapped-ram captures ---------------

def _qemu(data: bytes, path: Path) -> tuple[int, int]:
    if data[:4] == b"QEVM":
        return _emit("qemu-stream")(data, path)
    return _emit("migration-capture")(data, path)


def _qemu_seeds() -> list[bytes]:
    seeds = _files("generated/*.mig", "generated/qemu-10x-multifd.pcapng", "real/qemu-file.mig", limit=800_000)
    # QEMU 10: file stream, multifd capture, and a mapped-ram file: the real one is 10 MB, too big
    # to write per execution; the golden file of tests/test_qemu_mapped_ram.py (laid out by hand
    # from QEMU's source, ~2 MB) has the same structure
    seeds += _files("real/qemu10/file.mig", "real/qemu10/multifd.pcap", limit=3_000_000)
    try:
        from tests.test_qemu_mapped_ram import golden

        seeds.append(golden()[0])
    except ImportError:  # a tree without the tests
        pass
    return seeds


# -- vfio records, device parts, admin ----------------------------------------

def _parts_seeds() -> list[bytes]:
    from dissect.virtio.builders import virtio_net_vf_blob

    return [virtio_net_vf_blob(1), virtio_net_vf_blob(4)] + _files("generated/vf0-parts.bin")


def _vfio_seeds() -> list[bytes]:
    from dissect.vfio.stream import build_record

    blobs = _parts_seeds()
    return ([b"".join(build_record(b) for b in blobs[:2]), build_record(blobs[0]) + build_record(b"", 5, 1)]
            + _files("generated/vf0-saved-device-data.bin"))


def _vfio(data: bytes, path: Path) -> tuple[int, int]:
    from analysis.emit.vfio import stream_objects

    from dissect.vfio.stream import RecordSplitter

    # fed in uneven chunks: the splitter's resumption is part of what is fuzzed
    chunks = [data[i:i + 977] for i in range(0, len(data), 977)] or [b""]
    n, f = _units(stream_objects(chunks, device="fuzz"))
    # the same bytes as a stream captured mid-way: the search for the first whole record
    sp = RecordSplitter("fuzz", resync=True)
    events = [e for c in chunks for e in sp.feed_events(c)] + sp.close()
    return n + len(events), f


def _parts(data: bytes, path: Path) -> tuple[int, int]:
    from dissect.virtio.parts_fast import parts_dataframe

    n, f = _emit("dev-parts")(data, path)
    parts_dataframe(data)
    return n, f


def _admin_records() -> list[tuple[int, int, int, bytes]]:
    """(direction, opcode, subtype, payload) of the admin records in the sim captures."""
    from dissect.common.findings import Finding
    from dissect.virtio.admin_capture import iter_admin_records

    out = []
    for p in sorted(TRACES.glob("sim/variants/*/admin-*.pcapng"))[:4]:
        for r in iter_admin_records(p):
            if not isinstance(r, Finding):
                out.append((r.direction, r.opcode, r.subtype, bytes(r.payload)))
    return out


def _admin_seeds() -> list[bytes]:
    # one byte of opcode and one of subtype in front of the buffer select a completion's layout;
    # a leading 0xff marks a request
    seen, out = set(), []
    for d, op, sub, buf in _admin_records():
        key = (d, op, sub, len(buf))
        if key in seen:
            continue
        seen.add(key)
        out.append((b"\xff\x00" if d == 0 else bytes([op & 0xFF, sub & 0xFF])) + buf)
    # the DEV_PARTS_GET(ALL) completion of traces/generated (opcode 0xf, subtype 1)
    out += [b"\x0f\x01" + x for x in _files("generated/vf0-dev-parts-get-completion.bin")]
    return out


def _admin(data: bytes, path: Path) -> tuple[int, int]:
    from dissect.virtio import admin_decode

    if len(data) < 2:
        return 0, 0
    # the compiled walk and its scapy twin (admin_decode.FAST) must give the same command
    got = []
    try:
        for fast in (True, False):
            admin_decode.FAST = fast
            if data[0] == 0xFF:
                obj, findings = admin_decode.decode_request(data[2:])
            else:
                obj, findings = admin_decode.decode_result(data[2:], data[0], data[1])
            got.append((obj, [f.to_json() for f in findings]))
    finally:
        admin_decode.FAST = True
    if got[0] != got[1]:
        raise AssertionError("compiled and scapy admin walks differ")
    n, _ = _units([{"kind": "admin", "v": obj}, *got[1][1]])
    return n, len(findings)


# -- ftrace ---------------------------------------------------------------------

def _trace_dat(data: bytes, path: Path) -> tuple[int, int]:
    from dissect.ftrace.tracedat import read_trace_dat

    n, f = _emit("trace-dat")(data, path)
    td = read_trace_dat(path)
    try:
        td.dataframe()
    finally:
        td.close()
    return n, f


def _text(kind: str) -> Callable[[bytes, Path], tuple[int, int]]:
    def run(data: bytes, path: Path) -> tuple[int, int]:
        from dissect.ftrace.text import _READERS

        n, f = _emit(kind, as_kind=kind)(data, path)
        # both DataFrame paths (bulk scanner and the per-line reference) must give the same frame
        bulk = _READERS[kind](path).dataframe()
        ref = _READERS[kind](path).dataframe(bulk=False)
        if not _same_frame(bulk, ref):
            raise AssertionError("bulk and per-line DataFrames differ")
        return n, f
    return run


def _same_frame(a, b) -> bool:
    """``assert_frame_equal(a, b)`` passes; a cheaper test first, which decides only "equal".

    ``DataFrame.equals`` compares values block by block but lets an index type,
    a column dtype or a categorical's category order differ, so those are
    compared too; anything the quick test does not call equal goes to
    ``assert_frame_equal``, which decides.
    """
    import pandas as pd

    if (type(a.index) is type(b.index) and list(a.columns) == list(b.columns)
            and all(x == y for x, y in zip(a.dtypes, b.dtypes)) and a.equals(b)
            and all(list(a[c].cat.categories) == list(b[c].cat.categories)
                    for c, t in a.dtypes.items() if isinstance(t, pd.CategoricalDtype))):
        return True
    try:
        pd.testing.assert_frame_equal(a, b)
    except AssertionError:
        return False
    return True


# -- run manifests and query-migrate series -------------------------------------

def _manifest(data: bytes, path: Path) -> tuple[int, int]:
    from analysis.manifest import read_manifest

    path.write_bytes(data)
    m = read_manifest(path)
    return 1 + len(m.captures), 0


def _qmp_series(data: bytes, path: Path) -> tuple[int, int]:
    from analysis.load_qmp import final_stats, iteration_boundaries, read_series

    path.write_bytes(data)
    df, findings = read_series(path, capture=0, side="source")
    final_stats(df)
    iteration_boundaries(df)
    _units(findings)
    return len(df), len(findings)


# -- the command line: detection by content, then the family's decoder -------------

class CliUsageError(Exception):
    """``migtrace decode`` exited 2 (cli.md: usage error, e.g. unknown format): documented."""


def _cli_seeds() -> list[bytes]:
    # a small sample of every other family's seeds: detection picks the decoder
    out: list[bytes] = []
    for name, t in _family_targets().items():
        if name in ("cli", "admin-commands"):  # admin buffers have no magic: --as only
            continue
        out += sorted((s for s in t.seeds() if len(s) <= 120_000), key=len)[:2]
    # compressed captures are read by content too (dissect/capture/compressed.py): a gzip and a
    # zstd seed, whose damaged frames reach the compressed_* findings
    import gzip

    import zstandard

    small = sorted(out, key=len)
    out += [gzip.compress(small[-1], mtime=0), zstandard.ZstdCompressor(level=3).compress(small[len(small) // 2])]
    return out


def _cli(data: bytes, path: Path) -> tuple[int, int]:
    import contextlib
    import io

    from analysis.cli.main import main

    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["decode", "--json", str(path)])
    if code == 2:
        raise CliUsageError(err.getvalue().strip()[:200])
    if code not in (0, 1) or err.getvalue():
        raise AssertionError(f"exit {code}, stderr {err.getvalue()[:300]!r}")
    n = f = 0
    for line in out.getvalue().splitlines():
        line.encode("utf-8")  # strict: a lone surrogate is not valid JSON text
        o = json.loads(line)
        n += 1
        if o.get("kind") == "finding":
            f += 1
            if o.get("code") == "internal_error":
                raise AssertionError(f"internal_error: {o.get('message')} at {o.get('where')}")
    return n, f


def targets() -> dict[str, Target]:
    ts = _family_targets()
    ts["cli"] = Target("cli", _cli_seeds, _cli, (CliUsageError,),
                       [b"QEVM", b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a", b"\x17\x08\x44tracing", b"cpus=2\n",
                        b"# tracer: nop\n", b"\n", b"\x80", b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd"])
    return ts


def _family_targets() -> dict[str, Target]:
    from analysis.manifest import ManifestError
    from dissect.common.findings import DecodeError

    doc = (DecodeError,)
    ts = [
        Target("pcap", lambda: _files("real/loopback-*.pcap", "real/qemu-tcp-returnpath.pcap"), _reader, doc,
               [b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", struct.pack("<I", 65535)]),
        Target("pcapng", lambda: _files("real/*.pcapng", "generated/*.pcapng", "sim/variants/trailer/*.pcapng"),
               _reader, doc, [b"\x0a\x0d\x0d\x0a", b"\x4d\x3c\x2b\x1a", struct.pack("<I", 6), struct.pack("<I", 1)]),
        Target("tcp", lambda: _files("sim/variants/trailer/source.pcapng", "real/loopback-ipv4.pcap",
                                     "generated/qemu-9x-vfio-rp.pcapng") + _late_seeds(), _tcp, doc),
        Target("qemu-stream", _qemu_seeds, _qemu, doc,
               [b"QEVM", b"\x00\x00\x00\x03", b"\x11\x22\x33\x44", b"\xfe\xed\xca\xfe"]),
        Target("vfio-records", _vfio_seeds, _vfio, doc),
        Target("admin-commands", _admin_seeds, _admin, doc),
        Target("admin-captures", lambda: _files("sim/variants/*/admin-*.pcapng", limit=20_000),
               _emit("admin-capture"), doc),
        Target("dev-parts", _parts_seeds, _parts, doc),
        Target("trace-dat", lambda: _files("real/ftrace/*.dat", "real/ftrace-text/*.dat",
                                           "sim/variants/trailer/*.dat"), _trace_dat, doc,
               [b"offset:", b"size:", b"field:", b"\n", b"\0", b"4294967295", b"1500000000"]),
        Target("ftrace-text", lambda: _files("real/ftrace-text/trace*.txt"), _text("ftrace-text"), doc,
               [b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n", b"\\", b"tracing_mark_write: ", b"] ", b": "]),
        Target("trace-cmd-report", lambda: _files("real/ftrace-text/report*.txt"), _text("trace-cmd-report"),
               doc, [b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n", b"\\", b"print:", b"] ", b": "]),
        Target("qemu-log", lambda: _files("real/qemu-*.log"), _text("qemu-log"), doc,
               [b"\x80", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\n", b"\\", b"@", b":", b"."]),
        Target("run-json", lambda: _files("real/runs/*/run.json", "sim/variants/*/run.json", limit=20_000),
               _manifest, (ManifestError,), [b"{", b"}", b"null", b"[]", b'"captures"', b"\\ud800"]),
        Target("qmp-series", lambda: _files("real/qemu10/*-qmp.jsonl", limit=200_000), _qmp_series, doc,
               [b"{", b"}", b'"ts_ns": ', b'"ram": {', b"null", b"1e400", b"-1", b"18446744073709551616",
                b"\n", b'"dirty-sync-count": ']),
    ]
    return {t.name: t for t in ts}
