# SPDX-License-Identifier: GPL-2.0-only
"""Bulk decoders and encoders compiled from a scapy layer's ``fields_desc``.

A wire layout is declared once, as a scapy layer (the contrib-layer style:
``fields_desc`` is the whole truth).  The hot loops (bulk device parts, the
vfio record header) must not build a scapy packet per item, so this module
reads the declaration at import time and generates plain Python functions
from it, in the manner of construct's ``Struct.compile()``:

- runs of fixed-size fields become one :class:`struct.Struct` unpack;
- a counted list (``FieldListField`` with ``count_from``) and a
  length-prefixed string (``StrLenField`` with ``length_from``) evaluate the
  layer's own ``count_from``/``length_from`` callable on the values decoded
  so far, so the relation between a length field and its list is stated
  once, in the layer;
- a list without ``count_from`` takes the rest of the value, in whole items.

The decoder returns the decoded field values and the number of bytes the
layout covers, or ``None`` when the bytes cannot hold the layout (too short,
a count pointing past the end, a trailing partial item).  Nothing is
allocated from a length field: counts are checked against the bytes present
before any slice or list is made.

A union of ``ConditionalField`` views over the same bytes (the device-part
selector) compiles as the one view named in ``union``; the other views are
presentation.  Only the field kinds the project's layers use are supported; anything else
raises :class:`TypeError` at import, so a new layer cannot silently fall back
to a slower or different path.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable

from scapy import fields as F

#: scapy struct format letters by size for bit-based fields (FlagsField);
#: a negative size is scapy's little-endian bit order.
_BIT_FMT = {8: ">B", 16: ">H", 32: ">I", 64: ">Q", -8: "<B", -16: "<H", -32: "<I", -64: "<Q"}


@dataclass(frozen=True)
class Step:
    """One field as the compiler sees it."""

    name: str
    kind: str  # "int", "mac", "bytes", "len", "list", "strlen", "rest_list"
    fmt: str = ""  # struct format (byte order + one letter / Ns) for fixed kinds
    size: int = 0
    field: Any = None  # the scapy field (for count_from / length_from / adjust)
    item_fmt: str = ""  # list item format


@dataclass(frozen=True)
class Compiled:
    """A layer compiled: ``decode(buf) -> (values, used) | None`` and ``encode(values) -> bytes``."""

    layer: type
    steps: tuple[Step, ...]
    decode: Callable[[Any], tuple[dict[str, Any], int] | None]
    encode: Callable[[dict[str, Any]], bytes]
    #: size of the layout when it has no variable field, else None
    fixed_size: int | None
    #: the minimum number of bytes the layout needs
    min_size: int
    source: str
    #: the one struct of a fixed layout in one byte order (hot loops unpack it directly), else None
    struct: struct.Struct | None = None
    #: generated decode body and its globals, for :func:`object_decoder`
    body: tuple[str, ...] = ()
    env: dict[str, Any] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def length_fields(self) -> frozenset[str]:
        """Fields that only say how long another field is (``FieldLenField``)."""
        return frozenset(s.name for s in self.steps if s.kind == "len")


def _fmt_of(fld: Any) -> tuple[str, int]:
    if isinstance(fld, F._BitField):  # FlagsField and friends; rev = scapy's negative size
        fmt = _BIT_FMT.get(-fld.size if getattr(fld, "rev", False) else fld.size)
        if fmt is None:
            raise TypeError(f"{fld.name}: bit field of {fld.size} bits is not byte-aligned")
        return fmt, struct.calcsize(fmt)
    fmt = fld.fmt
    if fmt[0] not in "<>!=@":
        fmt = "!" + fmt
    return ("<" if fmt[0] == "<" else ">") + fmt[1:], struct.calcsize(fmt)


def _step(fld: Any) -> Step:
    if isinstance(fld, F.ConditionalField):
        raise TypeError(f"{fld.name}: conditional fields are not compiled unless named as the union's raw view")
    if isinstance(fld, F.MACField):
        return Step(fld.name, "mac", "6s", 6, fld)
    if isinstance(fld, F.FieldLenField):
        fmt, size = _fmt_of(fld)
        return Step(fld.name, "len", fmt, size, fld)
    if isinstance(fld, F.FieldListField):
        item = fld.field
        if isinstance(item, F.MACField):
            item_fmt = "6s"
        else:
            item_fmt, _ = _fmt_of(item)
        if fld.count_from is None and fld.length_from is None:
            return Step(fld.name, "rest_list", item_fmt=item_fmt, field=fld, size=struct.calcsize(item_fmt))
        if fld.count_from is None:
            raise TypeError(f"{fld.name}: only count_from lists are compiled")
        return Step(fld.name, "list", item_fmt=item_fmt, field=fld, size=struct.calcsize(item_fmt))
    if isinstance(fld, F.StrFixedLenField):
        n = fld.length_from(None)
        return Step(fld.name, "bytes", f"{n}s", n, fld)
    if isinstance(fld, F.StrLenField):
        return Step(fld.name, "strlen", field=fld)
    if isinstance(fld, (F.StrField, F.PacketField, F.PacketListField)):
        # scapy gives every Field a default ``fmt`` ("H"): without this, a string or
        # packet field would compile as a 2-byte integer
        raise TypeError(f"{fld.name}: {type(fld).__name__} is not compiled")
    if isinstance(fld, F._BitField) or getattr(fld, "fmt", None):
        fmt, size = _fmt_of(fld)
        if fmt[1:] not in ("B", "H", "I", "Q", "b", "h", "i", "q"):
            raise TypeError(f"{fld.name}: format {fmt!r} is not compiled")
        return Step(fld.name, "int", fmt, size, fld)
    raise TypeError(f"{fld.name}: {type(fld).__name__} is not compiled")


def _mac(b: bytes) -> str:
    return "%02x:%02x:%02x:%02x:%02x:%02x" % tuple(b)


def _mac_bytes(s: str | bytes) -> bytes:
    return s if isinstance(s, bytes) else bytes(int(x, 16) for x in s.split(":"))


def _unconditional(fields_desc: list[Any], union: tuple[str, ...]) -> list[Any]:
    out = []
    for f in fields_desc:
        if isinstance(f, F.ConditionalField) and union:
            if f.fld.name in union:
                out.append(f.fld)
            continue
        out.append(f)
    return out


def compile_layer(layer: type, union: tuple[str, ...] = ()) -> Compiled:
    """Compile ``layer.fields_desc`` into a decoder and an encoder (see module doc)."""
    steps = tuple(_step(f) for f in _unconditional(layer.fields_desc, union))
    env: dict[str, Any] = {"_ns": SimpleNamespace, "_mac": _mac, "_unpack": struct.unpack_from,
                           "_calc": struct.calcsize}
    lines = ["def decode(v):", "    n = len(v)", "    pos = 0"]
    fixed_total = 0
    variable = False
    i = 0
    while i < len(steps):
        s = steps[i]
        if s.kind in ("int", "mac", "bytes", "len"):
            run = []
            while i < len(steps) and steps[i].kind in ("int", "mac", "bytes", "len"):
                run.append(steps[i])
                i += 1
            # one byte order per struct: split the run where it changes (bytes and
            # strings have none and join either side)
            groups: list[tuple[str | None, list[Step]]] = []
            for st in run:
                letter = st.fmt.lstrip("<>")
                order = None if letter in ("B", "b") or letter.endswith("s") else st.fmt[0]
                if groups and (order is None or groups[-1][0] in (None, order)):
                    groups[-1] = (groups[-1][0] or order, groups[-1][1] + [st])
                else:
                    groups.append((order, [st]))
            for order, g in groups:
                fmt = (order or "<") + "".join(st.fmt.lstrip("<>") for st in g)
                sname = f"_S{len(env)}"
                env[sname] = struct.Struct(fmt)
                size = env[sname].size
                lines.append(f"    if n - pos < {size}: return None")
                names = ", ".join(f"f_{st.name}" for st in g)
                lines.append(f"    {names}, = {sname}.unpack_from(v, pos)")
                lines.append(f"    pos += {size}")
                for st in g:
                    if st.kind == "mac":
                        lines.append(f"    f_{st.name} = _mac(f_{st.name})")
                if not variable:
                    fixed_total += size
            continue
        variable = True
        done = [st.name for st in steps[:i]]
        ns = "_ns(" + ", ".join(f"{nm}=f_{nm}" for nm in done) + ")"
        if s.kind == "list" or s.kind == "rest_list":
            env[f"_F_{s.name}"] = s.field
            if s.kind == "list":
                lines.append(f"    c = _F_{s.name}.count_from({ns})")
                lines.append(f"    if c < 0 or c * {s.size} > n - pos: return None")
            else:
                lines.append(f"    c, r = divmod(n - pos, {s.size})")
                lines.append("    if r: return None")
            if s.item_fmt == "6s":
                lines.append(f"    f_{s.name} = [_mac(bytes(v[pos + 6 * k:pos + 6 * k + 6])) for k in range(c)]")
            else:
                order, letter = s.item_fmt[0], s.item_fmt[1:]
                lines.append(f"    f_{s.name} = list(_unpack('{order}%d{letter}' % c, v, pos))")
            lines.append(f"    pos += c * {s.size}")
        elif s.kind == "strlen":
            env[f"_F_{s.name}"] = s.field
            lines.append(f"    c = _F_{s.name}.length_from({ns})")
            lines.append("    if c < 0 or c > n - pos: return None")
            lines.append(f"    f_{s.name} = bytes(v[pos:pos + c])")
            lines.append("    pos += c")
        i += 1
    body = tuple(lines[3:])
    lines.append("    return {" + ", ".join(f"'{s.name}': f_{s.name}" for s in steps) + "}, pos")
    src = "\n".join(lines)
    exec(compile(src, f"<compiled {layer.__name__}>", "exec"), env)  # noqa: S102 - our own generated code

    def encode(values: dict[str, Any]) -> bytes:
        out = []
        for s in steps:
            if s.kind == "len":
                fld = s.field
                if fld.count_of is not None:
                    n = len(values[fld.count_of])
                else:
                    n = len(values[fld.length_of])
                val = values.get(s.name)
                if val is None:
                    val = fld.adjust(SimpleNamespace(**values), n)
                out.append(struct.pack(s.fmt, val))
            elif s.kind == "int":
                out.append(struct.pack(s.fmt, int(values.get(s.name, 0))))
            elif s.kind == "mac":
                out.append(_mac_bytes(values.get(s.name, b"\0" * 6)))
            elif s.kind == "bytes":
                out.append(bytes(values.get(s.name, b"")).ljust(s.size, b"\0")[:s.size])
            elif s.kind in ("list", "rest_list"):
                items = values.get(s.name, [])
                if s.item_fmt == "6s":
                    out.extend(_mac_bytes(m) for m in items)
                else:
                    out.append(struct.pack(f"{s.item_fmt[0]}{len(items)}{s.item_fmt[1:]}", *items))
            elif s.kind == "strlen":
                out.append(bytes(values.get(s.name, b"")))
        return b"".join(out)

    structs = [v for k, v in env.items() if k.startswith("_S")]
    one = structs[0] if not variable and len(structs) == 1 else None
    return Compiled(layer, steps, env["decode"], encode, None if variable else fixed_total,
                    fixed_total if not variable else _min_size(steps), src, one, body, env)


def object_decoder(compiled: Compiled, keep: list[str], hexed: set[str] | frozenset[str], *,
                   min_size: int = 0, exact: bool = False,
                   to_object: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None,
                   ) -> Callable[[Any, Any], dict[str, Any] | None]:
    """A generated ``f(value, selector) -> object | None`` for the hot loop.

    The object holds the fields in ``keep`` (those in ``hexed`` as hex
    text), or is ``to_object(all fields, selector)`` when given; bytes past
    the layout are added as ``"excess"`` (hex) unless ``exact``.  ``None``
    means the value does not hold the layout (the caller reports it raw).
    """
    env = dict(compiled.env or {})
    env["_to_object"] = to_object
    if compiled.struct is not None and to_object is None and min_size <= compiled.fixed_size:
        # fixed layout in one struct: one length check, one unpack at offset 0
        size = compiled.fixed_size
        env["_S"] = compiled.struct
        names = ", ".join(f"f_{s.name}" for s in compiled.steps)
        obj = "{" + ", ".join(f"'{k}': f_{k}.hex()" if k in hexed else f"'{k}': f_{k}" for k in keep) + "}"
        src = [f"def fast(v, sel):", f"    n = len(v)",
               f"    if n {'!=' if exact else '<'} {size}: return None",
               f"    {names}, = _S.unpack_from(v, 0)"]
        src += [f"    f_{s.name} = _mac(f_{s.name})" for s in compiled.steps if s.kind == "mac"]
        if exact:
            src.append(f"    return {obj}")
        else:
            src += [f"    if n == {size}: return {obj}", f"    out = {obj}",
                    f"    out['excess'] = bytes(v[{size}:]).hex()", "    return out"]
        exec(compile("\n".join(src), f"<object {compiled.layer.__name__}>", "exec"), env)  # noqa: S102
        return env["fast"]
    lines = ["def fast(v, sel):", "    n = len(v)", f"    if n < {min_size}: return None", "    pos = 0",
             *compiled.body]
    if exact:
        lines.append("    if pos != n: return None")
    if to_object is not None:
        lines.append("    out = _to_object({" + ", ".join(f"'{s.name}': f_{s.name}" for s in compiled.steps)
                     + "}, sel)")
    else:
        lines.append("    out = {" + ", ".join(
            f"'{k}': f_{k}.hex()" if k in hexed else f"'{k}': f_{k}" for k in keep) + "}")
    if not exact:
        lines.append("    if pos < n: out['excess'] = bytes(v[pos:]).hex()")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<object {compiled.layer.__name__}>", "exec"), env)  # noqa: S102
    return env["fast"]


def _min_size(steps: tuple[Step, ...]) -> int:
    total = 0
    for s in steps:
        if s.kind in ("int", "mac", "bytes", "len"):
            total += s.size
    return total


def packet_values(pkt: Any, compiled: Compiled) -> dict[str, Any]:
    """The values of a dissected scapy packet, normalised as the compiled decoder gives them."""
    out: dict[str, Any] = {}
    for s in compiled.steps:
        v = pkt.getfieldval(s.name)
        if s.kind in ("int", "len"):
            v = int(v)
        elif s.kind in ("bytes", "strlen"):
            v = bytes(v)
        elif s.kind in ("list", "rest_list"):
            v = [x if isinstance(x, str) else int(x) for x in v]
        out[s.name] = v
    return out
