# SPDX-License-Identifier: GPL-2.0-only
"""First steps of a new user (issue 11 §7): readable kernel addresses, examples that run from a
fresh clone and write only into ignored folders, the notebook extra."""
from __future__ import annotations

import functools
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


# -- every README and --help example runs from a fresh clone and writes only into out/ -------------

#: examples that need what a fresh clone cannot have: a live capture (tcpdump, --follow,
#: --interface), a running QEMU (record), a Dask scheduler
_LIVE = ("tcpdump", "--follow", "migtrace record", "--interface", "--scheduler")
_SUFFIXES = (".pcap", ".pcapng", ".dat", ".bin", ".mig", ".log", ".txt", ".json", ".parquet", ".toml")


def _readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Examples", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [ln.strip() for ln in block.splitlines() if ln.strip().startswith("migtrace ")]


@functools.lru_cache(maxsize=1)
def _help_examples() -> tuple[str, ...]:
    from analysis.cli.main import SUBCOMMANDS

    out = []
    for name in SUBCOMMANDS:
        proc = run_cli(name, "--help")
        if proc.returncode != 0:
            continue
        lines = proc.stdout.split("examples:", 1)[1].splitlines() if "examples:" in proc.stdout else []
        joined, cur = [], ""
        for ln in lines:
            cur += " " + ln.strip().rstrip("\\")
            if not ln.rstrip().endswith("\\"):
                joined.append(cur.strip())
                cur = ""
        out += [ln for ln in joined if "migtrace " in ln]
    return tuple(out)


def _words(example: str) -> list[str]:
    cmd = example.split("#", 1)[0].split(" | ")[0] if example.startswith("migtrace") else example
    return cmd.split()


def test_examples_name_bundled_inputs_and_write_into_out():
    examples = _readme_examples() + list(_help_examples())
    assert len(examples) > 30
    ignored = [ln.strip() for ln in (ROOT / ".gitignore").read_text().splitlines()]
    assert "out/" in ignored or "/out/" in ignored
    outputs, problems = set(), []
    for ex in examples:
        if any(x in ex for x in _LIVE):
            continue
        w = _words(ex)
        if "-o" in w:
            outputs.add(w[w.index("-o") + 1].rstrip("/"))
    for ex in examples:
        if any(x in ex for x in _LIVE):
            continue
        w = _words(ex)
        for i, tok in enumerate(w[2:], 2):
            if w[i - 1] == "-o":
                if not tok.startswith("out/"):
                    problems.append(f"{ex}: writes {tok} outside out/")
                continue
            if tok.startswith("-") or w[i - 1] in ("--baseline", "--candidate", "--by", "--threshold",
                                                    "--profile", "--firmware", "--policy", "--qemu"):
                continue
            if "/" in tok or tok.endswith(_SUFFIXES):
                if not (ROOT / tok).exists() and tok.rstrip("/") not in outputs:
                    problems.append(f"{ex}: {tok} neither bundled nor written by an example")
    assert problems == []


def test_sample_blobs_are_what_make_blobs_writes(tmp_path):
    import runpy

    mod = runpy.run_path(str(ROOT / "traces" / "generated" / "make_blobs.py"))
    for name, data in mod["blobs"]().items():
        assert (ROOT / "traces" / "generated" / name).read_bytes() == data, name


@pytest.mark.parametrize("argv,expect", [
    (["decode", "--as", "dev-parts", "traces/generated/vf0-parts.bin"], {"dev_part": 22}),
    (["decode", "--as", "vfio-stream", "traces/generated/vf0-saved-device-data.bin"],
     {"vfio_record": 3, "dev_part": 66}),
    (["decode", "--as", "admin-completion", "--opcode", "0xf", "--subtype", "1",
      "traces/generated/vf0-dev-parts-get-completion.bin"], {"admin_result": 1, "dev_part": 22}),
])
def test_blob_examples_decode_cleanly(argv, expect):
    proc = run_cli(*argv, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    # 2 queue pairs: features x2, common cfg x2, status, 5 VQ_CFG, 5 VQ_NOTIFY_CFG, 7 net CVQ parts
    assert summary["counts"] == expect and summary["errors"] == summary["warnings"] == 0


def test_examples_writing_files_work_in_a_fresh_folder(tmp_path):
    """The examples that write files, run where out/ does not exist yet (a fresh clone)."""
    import os
    import subprocess
    import sys

    (tmp_path / "traces").symlink_to(ROOT / "traces")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for ex in _readme_examples() + list(_help_examples()):
        w = _words(ex)
        if "-o" not in w or w[1] not in ("extract", "plot", "export") or any(x in ex for x in _LIVE):
            continue
        proc = subprocess.run([sys.executable, "-m", "analysis.cli.main", *w[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (ex, proc.stderr)
        assert (tmp_path / w[w.index("-o") + 1]).stat().st_size > 0, ex
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"main.mig", "timeline.png", "downtime.svg",
                                                             "two-vfs.json", "two-vfs"}


def test_notebook_extra_brings_a_notebook_front_end():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower() for d in extras["notebook"]}
    assert "jupyterlab" in names and "ipykernel" in names  # `pip install migtrace[notebook]` opens them
    assert any(d.startswith("playwright") for d in extras["test"])  # the browser tests' driver
