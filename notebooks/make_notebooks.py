# SPDX-License-Identifier: GPL-2.0-only
"""Write the notebooks of this folder and run them, so they are committed with their outputs
(small PNG figures) and read on a forge without running: ``python3 notebooks/make_notebooks.py``
(``--no-execute``: cells only).

Keeping the cells here keeps the committed .ipynb files reviewable and
regenerable; tests/test_notebooks.py executes the .ipynb files again.  Outputs
never show this machine's paths (``scrub``).
"""
from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

SETUP = '''\
from pathlib import Path
import matplotlib
%matplotlib inline
%config InlineBackend.figure_formats = ["png"]
matplotlib.rcParams["figure.dpi"] = 56  # small PNGs in the committed outputs
import pandas as pd
import analysis

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "traces").is_dir())
TRACES = ROOT / "traces"
pd.set_option("display.max_columns", 30)

def sim_runs():
    """Bundled simulated runs (traces/sim/), else one simulated here into a temp folder."""
    runs = sorted(p.parent for p in (TRACES / "sim").rglob("run.json"))
    if runs:
        return runs
    import tempfile
    from analysis.simulate import simulate
    return [simulate("default", 0, Path(tempfile.mkdtemp()) / "default-0")]
'''

NOTEBOOKS = {
    "01-decode-a-capture.ipynb": [
        ("md", "# Decode a capture\n\n`analysis.load(*captures)` decodes every capture of one migration "
               "(pcap/pcapng, trace.dat, text traces, QEMU logs, admin captures, `info migrate` output, or a "
               "run folder) into tidy pandas tables. Column reference: `docs/analysis.md`."),
        ("code", SETUP),
        ("md", "## A real QEMU 7.2 migration: QEMU's log-backend trace and `info migrate`"),
        ("code", "real = analysis.load(TRACES / 'real' / 'qemu-tcp-returnpath.src.log',\n"
                 "                     TRACES / 'real' / 'qemu-tcp-returnpath.src-info-migrate.txt',\n"
                 "                     TRACES / 'real' / 'qemu-tcp-returnpath.pcap')\nreal"),
        ("code", "real.captures"),
        ("code", "real.events[['ts_ns', 'side', 'qemu_event', 'args']].head(15)"),
        ("code", "real.events['qemu_event'].value_counts().head(15)"),
        ("code", "real.qemu_stats['source']"),
        ("code", "pd.DataFrame(real.findings)[['severity', 'code', 'message']].head(20) if real.findings else 'no findings'"),
        ("code", "real.sections[['flow', 'offset', 'type', 'idstr', 'length_bytes', 'ram_zero_pages', "
                 "'ram_normal_pages', 'ts_ns']].head(12)"),
        ("code", "real.flows"),
        ("md", "## A simulated migration with a VFIO device: sections, chunks, records, parts, admin commands"),
        ("code", "m = analysis.load(sim_runs()[0])\nm"),
        ("code", "m.chunks[['device', 'phase', 'data_offset', 'size_bytes', 'ts_ns']].head(12)"),
        ("code", "m.records[['device', 'index', 'record_size_bytes', 'tag_name', 'phase', 'n_parts', "
                 "'trailer_bytes', 'ts_ns']]"),
        ("code", "last = m.records['index'].max()\n"
                 "m.parts[m.parts['record'] == last][['index', 'part_type_name', 'length_bytes', 'selector', 'value']]"),
        ("code", "pd.DataFrame([a.to_json() for a in m.alignment])"),
        ("code", "m.admin[['owner', 'opcode_name', 'request_ts_ns', 'latency_ns', 'status_name', 'parts_bytes']].head(12)"),
        ("code", "m.parts.groupby('part_type_name')['total_bytes'].agg(['count', 'sum'])"),
        ("code", "m.events[m.events['qemu_event'].fillna('').str.startswith('vfio_')]"
                 "[['ts_ns', 'side', 'device', 'qemu_event', 'args']].head(12)"),
    ],
    "02-precopy-and-downtime.ipynb": [
        ("md", "# Pre-copy and downtime analysis\n\nPre-copy iterations, convergence, the driver's PRE_COPY "
               "policy (heuristic of `vfio-virtio-stream.md` §7.3, with its evidence) and the downtime "
               "estimates: (a) QEMU's own, (b) wire, (c) breakdown of (b), (d) model."),
        ("code", SETUP + "from analysis import metrics, plots\nm = analysis.load(sim_runs()[0])\nm.manifest.run_id"),
        ("code", "analysis.summarize(m).T"),
        ("code", "m.iterations.head(10)"),
        ("code", "plots.convergence(m)"),
        ("code", "dev = m.devices[0]\npolicy, evidence = metrics.precopy_policy(m, dev)\npolicy, evidence"),
        ("code", "m.phases"),
        ("code", "plots.timeline(m)"),
        ("code", "d = metrics.downtime(m)\n{k: d[k] for k in ('downtime_qemu_ms', 'downtime_qemu_method', "
                 "'downtime_wire_ms', 'downtime_breakdown_ms', 'downtime_model_ms', 'downtime_admin_ms')}"),
        ("code", "plots.downtime_breakdown(m)"),
        ("md", "Ground truth of the simulator, for comparison:"),
        ("code", "t = m.manifest.truth\n{k: t.get(k) for k in ('precopy_iterations', 'dirty_syncs', 'qemu_iterate_sections', 'precopy_chunks', "
                 "'precopy_snapshots', 'precopy_policy', 'downtime_qemu_ms', 'downtime_wire_ms')}"),
        ("md", "## The real QEMU 7.2 run: RAM side against QEMU's own counters"),
        ("code", "real = analysis.load(TRACES / 'real' / 'qemu-tcp-returnpath.src.log',\n"
                 "                     TRACES / 'real' / 'qemu-tcp-returnpath.src-info-migrate.txt',\n"
                 "                     TRACES / 'real' / 'qemu-tcp-returnpath.pcap')\n"
                 "s = analysis.summary_objects(real)[0]\n"
                 "{'dirty_syncs': (s['dirty_syncs'], s['precopy_iterations_method'], real.qemu_stats['source'].get('dirty_sync_count')),\n"
                 " 'downtime_ms': (s['downtime_qemu_ms'], real.qemu_stats['source'].get('downtime_ms')),\n"
                 " 'downtime_wire_ms': s['downtime_wire_ms']}"),
        ("md", "## Pre-copy passes as QEMU counts them (real QEMU 10.0.2, a guest that keeps dirtying memory)\n\n"
               "`precopy_iterations` = QEMU's dirty-sync-count - 1, by the best method the captures allow: "
               "`trace` (bitmap-sync events), `qmp` (QEMU's counters, here the query-migrate series polled "
               "during the migration) or `stream` (from the pcap alone: a lower bound)."),
        ("code", "Q10 = TRACES / 'real' / 'qemu10'\n"
                 "by = {name: analysis.summary_objects(analysis.load(*(Q10 / f for f in files)))[0]\n"
                 "      for name, files in [('trace', ['multipass.src.log']),\n"
                 "                          ('qmp', ['multipass.pcap', 'multipass.src-qmp.jsonl']),\n"
                 "                          ('stream', ['multipass.pcap'])]}\n"
                 "{k: (v['precopy_iterations'], v['precopy_iterations_method'], v['dirty_syncs']) for k, v in by.items()}"),
        ("code", "q10 = analysis.load(Q10 / 'multipass.pcap', Q10 / 'multipass.src-qmp.jsonl')\n"
                 "plots.remaining(q10)"),
    ],
    "03-what-if-simulator.ipynb": [
        ("md", "# What-if study with the simulator\n\nHow do the driver's PRE_COPY policy and the firmware's "
               "device context change pre-copy and downtime? Each scenario is simulated "
               "(`analysis.simulate`), then analysed exactly like a real capture."),
        ("code", SETUP + "import tempfile\nfrom dataclasses import replace\n"
                 "from analysis.simulate import simulate, PRESETS, FIRMWARE_PRESETS\nfrom analysis import metrics\n"
                 "out = Path(tempfile.mkdtemp())\nsorted(PRESETS), sorted(FIRMWARE_PRESETS)"),
        ("code", "rows = []\nfor name in ('default', 'cap128', 'trailer'):\n"
                 "    m = analysis.load(simulate(name, 1, out / name))\n"
                 "    row = analysis.summarize(m).iloc[0].to_dict()\n"
                 "    row['scenario'] = name\n    rows.append(row)\n"
                 "table = pd.DataFrame(rows).set_index('scenario')\n"
                 "table[['precopy_policy', 'precopy_snapshots', 'precopy_chunks', 'precopy_iterations', "
                 "'downtime_qemu_ms', 'total_ms']]"),
        ("code", "ax = table[['downtime_qemu_ms']].plot.bar(rot=0, legend=False)\n"
                 "ax.set_ylabel('downtime (ms, QEMU)');"),
        ("md", "## Firmware versions under the same QEMU and kernel\n\nThe same migration with three "
               "firmware profiles (device context size and growth, admin command latencies)."),
        ("code", "from analysis.simulate import resolve\nrows = []\n"
                 "for fw in ('fw-28.40', 'fw-28.41', 'fw-29.0'):\n"
                 "    m = analysis.load(simulate(resolve('default', firmware=fw), 2, out / fw))\n"
                 "    row = analysis.summarize(m).iloc[0].to_dict()\n"
                 "    row['firmware'] = m.manifest.firmware_version\n"
                 "    row['DEV_PARTS_SET ms'] = metrics.admin_latency(m).get('DEV_PARTS_SET')\n"
                 "    rows.append(row)\n"
                 "fw_table = pd.DataFrame(rows).set_index('firmware')\n"
                 "fw_table[['precopy_snapshots', 'record_bytes_max', 'context_growth_pct', 'DEV_PARTS_SET ms', "
                 "'downtime_dst_load_ms', 'downtime_wire_ms', 'downtime_qemu_ms']]"),
        ("md", "## Model what-ifs on one run\n\n`metrics.downtime_model` takes the stop-copy bytes and bandwidth "
               "of the run and lets you change them. It needs the stream (stop-copy bytes); with traces "
               "only the model is null."),
        ("code", "m = analysis.load(out / 'default')\nbase = metrics.downtime_model(m)\n"
                 "doubled = metrics.downtime_model(m, vfio_bytes=2 * base['bytes_by_kind']['vfio'])\n"
                 "slow = metrics.downtime_model(m, bandwidth_bytes_per_s=1.25e9)\n"
                 "pd.DataFrame({'base': base, 'device context x2': doubled, '10 Gbit/s': slow}).T"
                 "[['downtime_model_ms', 'stopcopy_bytes', 'bandwidth_bytes_per_s', 'fixed_ms']]"),
    ],
    "04-compare-firmware-versions.ipynb": [
        ("md", "# Compare firmware versions\n\nThe nightly question: did a new NIC firmware make downtime, "
               "device-state size or pre-copy behaviour worse? The bundled corpus `traces/sim/compare/` holds "
               "four simulated runs of the same scenario for each of three firmware versions. `analysis.corpus` "
               "decodes and summarises every run into one table (cached by content hash; `engine='dask'` runs "
               "it on a cluster), and `analysis.compare` tests every metric: medians, a bootstrap interval of "
               "the change, Mann-Whitney U, Cliff's delta and a verdict. Method: `docs/compare.md`."),
        ("code", SETUP + "from analysis.corpus import load_corpus\nfrom analysis.compare.engine import compare\n"
                 "from analysis.compare.report import metric_figure\n"
                 "corpus = load_corpus([TRACES / 'sim' / 'compare'], cache_dir=None)\n"
                 "table = corpus.table\n"
                 "table[['run_id', 'firmware.version', 'precopy_policy', 'precopy_snapshots', 'stopcopy_bytes', "
                 "'downtime_wire_ms']]"),
        ("code", "table.groupby('firmware.version')[['downtime_wire_ms', 'downtime_qemu_ms', 'stopcopy_bytes', "
                 "'precopy_chunks']].median()"),
        ("md", "Compare every other version with the baseline. A regression needs the whole 95 % interval of "
               "the change beyond the metric's threshold and a significant rank test."),
        ("code", "res = compare(table, baseline='28.40.1000')\n"
                 "cmp = res.dataframe()\n"
                 "cmp[cmp['verdict'] != 'unchanged'][['metric', 'candidate', 'baseline_median', 'candidate_median', "
                 "'change_pct', 'ci_low_pct', 'ci_high_pct', 'p_value', 'verdict']]"),
        ("code", "res.summary_object()"),
        ("md", "Categorical changes (PRE_COPY policy, part types, the kernel trailer bug, admin error statuses) "
               "are findings:"),
        ("code", "[(f.code, f.message) for f in res.findings]"),
        ("md", "The downtime regression, and the versions in version order with the trend of the medians:"),
        ("code", "spec = next(s for s in res.specs if s.name == 'downtime_wire_ms')\nmetric_figure(res, spec)"),
        ("code", "spec = next(s for s in res.specs if s.name == 'precopy_chunks')\nmetric_figure(res, spec)"),
        ("md", "Thresholds can be set per metric (or in a TOML file with `migtrace compare --thresholds`):"),
        ("code", "loose = compare(table, baseline='28.40.1000', candidates=['28.41.1000'], "
                 "thresholds={'downtime_wire_ms': 200.0})\n"
                 "loose.dataframe().set_index('metric').loc['downtime_wire_ms', ['change_pct', 'threshold_pct', 'verdict']]"),
    ],
}


def scrub(nb: "nbf.NotebookNode") -> None:
    """Outputs name files relative to the repository (never this machine's absolute paths) and
    carry no timing metadata, so a regeneration differs only where the results do."""
    import re
    import tempfile

    root = str(HERE.parent)
    tmp = re.compile(re.escape(tempfile.gettempdir()) + r"/[^\s'\")]*")
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            for key in ("text", "data"):
                if key not in out:
                    continue
                items = out[key].items() if key == "data" else [("text", out[key])]
                for mime, val in list(items):
                    if not isinstance(val, str) or mime.startswith("image/"):
                        continue
                    val = tmp.sub("<tmp>", val.replace(root + "/", "").replace(root, "."))
                    if key == "data":
                        out[key][mime] = val
                    else:
                        out[key] = val


def build(execute: bool = True) -> list[Path]:
    paths = []
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src)
                    for kind, src in cells]
        if execute:
            from nbclient import NotebookClient

            NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                           resources={"metadata": {"path": str(HERE)}}).execute()
            scrub(nb)
        path = HERE / name
        nbf.write(nb, path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    import sys

    for p in build(execute="--no-execute" not in sys.argv[1:]):
        print(p, p.stat().st_size)
