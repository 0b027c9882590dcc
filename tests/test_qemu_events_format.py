# SPDX-License-Identifier: GPL-2.0-only
"""trace-events syntax, printf conversions, 511-byte truncation, QEMU's own trace-events-all."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect.qemu.trace_events import FTRACE_MAX_LINE, Catalogue, format_event, parse_declarations
from dissect.qemu.trace_events_format import CompiledFormat, tokenize

from tests.conftest import TRACES

TRACE_EVENTS_ALL = Path("/usr/share/qemu/trace-events-all")


def cf(fmt: str, *names: str, types: tuple[str, ...] | None = None) -> CompiledFormat:
    return CompiledFormat(fmt, names, types or ("int",) * len(names))


# -- the trace-events syntax ---------------------------------------------------

def test_declaration_with_pri_macros_escapes_and_properties():
    text = ('# comment\n\n'
            'disable vcpu foo_bar(uint64_t addr, const char *name, void *p) '
            '"addr 0x%" PRIx64 " name \\"%s\\" p %p"\n'
            'plain(void) ""\n'
            'noformat(int x)\n')
    decls, findings = parse_declarations(text)
    assert findings == []
    d = decls[0]
    assert (d.name, d.arg_names, d.arg_types, d.properties) == (
        "foo_bar", ("addr", "name", "p"), ("uint64_t", "const char *", "void *"), ("disable", "vcpu"))
    assert d.fmt == 'addr 0x%lx name "%s" p %p'
    assert d.line == 3
    assert (decls[1].name, decls[1].arg_names, decls[1].fmt) == ("plain", (), "")
    assert (decls[2].name, decls[2].fmt) == ("noformat", "")


def test_annotations_set_variant_and_versions_of_the_next_declaration_only():
    text = ("# @variant 8.1-hex 8.1-9.1\n"
            'a(const char *name) " (%s)"\n'
            'b(void) ""\n'
            "# @versions 10.0-\n"
            'c(void) ""\n')
    decls, _ = parse_declarations(text)
    assert [(d.name, d.variant, d.versions) for d in decls] == [
        ("a", "8.1-hex", "8.1-9.1"), ("b", None, None), ("c", None, "10.0-")]


def test_bad_declaration_lines_become_findings_with_line_and_offset():
    text = 'good(int x) "%d"\nthis is not a declaration\nbad(int) "%d"\n'
    decls, findings = parse_declarations(text, "t-e")
    assert [d.name for d in decls] == ["good"]
    assert [(f.code, f.context["line"], f.offset) for f in findings] == [
        ("trace_events_bad_line", 2, 17), ("trace_events_bad_line", 3, 43)]


# -- printf conversions ----------------------------------------------------------

def test_tokenize_splits_literals_and_conversions():
    toks = tokenize("a %08lx b %-6s%%c %*d")
    assert [t if isinstance(t, str) else t.spec for t in toks] == ["a ", "%08lx", " b ", "%-6s", "%c ", "%*d"]


@pytest.mark.parametrize("fmt,names,text,args", [
    ("%d", ("v",), "-17", {"v": -17}),
    ("%u", ("v",), "4294967295", {"v": 4294967295}),
    ("0x%lx", ("v",), "0xdeadbeef", {"v": 0xDEADBEEF}),
    ("%X", ("v",), "BEEF", {"v": 0xBEEF}),
    ("%#x", ("v",), "0x1f", {"v": 31}),
    ("%#x", ("v",), "0", {"v": 0}),
    ("%o", ("v",), "17", {"v": 15}),
    ("%08x", ("v",), "0000002a", {"v": 42}),
    ("[%5d]", ("v",), "[   42]", {"v": 42}),
    ("[%-5d]", ("v",), "[42   ]", {"v": 42}),
    ("%p", ("p",), "0x7f0000001000", {"p": 0x7F0000001000}),
    ("%p", ("p",), "(nil)", {"p": 0}),
    ("%c%c", ("a", "b"), "ok", {"a": "o", "b": "k"}),
    ("100%% %s", ("s",), "100% done", {"s": "done"}),
    ("%s: %s", ("a", "b"), "x: y: z", {"a": "x", "b": "y: z"}),
    ("%ld", ("v",), "-9223372036854775808", {"v": -2**63}),
    ("%f", ("v",), "1.500000", {"v": 1.5}),
    ("%*d|", ("w", "v"), "   7|", {"v": 7}),
    ("line1\nline2 %d", ("v",), "line1\nline2 3", {"v": 3}),
])
def test_match(fmt, names, text, args):
    assert cf(fmt, *names).match(text) == args


@pytest.mark.parametrize("fmt,names,text", [
    ("%u", ("v",), "-1"),
    ("%x", ("v",), "0x10"),      # PRIx64 prints no 0x; the literal is in the format when wanted
    ("%d", ("v",), ""),
    ("a %d", ("v",), "b 1"),
    ("%p", ("p",), "nil"),
])
def test_no_match(fmt, names, text):
    assert cf(fmt, *names).match(text) is None


@pytest.mark.parametrize("fmt,names,args,text", [
    ("%d", ("v",), {"v": -1}, "-1"),
    ("%d", ("v",), {"v": 0xFFFFFFFF}, "-1"),                  # an int's bits printed signed
    ("%u", ("v",), {"v": -1}, "4294967295"),
    ("%lu", ("v",), {"v": -1}, "18446744073709551615"),
    ("%x", ("v",), {"v": 255}, "ff"),
    ("%016lx", ("v",), {"v": 255}, "00000000000000ff"),
    ("%hhu", ("v",), {"v": 257}, "1"),
    ("%p", ("p",), {"p": 0}, "(nil)"),
    ("%p", ("p",), {"p": 4096}, "0x1000"),
    ("%s", ("s",), {"s": None}, "(null)"),
    ("%-4s|", ("s",), {"s": "ab"}, "ab  |"),
    ("%c", ("c",), {"c": 65}, "A"),
    ("%*d", ("w", "v"), {"w": 4, "v": 7}, "   7"),
])
def test_render(fmt, names, args, text):
    assert cf(fmt, *names).render(args) == text


def test_render_needs_every_declared_argument():
    with pytest.raises(TypeError):
        cf("%d %d", "a", "b").render({"a": 1})


@settings(max_examples=60, deadline=None)
@given(name=st.from_regex(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]", fullmatch=True),
       sizes=st.lists(st.integers(0, 2**64 - 1), min_size=5, max_size=5),
       variant=st.sampled_from(["8.1-hex", "9.2-dec"]))
def test_pending_estimate_round_trip(name, sizes, variant):
    args = dict(zip(("precopy", "postcopy", "precopy_init_size", "precopy_dirty_size"), sizes))
    line = format_event("vfio_state_pending_estimate", variant, name=name, **args)
    q = Catalogue.default().parse(line)
    assert (q.version_variant, q.args) == (variant, {"name": name, **args})


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_declaration_round_trips_random_arguments(data):
    cat = Catalogue.default()
    d = data.draw(st.sampled_from(cat.declarations()))
    args = {}
    for t, n, conv in zip(d.arg_types, d.arg_names,
                          [c for c in tokenize(d.fmt) if not isinstance(c, str)]):
        if conv.conv == "s":
            # strings the format can delimit: no spaces/commas/parentheses
            args[n] = data.draw(st.from_regex(r"[A-Za-z0-9_./:-]{1,12}", fullmatch=True))
        elif conv.conv in "uxXp" or conv.length in ("l",) and conv.conv != "d":
            hi = 2**64 - 1 if conv.length == "l" or conv.conv == "p" else 2**32 - 1
            args[n] = data.draw(st.integers(0, hi))
        else:
            hi = 2**63 - 1 if conv.length == "l" else 2**31 - 1
            args[n] = data.draw(st.integers(-hi - 1, hi))
    line = cat.format(d.name, d.variant, **args)
    q = cat.parse(line)
    assert q is not None and q.matched
    # an earlier variant may claim the same text only if it yields the same values
    assert q.event == d.name
    if q.version_variant == d.variant:
        assert q.args == args


# -- 511-byte truncation (ftrace backend) --------------------------------------

def test_truncated_line_parses_what_it_can_and_is_flagged():
    idstr = "0000:3b:00.1/" + "x" * 480
    full = format_event("vmstate_downtime_save", type="non-iterable", idstr=idstr, instance_id=0, downtime=7)
    assert len(full) > FTRACE_MAX_LINE
    cut = format_event("vmstate_downtime_save", type="non-iterable", idstr=idstr, instance_id=0, downtime=7,
                       truncate=True)
    assert cut == full[:511]
    q = Catalogue.default().parse(cut)
    assert q.matched and q.truncated
    assert q.args == {"type": "non-iterable", "idstr": cut[len("vmstate_downtime_save type=non-iterable idstr="):]}


def test_truncated_number_at_the_cut_is_dropped():
    name = "d" * (511 - len("vfio_save_iterate  (") - len(") precopy initial size ") - 4)
    line = format_event("vfio_save_iterate", "9.2-dec", name=name, precopy_init_size=123456789,
                        precopy_dirty_size=5, truncate=True)
    assert len(line) == 511 and line.endswith("size 1234")
    q = Catalogue.default().parse(line)
    assert q.truncated and q.matched and q.version_variant == "9.2-dec"
    assert q.args == {"name": name}           # 1234... is cut: not reported as a value


def test_a_511_byte_line_ending_in_a_number_drops_that_number():
    """A line of exactly 511 bytes may be complete or cut: the text cannot say,
    so a number that ends it is not reported (its last digits may be lost)."""
    name = "n" * (511 - len("vfio_save_block  () data_size 1"))
    line = format_event("vfio_save_block", name=name, data_size=1)
    assert len(line) == 511
    q = Catalogue.default().parse(line)
    assert q.matched and q.truncated and q.args == {"name": name}
    # the ftrace backend cutting a long hex value (as in traces/real/ftrace/*.dat)
    cut = ("vfio_load_state  (0000:00:05.0) data 0x" + "f" * 600)[:511]
    q = Catalogue.default().parse(cut)
    assert q.matched and q.truncated and q.args == {"name": "0000:00:05.0"}


def test_a_511_byte_line_ending_in_literal_text_is_complete():
    name = "n" * (511 - len("vfio_save_cleanup  ()"))
    q = Catalogue.default().parse(format_event("vfio_save_cleanup", name=name))
    assert q.truncated and q.args == {"name": name}


def test_short_lines_are_never_flagged_truncated():
    assert not Catalogue.default().parse("vfio_save_block  (d) data_size 1").truncated


# -- an installed QEMU's trace-events-all ----------------------------------------

@pytest.fixture(scope="module")
def qemu_all() -> Catalogue:
    if not TRACE_EVENTS_ALL.is_file():
        pytest.skip(f"{TRACE_EVENTS_ALL} not installed (Debian package qemu-system-data)")
    return Catalogue.from_file(TRACE_EVENTS_ALL)


def test_trace_events_all_loads_without_findings(qemu_all):
    assert len(qemu_all) > 4000
    assert qemu_all.findings == []
    assert qemu_all.compile_all() == []
    d = qemu_all.declarations("vfio_save_buffer")[0]
    assert d.fmt == " (%s) Offset 0x%lx size 0x%lx pending 0x%lx"   # QEMU 7.2: the v1 protocol


def test_trace_events_all_parses_qemu_72_lines(qemu_all):
    assert qemu_all.parse("vfio_save_buffer  (0000:3b:00.1) Offset 0x0 size 0x1000 pending 0x0").args == {
        "name": "0000:3b:00.1", "data_offset": 0, "data_size": 4096, "pending": 0}
    q = qemu_all.parse("vmstate_save_state_loop timer/cpu_ticks_offset[1]")
    assert q.args == {"name": "timer", "field": "cpu_ticks_offset", "n_elems": 1}
    assert qemu_all.parse("migration_set_outgoing_channel ioc=0x562afbe28e30 ioctype=qio-channel-command "
                          "hostname=(null) err=(nil)").args == {
        "ioc": 0x562AFBE28E30, "ioctype": "qio-channel-command", "hostname": "(null)", "err": 0}


_LOG = re.compile(r"^\d+@\d+\.\d+:(.*)$")


@pytest.mark.parametrize("log", sorted(p.name for p in (TRACES / "real").glob("*.log")))
def test_every_line_of_the_real_qemu_72_logs_is_typed(qemu_all, log):
    """The lead's real QEMU 7.2 log-backend traces: every event line parses with the
    installed QEMU's own trace-events-all, and the built-in catalogue agrees on the
    events it knows."""
    default = Catalogue.default()
    n = known = 0
    for line in (TRACES / "real" / log).read_text().splitlines():
        m = _LOG.match(line)
        if not m:
            continue
        n += 1
        q = qemu_all.parse(m.group(1))
        assert q is not None and q.matched, line
        d = default.parse(m.group(1))
        if d is not None:
            known += 1
            assert d.matched and d.args == q.args, line
    assert n > 50 and known > n // 2
