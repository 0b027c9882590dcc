# SPDX-License-Identifier: GPL-2.0-only
"""Event format files, generic field decoding and trace-cmd-style rendering.

Spec: trace-dat.md §6 (format files), §7 (print, raw_data, bprint, bputs).
Formats are parsed from the text stored in the trace.dat file, so an event
decodes by its format, never by a fixed ID; the four ftrace events that carry
user text are rendered as trace-cmd 3.1.6 / libtraceevent print them, and
``sched_switch`` as libtraceevent's sched_switch plugin prints it.
"""
from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from dissect.ftrace.utf8 import ERRORS

_FIELD_RE = re.compile(
    r"^\s*field:\s*(?P<decl>[^;]*);\s*offset:\s*(?P<offset>\d+);\s*size:\s*(?P<size>\d+);"
    r"(?:\s*signed:\s*(?P<signed>-?\d+);)?")
_DECL_RE = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(?P<count>[^\]]*)\])?\s*$")

_CHAR_TYPES = {"char", "unsigned char", "signed char", "const char", "u8", "s8", "__u8", "__s8"}


def _type_size(base: str, long_size: int) -> int | None:
    base = base.replace("const ", "").replace("volatile ", "").strip()
    if "*" in base:
        return long_size
    table = {"char": 1, "unsigned char": 1, "signed char": 1, "u8": 1, "s8": 1, "__u8": 1,
             "__s8": 1, "bool": 1, "short": 2, "unsigned short": 2, "u16": 2, "s16": 2,
             "__u16": 2, "__s16": 2, "int": 4, "unsigned int": 4, "unsigned": 4, "u32": 4,
             "s32": 4, "__u32": 4, "__s32": 4, "pid_t": 4, "long long": 8,
             "unsigned long long": 8, "u64": 8, "s64": 8, "__u64": 8, "__s64": 8,
             "long": long_size, "unsigned long": long_size, "size_t": long_size}
    return table.get(base)


@dataclass(slots=True, frozen=True)
class Field:
    """One ``field:`` line of a format file (frozen: formats parsed from one text share them)."""

    name: str
    type: str            # the C type without the name and brackets
    offset: int
    size: int
    signed: bool
    kind: str            # scalar | array | string | dynamic | rel | flex
    elem_size: int = 1
    count: int = 1
    is_char: bool = False
    is_pointer: bool = False


@dataclass(slots=True)
class EventFormat:
    """A parsed ``events/<system>/<event>/format``."""

    system: str
    name: str
    id: int
    fields: list[Field]
    print_fmt: str = ""
    text: str = ""
    decoder: Callable[[bytes, int, int], dict[str, Any]] | None = field(default=None, repr=False)
    #: file offset of the format text (findings)
    offset: int | None = None
    #: why the fields cannot be used (:func:`check_format`); its events then decode as ``{"raw": bytes}``
    bad: str | None = None

    @property
    def common_fields(self) -> list[Field]:
        return [f for f in self.fields if f.name.startswith("common_")]

    @property
    def own_fields(self) -> list[Field]:
        return [f for f in self.fields if not f.name.startswith("common_")]

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


def parse_format(text: str, system: str, long_size: int = 8) -> EventFormat | None:
    """Parse one format file's text; None when it has no ``name:``/``ID:``.

    A new :class:`EventFormat` each call (the reader sets its offset, decoder and verdict);
    the parse behind it is cached, as every trace.dat of one kernel carries the same texts and
    a notebook comparing runs opens many of them."""
    parts = _parse_format_text(text, long_size)
    if parts is None:
        return None
    name, ev_id, fields, print_fmt = parts
    return EventFormat(system, name, ev_id, list(fields), print_fmt, text)


@lru_cache(maxsize=4096)
def _parse_format_text(text: str, long_size: int) -> tuple[str, int, tuple[Field, ...], str] | None:
    name = None
    ev_id = None
    fields: list[Field] = []
    print_fmt = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("name:"):
            name = s[5:].strip()
        elif s.startswith("ID:"):
            try:
                ev_id = int(s[3:].strip())
            except ValueError:
                return None
        elif s.startswith("field:") or s.startswith("field "):
            f = _parse_field(s, long_size)
            if f is not None:
                fields.append(f)
        elif s.startswith("print fmt:"):
            print_fmt = s[len("print fmt:"):].strip()
    if name is None or ev_id is None:
        return None
    return name, ev_id, tuple(fields), print_fmt


def _parse_field(line: str, long_size: int) -> Field | None:
    m = _FIELD_RE.match(line)
    if not m:
        return None
    decl = m.group("decl").strip()
    offset, size = int(m.group("offset")), int(m.group("size"))
    signed = m.group("signed") == "1"
    kind = "scalar"
    if decl.startswith("__data_loc"):
        kind, decl = "dynamic", decl[len("__data_loc"):].strip()
    elif decl.startswith("__rel_loc"):
        kind, decl = "rel", decl[len("__rel_loc"):].strip()
    if kind in ("dynamic", "rel"):
        # "char[] name" / "unsigned long[] name"
        parts = decl.rsplit(None, 1)
        if len(parts) != 2:
            return None
        typ, name = parts[0].replace("[]", "").strip(), parts[1]
        esize = _type_size(typ, long_size) or 1
        return Field(name, typ, offset, size, signed, kind, esize, 0,
                     typ.replace("const ", "").strip() in _CHAR_TYPES, "*" in typ)
    dm = _DECL_RE.match(decl)
    if not dm:
        return None
    typ, name, count = dm.group("type").strip(), dm.group("name"), dm.group("count")
    is_char = typ.replace("const ", "").strip() in _CHAR_TYPES
    is_ptr = "*" in typ
    if count is not None:
        if count.strip() == "" or size == 0:
            return Field(name, typ, offset, size, signed, "flex", _type_size(typ, long_size) or 1,
                         0, is_char, is_ptr)
        try:
            n = int(count, 0)
        except ValueError:
            n = 0
        esize = size // n if n > 0 and size % n == 0 else (_type_size(typ, long_size) or 1)
        n = size // esize if esize else 0
        return Field(name, typ, offset, size, signed, "string" if is_char else "array", esize, n,
                     is_char, is_ptr)
    if size == 0:
        # Older kernels (3.x, 4.x: ``char buf;`` / ``u32 buf;`` with size 0) declare the
        # flexible tail of print/bprint without ``[]``; trace-cmd reads it to the record's end.
        return Field(name, typ, offset, size, signed, "flex", _type_size(typ, long_size) or 1, 0, is_char, is_ptr)
    if size not in (1, 2, 4, 8):
        return Field(name, typ, offset, size, signed, "array", 1, size, is_char, is_ptr)
    return Field(name, typ, offset, size, signed, "scalar", size, 1, is_char, is_ptr)


_SCALAR = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
           (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


def _cstr(b: bytes) -> str:
    end = b.find(b"\0")
    if end >= 0:
        b = b[:end]
    return b.decode("utf-8", ERRORS)


def _cbytes(b: bytes) -> bytes:
    """:func:`_cstr` without the decode: the string's bytes as stored (what a finding shows)."""
    end = b.find(b"\0")
    return bytes(b[:end] if end >= 0 else b)


#: Largest record any ring buffer holds: a record lives in one sub-buffer page, and Linux's
#: largest sub-buffer (``buffer_subbuf_size_kb``) is far below this.  A field beyond it can
#: never be read, whatever the file's page size says.
MAX_RECORD = 1 << 23


def record_bound(page_size: int) -> int:
    """The bound :func:`check_format` checks fields against for a file of ``page_size`` pages:
    the page (at least 4096 bytes, so a damaged page size does not condemn every format),
    never above MAX_RECORD."""
    return min(max(page_size, 4096), MAX_RECORD)


def check_format(fmt: EventFormat, max_record: int = MAX_RECORD) -> str | None:
    """Why ``fmt``'s fields cannot be decoded (None when they can): a field whose offset and
    size do not fit in ``max_record`` bytes, or a ``__data_loc``/``__rel_loc`` that is not 2 or
    4 bytes.  Checked before a decoder is compiled: no size or offset from the file sizes
    anything before this."""
    for f in fmt.fields:
        if f.offset < 0 or f.size < 0 or f.offset + f.size > max_record:
            return (f"field {f.name} at offset {f.offset} size {f.size} lies outside any record "
                    f"(at most {max_record} bytes)")
        if f.kind in ("dynamic", "rel") and f.size not in (2, 4):
            return f"field {f.name}: a {f.size}-byte __data_loc/__rel_loc (2 or 4 expected)"
    return None


def _raw_decoder(buf: bytes, start: int, length: int) -> dict[str, Any]:
    return {"raw": bytes(buf[start:start + length])}


def compile_decoder(fmt: EventFormat, big: bool, max_record: int = MAX_RECORD, text: bool = True
                    ) -> Callable[[bytes, int, int], dict[str, Any]]:
    """A function ``(buf, start, length) -> fields`` for the event's own fields.

    The scalars are read with one precompiled :class:`struct.Struct`; arrays,
    strings, ``__data_loc``/``__rel_loc`` and flexible tails each get a small
    closure.  Fields that fall outside the record decode as None.  A format
    :func:`check_format` rejects (``fmt.bad`` is set to the reason) gets a
    decoder that keeps the record's bytes: ``{"raw": bytes}``.  ``text=False``:
    char fields give their bytes (cut at the NUL) instead of a str, so the
    fields that hold bytes that are not UTF-8 can be named (:mod:`dissect.ftrace.utf8`).
    """
    if fmt.bad is None:
        fmt.bad = check_format(fmt, max_record)
    if fmt.bad is not None:
        return _raw_decoder
    e = ">" if big else "<"
    own = fmt.own_fields
    scalars = sorted((f for f in own if f.kind == "scalar"), key=lambda f: f.offset)
    code, pos, names = e, 0, []
    ok = True
    for f in scalars:
        if f.offset < pos:
            ok = False
            break
        gap = f.offset - pos
        code += (f"{gap}x" if gap else "") + _SCALAR[(f.size, f.signed and not f.is_pointer)]
        pos = f.offset + f.size
        names.append(f.name)
    if not ok:  # overlapping scalars (unusual): read them one by one
        scalars, names, code, pos = [], [], e, 0
    sstruct = struct.Struct(code)
    extras: list[tuple[str, Callable[[bytes, int, int], Any]]] = []
    loose = [] if ok else [f for f in own if f.kind == "scalar"]
    for f in loose:
        st = struct.Struct(e + _SCALAR[(f.size, f.signed and not f.is_pointer)])
        extras.append((f.name, _scalar_reader(st, f.offset)))
    loc_st = struct.Struct(e + "I")
    cstr = _cstr if text else _cbytes
    for f in own:
        if f.kind == "scalar":
            continue
        extras.append((f.name, _field_reader(f, e, loc_st, fmt.system == "ftrace" and fmt.name == "raw_data",
                                             cstr)))
    need = pos

    def decode(buf: bytes, start: int, length: int) -> dict[str, Any]:
        if need <= length:
            out = dict(zip(names, sstruct.unpack_from(buf, start)))
        else:
            out = {}
            for f in scalars:
                if f.offset + f.size <= length:
                    out[f.name] = struct.unpack_from(
                        e + _SCALAR[(f.size, f.signed and not f.is_pointer)], buf, start + f.offset)[0]
                else:
                    out[f.name] = None
        for name, rd in extras:
            out[name] = rd(buf, start, length)
        return out

    return decode


def _scalar_reader(st: struct.Struct, off: int):
    def rd(buf, start, length):
        if off + st.size > length:
            return None
        return st.unpack_from(buf, start + off)[0]
    return rd


def _elements(raw: bytes, f: Field, e: str, cstr: Callable[[bytes], Any]) -> Any:
    if f.is_char:
        return cstr(raw)
    code = _SCALAR.get((f.elem_size, f.signed and not f.is_pointer))
    if code is None or len(raw) % f.elem_size:
        return bytes(raw)
    return list(struct.unpack(e + code * (len(raw) // f.elem_size), raw))


def _field_reader(f: Field, e: str, loc_st: struct.Struct, binary_tail: bool, cstr: Callable[[bytes], Any]):
    off, size = f.offset, f.size
    if f.kind in ("array", "string"):
        def rd(buf, start, length):
            if off + size > length:
                return None
            return _elements(buf[start + off:start + off + size], f, e, cstr)
        return rd
    if f.kind == "flex":
        def rd(buf, start, length):
            if off > length:
                return None
            raw = buf[start + off:start + length]
            if binary_tail or not f.is_char:
                return bytes(raw)
            return cstr(raw)
        return rd
    rel = f.kind == "rel"
    two = size == 2

    def rd(buf, start, length):
        if off + size > length:
            return None
        if two:  # 2-byte __data_loc: offset only, data runs to the end of the record
            loc_off = struct.unpack_from(e + "H", buf, start + off)[0]
            loc_len = max(0, length - loc_off)
        else:
            v = loc_st.unpack_from(buf, start + off)[0]
            loc_off, loc_len = v & 0xFFFF, v >> 16
        if rel:
            loc_off += off + size
        if loc_off + loc_len > length:
            return None
        return _elements(buf[start + loc_off:start + loc_off + loc_len], f, e, cstr)
    return rd


# --------------------------------------------------------------------------
# kallsyms and printk strings (lazy: parsed on the first lookup)

class Kallsyms:
    """Address → function name, as libtraceevent resolves ``%ps``."""

    def __init__(self, text: bytes | str):
        self._text = text
        self._addrs: list[int] | None = None
        self._names: list[str] = []
        self._cache: dict[int, str | None] = {}

    def _load(self) -> None:
        text = self._text.decode("utf-8", "backslashreplace") if isinstance(self._text, bytes) else self._text
        pairs = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            try:
                addr = int(parts[0], 16)
            except ValueError:
                continue
            pairs.append((addr, parts[2]))  # every symbol type, as libtraceevent's function map
        pairs.sort()
        self._addrs = [a for a, _ in pairs]
        self._names = [n for _, n in pairs]
        self._text = b""

    def lookup(self, addr: int) -> str | None:
        r = self._cache.get(addr, 0)
        if r != 0:
            return r  # type: ignore[return-value]
        if self._addrs is None:
            self._load()
        assert self._addrs is not None
        i = bisect.bisect_right(self._addrs, addr) - 1
        # libtraceevent needs the next symbol to bound the function
        name = self._names[i] if 0 <= i < len(self._addrs) - 1 else None
        self._cache[addr] = name
        return name

    def symbol(self, addr: int) -> str:
        name = self.lookup(addr)
        return name if name is not None else f"0x{addr:x}"


_ESC = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "r": "\r", "a": "\a", "b": "\b", "f": "\f",
        "v": "\v", "0": "\0"}


def c_unescape(s: str) -> str:
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(_ESC.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_printk(text: bytes | str) -> dict[int, str]:
    """``0x<addr> : "<string>"`` lines → {addr: string} (C escapes resolved)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    out: dict[int, str] = {}
    for line in text.splitlines():
        addr, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            a = int(addr.strip(), 16)
        except ValueError:
            continue
        rest = rest.strip()
        if rest.startswith('"'):
            rest = rest[1:]
        if rest.endswith('"'):
            rest = rest[:-1]
        out[a] = c_unescape(rest)
    return out


def parse_cmdlines(text: bytes | str, skipped: list[int] | None = None) -> dict[int, str]:
    """``<pid> <comm>`` lines → {pid: comm}.

    A pid is a ``pid_t`` (events carry it as the s32 ``common_pid``): a line whose pid is not an
    integer in that range cannot name any event's process and is skipped, its 1-based number
    appended to ``skipped`` (empty lines are not counted).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    out: dict[int, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        pid, sep, comm = line.partition(" ")
        try:
            v = int(pid) if sep else None
        except ValueError:
            v = None
        if v is not None and -(1 << 31) <= v < (1 << 31):
            out[v] = comm
        elif line.strip() and skipped is not None:
            skipped.append(n)
    return out


# --------------------------------------------------------------------------
# bprint: vbin_printf binary arguments (trace-dat.md §7)

_CONV_RE = re.compile(r"%(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?"
                      r"(?P<len>hh|h|ll|l|L|z|Z|j|t|q)?(?P<conv>[diouxXcspPfFeEgGaAn%])(?P<pext>[sSfFbBhHrRmMiIdDUOaA]?)")


def render_printf(fmt: str, args: bytes, long_size: int, big: bool,
                  ksyms: Kallsyms | None, errors: str = ERRORS) -> str:
    """Format ``fmt`` with arguments unpacked from ``args`` the way libtraceevent does
    (``%s`` arguments decoded with ``errors``)."""
    e = ">" if big else "<"
    out: list[str] = []
    pos = 0
    last = 0
    n = len(args)

    def take(size: int, signed: bool) -> int:
        nonlocal pos
        pos = (pos + 3) & ~3
        if pos + size > n:
            pos = n
            return 0
        code = {4: "i", 8: "q", 2: "h", 1: "b"}[size]
        v = struct.unpack_from(e + (code if signed else code.upper()), args, pos)[0]
        pos += size
        return v

    for m in _CONV_RE.finditer(fmt):
        out.append(fmt[last:m.start()])
        last = m.end()
        conv, ln, flags = m.group("conv"), m.group("len") or "", m.group("flags")
        pext = m.group("pext")
        if conv == "%":
            out.append("%")
            last = m.end() - len(pext)
            continue
        width = m.group("width")
        if width == "*":
            width = str(take(4, True))
        prec = m.group("prec")
        if prec == "*":
            prec = str(take(4, True))
        spec = "%" + flags + (width or "") + ("." + prec if prec is not None else "")
        if conv == "s":
            last = m.end() - len(pext)
            end = args.find(b"\0", pos)
            if end < 0:
                end = n
            s = args[pos:end].decode("utf-8", errors)
            pos = min(n, end + 1)
            out.append((spec + "s") % s)
            continue
        if conv in "pP":
            v = take(long_size, False)
            if pext in ("s", "S", "f", "F") and ksyms is not None:
                out.append(ksyms.symbol(v))
            else:
                last = m.end() - len(pext)
                out.append(f"0x{v:x}")
            continue
        last = m.end() - len(pext)
        if ln in ("ll", "L", "q", "j"):
            size = 8
        elif ln in ("l", "z", "Z", "t"):
            size = long_size
        else:
            size = 4
        signed = conv in "di"
        v = take(size, signed)
        if conv == "c":
            out.append((spec + "c") % chr(v & 0xFF))
        elif conv in "diu":
            out.append((spec + "d") % v)
        elif conv in "xXo":
            out.append((spec + conv) % v)
        else:
            out.append((spec + "d") % v)
    out.append(fmt[last:])
    return "".join(out)


# --------------------------------------------------------------------------
# rendering as trace-cmd report prints the payload after "<event>: "

_SCHED_STATES = "SDTtZXxW"


def _sched_state(val: int) -> str:
    letters = [c for i, c in enumerate(_SCHED_STATES) if val & (1 << i)]
    return "|".join(letters) if letters else "R"


def render_sched_switch(f: dict[str, Any]) -> str:
    """libtraceevent's sched_switch plugin: ``prev:pid [prio] S ==> next:pid [prio]``."""
    return (f"{f.get('prev_comm')}:{f.get('prev_pid')} [{f.get('prev_prio')}] "
            f"{_sched_state(f.get('prev_state') or 0)} ==> "
            f"{f.get('next_comm')}:{f.get('next_pid')} [{f.get('next_prio')}]")


def strip_nl(s: str) -> str:
    return s[:-1] if s.endswith("\n") else s


def render_raw_data(f: dict[str, Any]) -> str:
    buf = f.get("buf") or b""
    return f"# {f.get('id', 0):x}" + (" " + bytes(buf).hex(" ") if buf else "")
