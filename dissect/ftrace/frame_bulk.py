# SPDX-License-Identifier: GPL-2.0-only
"""Vectorised decoders of one event type's records (the bulk paths of
:mod:`dissect.ftrace.frame`): ``ftrace/print``, ``ftrace/raw_data`` and events whose
fields all sit at fixed offsets.  Each returns ``(field columns, texts)`` or None when
the records need the per-record decoder (which then reports what is wrong with them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dissect.ftrace.formats import EventFormat
from dissect.ftrace.frame_arrow import (_arrow_slices, _arrow_strings, _has_nul, _Spans, _utf8_without_nul,
                                        _values, _Words)
from dissect.ftrace.utf8 import ERRORS

if TYPE_CHECKING:
    from dissect.ftrace.tracedat import TraceDat


# " xx" for every byte value: raw_data's text is "# <id>" and then this per byte
_HEX3 = np.frombuffer("".join(f" {i:02x}" for i in range(256)).encode(), dtype=np.uint8).reshape(256, 3)


def _raw_data_bulk(fmt: EventFormat, words: _Words, offs: np.ndarray,
                   lens: np.ndarray) -> tuple[dict[str, Any], Any] | None:
    """``ftrace/raw_data`` records (trace_marker_raw: the admin pieces), vectorised: ``id``
    gathered, ``buf`` the record's bytes after it, the text as
    :func:`~dissect.ftrace.formats.render_raw_data` writes it (hex by a table lookup)."""
    own = fmt.own_fields
    if [f.name for f in own] != ["id", "buf"]:
        return None
    idf, buff = own
    if idf.kind != "scalar" or idf.size != 4 or (idf.signed and not idf.is_pointer) or buff.kind != "flex":
        return None
    n = len(offs)
    if n == 0 or int(lens.min()) < max(buff.offset, idf.offset + 4):
        return None  # short records: let the per-record decoder report them
    a = offs + buff.offset
    b = offs + lens
    if (a[1:] < b[:-1]).any():
        return None
    ids = words.read(offs + idf.offset, 4).astype(np.int64)
    lo = int(a[0])
    raw = _arrow_slices(words.u8[lo:int(b[-1])], a - lo, b - lo)
    offsets, data = _values(raw)
    hexed = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(3 * offsets),
                                                         pa.py_buffer(_HEX3[data].reshape(-1))])
    uniq, inv = np.unique(ids, return_inverse=True)
    prefixes = pa.array([f"# {i:x}" for i in uniq.tolist()], type=pa.large_string())
    pref = prefixes.take(pa.array(inv.reshape(-1)))
    texts = pc.binary_join_element_wise(pref, hexed, pa.scalar("", type=pa.large_string()))
    return {"id": ids, "buf": raw.to_pylist()}, texts


def _print_bulk(td: "TraceDat", fmt: EventFormat, buf, words: _Words, offs: np.ndarray,
                lens: np.ndarray, lazy: bool = False) -> tuple[dict[str, Any], Any] | None:
    """``ftrace/print`` records, vectorised: ip gathered, texts cut at their NUL into Arrow strings
    (``lazy``: into :class:`_Spans` of ``buf``, copied later straight into the columns)."""
    ipf, buff = fmt.field("ip"), fmt.field("buf")
    if ipf is None or buff is None or ipf.kind != "scalar" or buff.kind != "flex" or ipf.size not in (4, 8):
        return None
    n = len(offs)
    if n == 0 or int(lens.min()) < buff.offset:
        return None  # short records: let the per-record decoder report them
    ips = words.read(offs + ipf.offset, ipf.size)
    a = offs + buff.offset
    b = offs + lens
    if (a[1:] < b[:-1]).any():
        return None
    lo = int(a[0])
    region = words.u8[lo:int(b[-1])]
    # The text ends at the record's first NUL.  The kernel's NUL sits in the last 4
    # bytes (only padding follows it): take the first zero there, then make sure
    # no text holds an earlier NUL (such rows go to the per-record decoder).
    if words.u32 is not None and not (b & 3).any() and (b - 4 >= a).all():
        # the usual case: the last 4 bytes are one aligned word of the text
        v = words.u32[(b - 4) >> 2]
        zero = [(v >> np.uint32(sh)) & np.uint32(0xFF) == 0
                for sh in ((0, 8, 16, 24) if words.e == "<" else (24, 16, 8, 0))]
        if not (zero[0] | zero[1] | zero[2] | zero[3]).all():
            return None  # a record without a NUL near its end
        z = (b - 4 - lo) + np.where(zero[0], 0, np.where(zero[1], 1, np.where(zero[2], 2, 3)))
    else:
        tail = np.maximum(b - 4, a) - lo
        last4 = words.u8[(tail + lo)[:, None] + np.arange(4, dtype=np.int64)[None, :]]
        last4 = np.where(((tail + lo)[:, None] + np.arange(4)[None, :]) < b[:, None], last4, 1)
        has0 = last4 == 0
        if not has0.any(axis=1).all():
            return None  # a record without a NUL near its end
        z = tail + has0.argmax(axis=1)
    nl = (z > a - lo) & (region[np.maximum(z - 1, 0)] == 10)
    if lazy:
        if not _utf8_without_nul(region, a - lo, z):
            return None
        uniq, inv = np.unique(ips, return_inverse=True)
        prefixes = pa.array([td.kallsyms.symbol(ip) + ": " for ip in uniq.tolist()], type=pa.large_string())
        z = z + lo
        return {"ip": ips, "buf": _Spans(buf, a, z)}, _Spans(buf, a, z - nl, prefixes,
                                                          None if len(uniq) == 1 else inv.reshape(-1))
    bufs = _arrow_strings(region, a - lo, z)
    if bufs is None or _has_nul(bufs):
        return None
    stripped = _arrow_strings(region, a - lo, z - nl)
    if stripped is None:
        return None
    ks = td.kallsyms
    uniq, inv = np.unique(ips, return_inverse=True)
    prefixes = pa.array([ks.symbol(ip) + ": " for ip in uniq.tolist()], type=stripped.type)
    pref = prefixes[0] if len(uniq) == 1 else prefixes.take(pa.array(inv))
    texts = pc.binary_join_element_wise(pref, stripped, pa.scalar("", type=pa.large_string()))
    return {"ip": ips, "buf": bufs}, texts


def _fixed_bulk(td: "TraceDat", fmt: EventFormat, words: _Words, offs: np.ndarray,
                lens: np.ndarray) -> tuple[dict[str, Any], Any] | None:
    """Events whose fields all sit at fixed offsets (scalars, fixed arrays): one NumPy gather per
    field.  Most kernel events (sched_switch, …) are like this."""
    own = fmt.own_fields
    if not own or any(f.kind not in ("scalar", "string", "array") for f in own):
        return None
    if fmt.system == "ftrace":
        return None  # print-like events need their rendered text: per-record path
    end = max(f.offset + f.size for f in own)
    if int(lens.min()) < end:
        return None  # short records: the per-record decoder reports None fields
    out: dict[str, Any] = {}
    for f in own:
        if f.kind == "scalar":
            out[f.name] = words.read(offs + f.offset, f.size, f.signed and not f.is_pointer)
            continue
        idx = (offs + f.offset)[:, None] + np.arange(f.size, dtype=np.int64)[None, :]
        mat = np.ascontiguousarray(words.u8[idx])
        if f.kind == "string":
            raw = mat.view(f"S{f.size}").reshape(-1).tolist()  # trailing NULs already stripped
            out[f.name] = [(b.split(b"\0", 1)[0] if b"\0" in b else b).decode("utf-8", ERRORS)
                           for b in raw]
        else:
            kind = ("i" if f.signed and not f.is_pointer else "u") + str(f.elem_size)
            if f.elem_size not in (1, 2, 4, 8) or f.size % f.elem_size:
                out[f.name] = [bytes(r) for r in mat]
            else:
                out[f.name] = mat.view(words.e + kind).reshape(len(offs), -1).tolist()
    return out, None
