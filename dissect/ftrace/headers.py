# SPDX-License-Identifier: GPL-2.0-only
"""trace.dat header structures (spec: trace-dat.md §1–§5), declared with construct.

Every structure whose byte order depends on the file is built by a factory
parameterised by endianness (and, where it matters, the kernel long size),
the way construct's ``gallery/elf.py`` does it.  Factories are cached: a
reader builds each variant once.

The ring-buffer page header and event header are declared here too
(:func:`page_header`, :func:`event_header`): they are the declarative twins
of the hand-written fast walk in :mod:`dissect.ftrace.ring`, which the tests
hold equal to them.
"""
from __future__ import annotations

from enum import IntEnum
from functools import lru_cache

from construct import (Array, BitsInteger, BitStruct, ByteSwapped, Const, GreedyBytes, Int8ub, Int16sb,
                       Int16sl, Int16ub, Int16ul, Int32sb, Int32sl, Int32ub, Int32ul, Int64sb,
                       Int64sl, Int64ub, Int64ul, NullTerminated, Struct, this)

MAGIC = b"\x17\x08\x44tracing"

#: A NUL-terminated string kept as bytes: the reader decodes it, so bytes that are not
#: UTF-8 are kept (``\\xNN``) and reported, never a parse error (``TraceDatLayout._text``).
CBytes = NullTerminated(GreedyBytes)

# Option / section ids (trace-dat.md §4).
OPTION_NAMES: dict[int, str] = {
    0: "DONE", 1: "DATE", 2: "CPUSTAT", 3: "BUFFER", 4: "TRACECLOCK", 5: "UNAME", 6: "HOOK",
    7: "OFFSET", 8: "CPUCOUNT", 9: "VERSION", 10: "PROCMAPS", 11: "TRACEID", 12: "TIME_SHIFT",
    13: "GUEST", 14: "TSC2NSEC", 15: "STRINGS", 16: "HEADER_INFO", 17: "FTRACE_EVENTS",
    18: "EVENT_FORMATS", 19: "KALLSYMS", 20: "PRINTK", 21: "CMDLINES", 22: "BUFFER_TEXT",
    23: "BTF_FILE", 24: "LAST_BOOT_INFO", 25: "MODULES_FILE",
}
OPTION_IDS: dict[str, int] = {v: k for k, v in OPTION_NAMES.items()}
#: The same ids as names (``OptionId.DATE == 1``), for the reader and the writer.
OptionId = IntEnum("OptionId", OPTION_IDS)

SECTION_FL_COMPRESS = 1

# Ring-buffer constants (trace-dat.md §5).
MISSING_EVENTS = 1 << 31
MISSING_STORED = 1 << 30
COMMIT_MASK = (1 << 27) - 1
TYPE_PADDING = 29
TYPE_TIME_EXTEND = 30
TYPE_TIME_STAMP = 31
TYPE_DATA_MAX = 28


def _ints(big: bool):
    if big:
        return Int16ub, Int32ub, Int64ub, Int16sb, Int32sb, Int64sb
    return Int16ul, Int32ul, Int64ul, Int16sl, Int32sl, Int64sl


# The fixed start of every file: magic, "tracing", version string, endianness,
# user-space long size.  The page size that follows is in the file's byte order
# and is read with :func:`page_size_field`.
initial_header = Struct(
    "magic" / Const(b"\x17\x08\x44"),
    "tracing" / Const(b"tracing"),
    "version" / CBytes,
    "endian" / Int8ub,
    "long_size" / Int8ub,
)


@lru_cache(maxsize=None)
def page_size_field(big: bool):
    return Int32ub if big else Int32ul


@lru_cache(maxsize=None)
def v7_preamble(big: bool) -> Struct:
    """Compression name and version, then the offset of the first OPTIONS section (§3)."""
    _, _, u64, *_ = _ints(big)
    return Struct("compression" / CBytes, "compression_version" / CBytes,
                  "options_offset" / u64)


@lru_cache(maxsize=None)
def section_header(big: bool) -> Struct:
    """The 16-byte v7 section header (§3.1)."""
    u16, u32, u64, *_ = _ints(big)
    return Struct("id" / u16, "flags" / u16, "string_id" / u32, "size" / u64)


@lru_cache(maxsize=None)
def compressed_block(big: bool) -> Struct:
    """Header of one compressed blob: sizes before the blob (§3.2, §3.5)."""
    _, u32, *_ = _ints(big)
    return Struct("compressed_size" / u32, "uncompressed_size" / u32)


@lru_cache(maxsize=None)
def option_header(big: bool) -> Struct:
    """``{u16 id, u32 size}`` before each option's data (§2, §3.4)."""
    u16, u32, *_ = _ints(big)
    return Struct("id" / u16, "size" / u32)


@lru_cache(maxsize=None)
def buffer_option_v7(big: bool) -> Struct:
    """BUFFER option (id 3) of a v7 file (§4)."""
    _, u32, u64, *_ = _ints(big)
    return Struct(
        "offset" / u64,
        "name" / CBytes,
        "clock" / CBytes,
        "page_size" / u32,
        "cpu_count" / u32,
        # parsed from the option's own bytes, so a lying count runs out of data
        "cpus" / Array(this.cpu_count, Struct("cpu" / u32, "offset" / u64, "size" / u64)),
    )


@lru_cache(maxsize=None)
def buffer_option_v6(big: bool) -> Struct:
    """BUFFER option (id 3) of a v6 file: offset of the instance's flyrecord + name."""
    _, _, u64, *_ = _ints(big)
    return Struct("offset" / u64, "name" / CBytes)


@lru_cache(maxsize=None)
def tsc2nsec_option(big: bool) -> Struct:
    """TSC2NSEC option (id 14): ``ns = ((ts * mult) >> shift) + offset``."""
    _, u32, u64, _, s32, s64 = _ints(big)
    return Struct("mult" / u32, "shift" / u32, "offset" / u64)


@lru_cache(maxsize=None)
def cpu_entry_v6(big: bool) -> Struct:
    """One entry of the v6 flyrecord per-CPU table: file offset and size."""
    _, _, u64, *_ = _ints(big)
    return Struct("offset" / u64, "size" / u64)


@lru_cache(maxsize=None)
def page_header(big: bool, long_size: int) -> Struct:
    """Ring-buffer page header (§5.1): u64 timestamp, kernel-long commit."""
    _, u32, u64, *_ = _ints(big)
    return Struct("timestamp" / u64, "commit" / (u64 if long_size == 8 else u32))


@lru_cache(maxsize=None)
def event_header(big: bool) -> Struct:
    """One 32-bit event header (§5.2), declaratively.

    Little-endian: type_len is the low 5 bits of the u32 read little-endian;
    big-endian: the top 5 bits of the u32 read big-endian.  Expressed on the
    4 raw bytes: for big-endian the bit fields come in order
    (type_len, time_delta); for little-endian the word is byte-reversed first.
    """
    if big:
        return BitStruct("type_len" / BitsInteger(5), "time_delta" / BitsInteger(27))
    return ByteSwapped(BitStruct("time_delta" / BitsInteger(27), "type_len" / BitsInteger(5)))
