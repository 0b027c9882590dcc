# SPDX-License-Identifier: GPL-2.0-only
"""Admin layers flattened into the contract's dicts, with and without scapy.

Spec: ``shared/spec/virtio-admin.md`` §3 (structures, zero-filling of short
buffers §3.3.2); contract: ``shared/contract/json-lines.md``.

An admin capture holds one request and one completion per command, and a
migration of many VFs sends thousands: that loop must not build scapy packets
(the brief's rule for hot loops).  Almost every admin layer is a fixed
structure, sometimes followed by a payload layer bound with ``bind_layers``
(DRIVER_CAP_SET's capability data, RESOURCE_OBJ_CREATE's object data) or by a
part/header list that :mod:`dissect.virtio.admin_decode` decodes with the
device-part fast path.  For those, :func:`plan` compiles the layer's own
``fields_desc`` (:func:`dissect.common.fields.compile_layer`) and
:func:`walk_fast` follows the layer's own ``payload_guess`` — so the
declaration stays the scapy layer, and nothing here restates a layout.

Layers the plan cannot follow exactly (variable lists such as LIST_USE's
bitmap, LEGACY_*'s register strings, NOTIFY_INFO's entries, or a layer with
its own dissection hooks) return ``None`` and the caller dissects them with
scapy.  The field handlers below are shared by both paths, so a finding or a
key can only differ if the values differ; ``tests/test_admin_*.py`` run every
case through both paths and ``fuzz`` compares them on mutated commands.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from scapy import fields as F
from scapy.packet import Packet

from dissect.common.fields import compile_layer
from dissect.common.findings import Finding
from dissect.virtio import admin_hdr as A

AdminDict = dict[str, Any]


def nonzero(v: Any) -> bool:
    if isinstance(v, (bytes, bytearray)):
        return any(v)
    return bool(v)


def put_field(layer_name: str, f: Any, v: Any, pos: int, out: AdminDict, findings: list[Finding]) -> None:
    """One fixed field of an admin layer as the contract's keys (lists are the caller's)."""
    name = f.name
    if name.startswith(("reserved", "padding")):
        if nonzero(v):
            findings.append(Finding(
                "warning", "admin_reserved_nonzero",
                f"{layer_name}.{name} is not zero ({bytes(v).hex() if isinstance(v, bytes) else v})",
                pos, {"field": name}))
    elif isinstance(f, F.FlagsField):
        iv = int(v)
        out[name] = iv
        out[name + "_names"] = [n for i, n in enumerate(f.names) if iv >> i & 1]
        unknown = iv & ~((1 << len(f.names)) - 1)
        if unknown:
            findings.append(Finding("warning", "admin_reserved_nonzero",
                                    f"{layer_name}.{name}: reserved bits {unknown:#x} set", pos,
                                    {"field": name}))
    elif getattr(f, "i2s", None) is not None:
        out[name] = int(v)
        out[name + "_name"] = f.i2s.get(int(v))
    elif isinstance(v, bytes):
        out[name] = v.hex()
        out[name + "_length"] = len(v)
    else:
        out[name] = v


def short_buffer(layer_name: str, missing: int, pos: int) -> Finding:
    return Finding("warning", "admin_short_buffer",
                   f"{layer_name} is {missing} bytes short; read as zero-filled "
                   "(spec: missing bytes are treated as zero)", pos, {"missing": missing})


def surplus(load: bytes, pos: int, out: AdminDict, findings: list[Finding], what: str) -> None:
    """Bytes after a fixed structure (scapy's ``Padding``): counted, reported when not zero."""
    if any(load):
        findings.append(Finding(
            "info", "admin_surplus_bytes",
            f"{len(load)} bytes after the {what} structure are not zero "
            "(a device ignores them)", pos))
    out["surplus_bytes"] = len(load)


def empty_list(name: str, pos: int, out: AdminDict) -> None:
    """The keys a part/header list leaves before its caller fills it (key order of the output)."""
    if name == "parts":
        out["parts"] = 0
        out["parts_offset"] = pos
        out["parts_length"] = 0
    else:
        out[name] = []


@dataclass(frozen=True)
class Plan:
    """A fixed admin layer compiled: its fields, their sizes, and what follows it."""

    cls: type[Packet]
    #: the layer's ``name`` as an instance has it (scapy keeps the class's in ``_name``)
    name: str
    fields: tuple[Any, ...]
    sizes: tuple[int, ...]
    size: int
    decode: Callable[[Any], Any]
    #: trailing list field that the caller fills (parts / hdr_list / hdrs), else None
    tail: str | None
    #: True: bytes after the structure are padding; False: a payload layer (payload_guess)
    padding: bool


_PLANS: dict[tuple[type, bool], Plan | None] = {}
_HOOKS = ("dissect", "do_dissect", "post_dissect", "do_dissect_payload", "guess_payload_class",
          "default_payload_class")


def _padding_mode(cls: type[Packet]) -> bool | None:
    """How the layer's ``extract_padding`` splits what follows it (probed; None: neither way)."""
    try:
        pay, pad = cls.extract_padding(None, b"xy")  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - a hook that needs the instance: let scapy do it
        return None
    if (pay, pad) == (b"", b"xy"):
        return True
    if (pay, pad) == (b"xy", b""):
        return False
    return None


def plan(cls: type[Packet], top: bool = True) -> Plan | None:
    """The compiled plan of ``cls``, or None when only scapy can dissect it exactly.

    ``top``: the layer is dissected from a split buffer (admin_decode's
    ``parts_offset`` / ``hdr_list_offset``), so its trailing list receives no
    bytes and only its keys are placed.
    """
    key = (cls, top)
    if key in _PLANS:
        return _PLANS[key]
    _PLANS[key] = p = _compile(cls, top)
    return p


def _compile(cls: type[Packet], top: bool) -> Plan | None:
    if not issubclass(cls, A.AdminLayer) or cls.pre_dissect is not A.AdminLayer.pre_dissect:
        return None
    if any(getattr(cls, h) is not getattr(Packet, h) for h in _HOOKS):
        return None
    padding = _padding_mode(cls)
    if padding is None:
        return None
    fields = list(cls.fields_desc)
    tail = None
    split = getattr(cls, "parts_offset", None)
    if split is None:
        split = getattr(cls, "hdr_list_offset", None)
    if fields and isinstance(fields[-1], F.PacketListField):
        if not top or split is None:
            return None
        tail = fields.pop().name
    holder = type(cls.__name__ + "Fixed", (), {"fields_desc": fields})
    try:
        c = compile_layer(holder)
    except TypeError:
        return None
    if c.fixed_size is None or any(s.kind not in ("int", "bytes", "len") for s in c.steps):
        return None
    if tail is not None and c.fixed_size != split:
        return None
    name = cls._name if cls._name is not None else cls.__name__  # as scapy's Packet.__init__
    return Plan(cls, name, tuple(fields), tuple(s.size for s in c.steps), c.fixed_size, c.decode, tail, padding)


def _next_layer(cls: type[Packet], values: dict[str, Any]) -> type[Packet] | None:
    """scapy's default ``guess_payload_class`` over the decoded values (None: Raw)."""
    for t in cls.aliastypes:
        for fval, nxt in t.payload_guess:
            if all(k in values and values[k] == v for k, v in fval.items()):
                return nxt
    return None


def walk_fast(cls: type[Packet], head: bytes, offset: int, what: str) -> tuple[AdminDict, list[Finding]] | None:
    """``head`` dissected as ``cls`` and its payload chain, flattened; None: use scapy.

    Equal to admin_decode's scapy walk, field for field and finding for
    finding (tested on every admin test case and under fuzzing).
    """
    p = plan(cls, True)
    if p is None or (not head and cls.min_len == 0 and p.size):
        return None  # an empty buffer on a layer without min_len takes scapy's defaults
    out: AdminDict = {}
    findings: list[Finding] = []
    buf = bytes(head)
    pos = offset
    while True:
        missing = p.cls.min_len - len(buf)
        if missing > 0:
            buf += b"\0" * missing
            findings.append(short_buffer(p.name, missing, pos))
        else:
            missing = 0
        r = p.decode(buf)
        if r is None:
            return None
        values = r[0]
        fpos = pos
        for f, size in zip(p.fields, p.sizes):
            put_field(p.name, f, values[f.name], fpos, out, findings)
            fpos += size
        if p.tail is not None:
            empty_list(p.tail, fpos, out)
        pos += p.size - missing
        rest = buf[p.size:]
        if not rest:
            break
        if p.padding:
            surplus(rest, pos, out, findings, what)
            break
        nxt = _next_layer(p.cls, values)
        if nxt is None:
            out[getattr(p.cls, "raw_name", "raw")] = rest.hex()
            break
        np_ = plan(nxt, False)
        if np_ is None:
            return None
        p, buf = np_, rest
    return out, findings
