# SPDX-License-Identifier: GPL-2.0-only
"""First steps of a new user (issue 11 §7): readable kernel addresses, examples that run from a
fresh clone and write only into ignored folders, the notebook extra."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_cli

IP = 0xFFFFFFFF81498B1A
KALLSYMS = "ffffffff81498a00 T tracing_mark_write\nffffffff81498c00 T tracing_mark_open\n"


def _marker_trace(tmp_path, kallsyms):
    from dissect.ftrace.event import Event
    from dissect.ftrace.writer import write_trace_dat

    ev = Event("trace-dat", 5_136_334_766_036, 0, 100, "qemu-system-x86", "ftrace", "print",
               {"ip": IP, "buf": "migrate_set_state new state setup\n"}, "migrate_set_state new state setup")
    return write_trace_dat(tmp_path / "m.dat", [ev], kallsyms=kallsyms)


@pytest.mark.parametrize("kallsyms,shown", [(KALLSYMS, "ip=0xffffffff81498b1a <tracing_mark_write>"),
                                            ("", "ip=0xffffffff81498b1a,")])  # "": no kallsyms
def test_print_event_ip_is_hex_with_its_symbol(tmp_path, kallsyms, shown):
    path = _marker_trace(tmp_path, kallsyms)
    human = run_cli("decode", str(path))
    assert human.returncode == 0, human.stderr
    line = next(ln for ln in human.stdout.splitlines() if ln.startswith("event"))
    assert shown in line and str(IP) not in line
    js = [json.loads(x) for x in run_cli("decode", "--json", str(path)).stdout.splitlines()]
    ev = next(o for o in js if o["kind"] == "event")
    assert ev["fields"]["ip"] == IP  # JSON keeps the integer (json-lines.md)
    assert ev.get("ip_symbol") == ("tracing_mark_write" if kallsyms else None)
