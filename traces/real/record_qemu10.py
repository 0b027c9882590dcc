# SPDX-License-Identifier: GPL-2.0-only
"""Record the real QEMU 10.0.2 migrations in traces/real/qemu10/ (run as root; not CI).

QEMU 10.0.2 is taken from Debian's bookworm-backports suite and unpacked
beside the system's QEMU 7.2, which stays the default:

  python3 traces/real/record_qemu10.py unpack [--root /opt/qemu10]

does exactly this (and nothing else):
  1. write /etc/apt/sources.list.d/migtrace-bookworm-backports.sources:
       Types: deb / URIs: <the first URIs of debian.sources> /
       Suites: bookworm-backports / Components: main /
       Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
  2. apt-get update
  3. apt-get download -t bookworm-backports qemu-system-x86 qemu-system-common
       qemu-system-data seabios      (10.0.2 wants seabios >> 1.16.3, bookworm has 1.16.2;
       every shared library it links is in bookworm)
  4. dpkg -x each .deb into the root folder (nothing is installed)
  5. remove the source file, apt-get update again.
The binary then runs as
  QEMU_MODULE_DIR=<root>/usr/lib/x86_64-linux-gnu/qemu <root>/usr/bin/qemu-system-x86_64 \
      -L <root>/usr/share/seabios -L <root>/usr/share/qemu -audio none -display none ...

  python3 traces/real/record_qemu10.py record [SCENARIO...] [-o traces/real/qemu10]

records each scenario with the tiny multiboot guest of traces/real/guest/
(built with its build.sh), under TCG, source and destination on loopback:

  returnpath  TCP, return-path + switchover-ack capabilities
  multifd     TCP, multifd with 4 channels, zero-page-detection=multifd
  multifd-zstd, multifd-zlib  TCP, multifd with 2 channels and multifd-compression
              zstd / zlib (zero-page-detection: the default, multifd)
  multifd-rp  TCP, multifd (2 channels) + return-path + switchover-ack (the capabilities a
              VFIO migration on 10.x uses)
  tls         TCP with TLS (tls-creds-psk, a fixed lab key) and the return path: the
              wire carries TLS records only
  multipass   TCP, a guest dirtying a buffer, max-bandwidth 1 MB/s and a
              small downtime-limit until the source's dirty-sync-count
              reaches a target, then a downtime-limit that lets it converge
  multipass-rp  as multipass, with the return-path capability
  file        file: URI, no mapped-ram (guest running), then loaded back
  mappedram   file: URI with the mapped-ram capability (guest stopped
              first, as for a save), then loaded back; saved as
              mappedram.mig.zst (zstd -19: QEMU's file is 10.6 MB, mostly
              holes; migtrace reads compressed captures by content)

The destination always starts with -incoming defer and gets
migrate-incoming after its capabilities and parameters are set (multifd is
refused once a tcp: listener exists).  tcpdump captures the migration port
on lo.  Saved per scenario NAME: NAME.pcap (or NAME.mig, NAME.mig.zst), NAME.src.log and
NAME.dst.log (the log trace backend, -msg timestamp=on), NAME.src-query-migrate.json
(final), NAME.src-qmp.jsonl and NAME.dst-qmp.jsonl (query-migrate polled at
~10 Hz, each object with ts_ns = CLOCK_REALTIME in ns added: the qmp-source /
qmp-destination roles of the run manifest), NAME.src-info-migrate.txt,
NAME.dst-info-migrate.txt, NAME.config.json (query-version and the
migration capabilities/parameters of both sides, the command lines).

  python3 traces/real/record_qemu10.py summary     QEMU's own counters of each capture
                                                   (the table of traces/README.md)
  python3 traces/real/record_qemu10.py manifests   OUT/runs/NAME/run.json per capture
  python3 traces/real/record_qemu10.py subset      print the subset of 10.0.2's
                                                   trace-events-all kept as
                                                   dissect/qemu/trace-events-qemu-10.0.2-subset
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
TMP_SOURCE = Path("/etc/apt/sources.list.d/migtrace-bookworm-backports.sources")
PACKAGES = ["qemu-system-x86", "qemu-system-common", "qemu-system-data", "seabios"]

SRC_EVENTS = ["savevm_*", "qemu_savevm_*", "migration_*", "migrate_*", "multifd_*",
              "vmstate_downtime_*", "source_return_path_*", "open_return_path_*",
              "ram_save_iterate_big_wait", "runstate_set", "vfio_migration_*",
              "vfio_save_*", "vfio_state_*",
              "-migration_transferred_bytes"]     # one line per qemu_file flush: too many
DST_EVENTS = ["loadvm_*", "qemu_loadvm_*", "migrate_*", "migration_*", "multifd_*",
              "vmstate_downtime_*", "process_incoming_*", "ram_load_start",
              "ram_load_complete", "runstate_set", "vfio_migration_*", "vfio_load_*",
              "vfio_state_*", "-migration_transferred_bytes"]


def unpack(root: Path, debs: Path) -> None:
    uri = next(line.split(":", 1)[1].strip() for line in SOURCES.read_text().splitlines()
               if line.startswith("URIs:"))
    TMP_SOURCE.write_text("Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\n"
                          "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" % uri)
    try:
        subprocess.run(["apt-get", "update", "-q"], check=True)
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "-t", "bookworm-backports", *PACKAGES],
                       check=True, cwd=debs)
    finally:
        TMP_SOURCE.unlink(missing_ok=True)
        subprocess.run(["apt-get", "update", "-q"], check=False)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    print(subprocess.run([str(root / "usr/bin/qemu-system-x86_64"), "--version"],
                         capture_output=True, text=True).stdout)


class QMP:
    """A minimal QMP client (synchronous; events are kept, not interpreted)."""

    def __init__(self, path: Path) -> None:
        for _ in range(200):
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(str(path))
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"QMP {path} did not come up")
        self.buf = b""
        self.events: list[dict] = []
        self.greeting = self._read()
        self.cmd("qmp_capabilities")

    def _read(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name: str, **args: object) -> object:
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")
            return reply["return"]

    def hmp(self, line: str) -> str:
        return str(self.cmd("human-monitor-command", **{"command-line": line}))


class Qemu:
    def __init__(self, root: Path, work: Path, role: str, guest: Path, mem: int,
                 pages: int, events: list[str], incoming: bool) -> None:
        # Everything the guest or the stream can see is relative to the work
        # folder (QEMU's cwd): the multiboot command line holds the kernel's
        # file name, the trace logs the file: URI.
        self.role = role
        self.root = root
        self.log = work / f"{role}.log"
        self.console = work / f"{role}.console.txt"
        self.argv = [str(root / "usr/bin/qemu-system-x86_64"),
                     "-L", str(root / "usr/share/seabios"), "-L", str(root / "usr/share/qemu"),
                     "-machine", "pc", "-accel", "tcg", "-m", str(mem), "-nodefaults",
                     "-display", "none", "-audio", "none", "-name", role,
                     "-kernel", guest.name, "-append", f"pages={pages}",
                     "-serial", f"file:{role}.console.txt",
                     "-qmp", f"unix:{role}.qmp,server=on,wait=off",
                     "-D", f"{role}.log", "-msg", "timestamp=on"]
        for ev in events:
            self.argv += ["-trace", ev]
        if incoming:
            self.argv += ["-incoming", "defer"]
        env = dict(os.environ, QEMU_MODULE_DIR=str(root / "usr/lib/x86_64-linux-gnu/qemu"))
        self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL, cwd=work)
        self.qmp = QMP(work / f"{role}.qmp")

    def wait_banner(self) -> None:
        for _ in range(200):
            if self.console.exists() and b"dirtyguest pages=" in self.console.read_bytes():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.role}: the guest did not print its banner")

    def setup(self, caps: dict[str, bool], params: dict[str, object]) -> None:
        if caps:
            self.qmp.cmd("migrate-set-capabilities",
                         capabilities=[{"capability": k, "state": v} for k, v in caps.items()])
        if params:
            self.qmp.cmd("migrate-set-parameters", **params)

    def config(self) -> dict:
        return {"capabilities": self.qmp.cmd("query-migrate-capabilities"),
                "parameters": self.qmp.cmd("query-migrate-parameters"),
                "argv": [a.replace(str(self.root), "<root>") for a in self.argv]}

    def quit(self) -> None:
        try:
            self.qmp.cmd("quit")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


SCENARIOS: dict[str, dict] = {
    "returnpath": dict(mem=32, pages=64, caps={"return-path": True, "switchover-ack": True},
                       params={}),
    "multifd": dict(mem=32, pages=256, caps={"multifd": True},
                    params={"multifd-channels": 4, "zero-page-detection": "multifd"}),
    # multifd-compression: the page data of a RAM packet is one compressed blob of
    # next_packet_size bytes (the destination needs the same parameter)
    "multifd-zstd": dict(mem=32, pages=256, caps={"multifd": True},
                         params={"multifd-channels": 2, "multifd-compression": "zstd"}),
    "multifd-zlib": dict(mem=32, pages=256, caps={"multifd": True},
                         params={"multifd-channels": 2, "multifd-compression": "zlib"}),
    # what a VFIO migration on 10.x sets: multifd (device state can ride it), the return path
    # and switchover-ack (the destination acknowledges the VF's precopy data before switchover)
    "multifd-rp": dict(mem=32, pages=128, caps={"multifd": True, "return-path": True, "switchover-ack": True},
                       params={"multifd-channels": 2}),
    # TLS (tls-creds-psk, the pre-shared key of a lab): the main channel carries TLS records, not
    # the QEMU stream; what a user captures on a secured migration
    "tls": dict(mem=32, pages=64, caps={"return-path": True}, params={"tls-creds": "tls0"}, tls=True),
    "multipass": dict(mem=32, pages=128, caps={},
                      params={"max-bandwidth": 1 << 20, "downtime-limit": 20},
                      release_at=7, release_downtime=2000),
    "multipass-rp": dict(mem=32, pages=48, caps={"return-path": True},
                         params={"max-bandwidth": 1 << 20, "downtime-limit": 20},
                         release_at=6, release_downtime=2000),
    "file": dict(mem=16, pages=64, caps={}, params={}, file=True),
    # the mapped-ram file holds every RAMBlock at its full size (holes for
    # pages not sent), each region 1 MiB aligned: -m 4 keeps it ~10 MB
    "mappedram": dict(mem=4, pages=64, caps={"mapped-ram": True}, params={}, file=True,
                      stop_first=True, compress=True),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll_until_done(q: QMP, series: Path, release_at: int | None = None,
                    release_downtime: int | None = None, timeout: float = 300.0) -> dict:
    released = False
    deadline = time.monotonic() + timeout
    with series.open("w") as out:
        while True:
            info = q.cmd("query-migrate")
            ts = time.time_ns()
            out.write(json.dumps({"ts_ns": ts, **info}) + "\n")
            status = info.get("status")
            if status in ("completed", "failed", "cancelled"):
                return info
            syncs = info.get("ram", {}).get("dirty-sync-count", 0)
            if release_at is not None and not released and syncs >= release_at:
                q.cmd("migrate-set-parameters", **{"downtime-limit": release_downtime})
                released = True
            if time.monotonic() > deadline:
                q.cmd("migrate_cancel")
                raise RuntimeError("migration did not finish")
            time.sleep(0.1)


def record(name: str, sc: dict, root: Path, guest: Path, out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix=f"rec-{name}-"))
    shutil.copyfile(guest, work / guest.name)
    is_file = sc.get("file", False)
    port = free_port()
    mig = work / f"{name}.mig"
    uri = f"file:{mig.name}" if is_file else f"tcp:127.0.0.1:{port}"
    src_params = dict(sc["params"])
    dst_params = {k: v for k, v in sc["params"].items()
                  if k in ("multifd-channels", "multifd-compression", "tls-creds")}
    tcpdump = None
    dst = None
    if sc.get("tls"):
        # keys.psk: "username:hex key"; "qemu" is the client's default username
        (work / "psk").mkdir()
        (work / "psk" / "keys.psk").write_text("qemu:" + hashlib.sha256(b"migtrace lab key").hexdigest() + "\n")
    src = Qemu(root, work, "src", guest, sc["mem"], sc["pages"], SRC_EVENTS, False)
    try:
        src.wait_banner()
        if sc.get("tls"):
            src.qmp.cmd("object-add", **{"qom-type": "tls-creds-psk", "id": "tls0", "endpoint": "client",
                                         "dir": "psk"})
        src.setup(sc["caps"], src_params)
        if not is_file:
            dst = Qemu(root, work, "dst", guest, sc["mem"], sc["pages"], DST_EVENTS, True)
            if sc.get("tls"):
                dst.qmp.cmd("object-add", **{"qom-type": "tls-creds-psk", "id": "tls0", "endpoint": "server",
                                             "dir": "psk"})
            dst.setup(sc["caps"], dst_params)
            dst.qmp.cmd("migrate-incoming", uri=uri)
            pcap = work / f"{name}.pcap"
            tcpdump = subprocess.Popen(["tcpdump", "-i", "lo", "-s", "0", "-U", "-w", str(pcap),
                                        f"tcp port {port}"], stderr=subprocess.PIPE)
            line = tcpdump.stderr.readline()       # "listening on lo ..."
            if b"listening" not in line:
                raise RuntimeError(f"tcpdump: {line!r}")
        time.sleep(1.0)                              # let the guest dirty its buffer a while
        config = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "version": src.qmp.cmd("query-version"),
                  "uri": uri, "source": src.config()}
        if dst is not None:
            config["destination"] = dst.config()
        if sc.get("stop_first"):
            src.qmp.cmd("stop")
        src.qmp.cmd("migrate", uri=uri)
        final = poll_until_done(src.qmp, work / "src-qmp.jsonl", sc.get("release_at"),
                                sc.get("release_downtime"))
        if final.get("status") != "completed":
            raise RuntimeError(f"{name}: source status {final.get('status')}: {final}")
        if is_file:
            # load the file back into a destination for its trace and counters
            dst = Qemu(root, work, "dst", guest, sc["mem"], sc["pages"], DST_EVENTS, True)
            dst.setup(sc["caps"], dst_params)
            config["destination"] = dst.config()
            dst.qmp.cmd("migrate-incoming", uri=uri)
        assert dst is not None
        dfinal = poll_until_done(dst.qmp, work / "dst-qmp.jsonl")
        config["destination_final_status"] = dfinal.get("status")
        time.sleep(0.5)
        (work / "src-info-migrate.txt").write_text(src.qmp.hmp("info migrate"))
        (work / "dst-info-migrate.txt").write_text(dst.qmp.hmp("info migrate"))
        (work / "src-query-migrate.json").write_text(json.dumps(final, indent=1) + "\n")
        (work / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    finally:
        src.quit()
        if dst is not None:
            dst.quit()
        if tcpdump is not None:
            time.sleep(0.5)
            tcpdump.send_signal(signal.SIGINT)
            tcpdump.wait(timeout=10)
    out.mkdir(parents=True, exist_ok=True)
    cap = work / (f"{name}.mig" if is_file else f"{name}.pcap")
    if sc.get("compress"):
        # the committed file stays small; zstd is the independent tool (apt package zstd)
        subprocess.run(["zstd", "-19", "-q", "-f", str(cap), "-o", str(out / f"{cap.name}.zst")], check=True)
    else:
        subprocess.run(["cp", "--sparse=always", str(cap), str(out / cap.name)], check=True)
    for role in ("src", "dst"):
        shutil.copyfile(work / f"{role}.log", out / f"{name}.{role}.log")
        shutil.copyfile(work / f"{role}-qmp.jsonl", out / f"{name}.{role}-qmp.jsonl")
        shutil.copyfile(work / f"{role}-info-migrate.txt", out / f"{name}.{role}-info-migrate.txt")
    shutil.copyfile(work / "src-query-migrate.json", out / f"{name}.src-query-migrate.json")
    shutil.copyfile(work / "config.json", out / f"{name}.config.json")
    print(f"{name}: {final.get('ram')}")
    shutil.rmtree(work)


def count_events(log: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        head = line.split(" ", 1)[0]
        if "@" in head and ":" in head:
            name = head.split(":", 1)[1]
            counts[name] = counts.get(name, 0) + 1
    return counts


def capture_of(out: Path, name: str) -> Path:
    """NAME.pcap, NAME.mig or NAME.mig.zst, whichever was recorded."""
    for cap in (f"{name}.pcap", f"{name}.mig", f"{name}.mig.zst"):
        if (out / cap).exists():
            return out / cap
    return out / f"{name}.mig"


def summary(out: Path) -> None:
    """Print QEMU's own counters of every capture in OUT (for traces/README.md)."""
    for cfg in sorted(out.glob("*.config.json")):
        name = cfg.name[: -len(".config.json")]
        final = json.loads((out / f"{name}.src-query-migrate.json").read_text())
        ram = final["ram"]
        src = count_events(out / f"{name}.src.log")
        dst = count_events(out / f"{name}.dst.log")
        cap = capture_of(out, name)
        size = cap.stat().st_size
        if cap.suffix == ".zst":  # the size of the file QEMU wrote
            size = len(subprocess.run(["zstd", "-dc", str(cap)], check=True, capture_output=True).stdout)
        print(f"- `{name}`: {cap.name} {size} bytes; normal {ram['normal']}, duplicate (zero) "
              f"{ram['duplicate']}, transferred {ram['transferred']}, multifd-bytes "
              f"{ram['multifd-bytes']}, precopy-bytes {ram['precopy-bytes']}, downtime-bytes "
              f"{ram['downtime-bytes']}, dirty-sync-count {ram['dirty-sync-count']}, downtime "
              f"{final.get('downtime')} ms, total-time {final.get('total-time')} ms; "
              f"source trace: migration_bitmap_sync_end {src.get('migration_bitmap_sync_end', 0)}, "
              f"savevm_section_start {src.get('savevm_section_start', 0)}, savevm_section_end "
              f"{src.get('savevm_section_end', 0)}, savevm_section_skip "
              f"{src.get('savevm_section_skip', 0)}, savevm_command_send "
              f"{src.get('savevm_command_send', 0)}, multifd_send_fill "
              f"{src.get('multifd_send_fill', 0)} (of which multifd_send_ram_fill "
              f"{src.get('multifd_send_ram_fill', 0)}); destination trace: multifd_recv_unfill "
              f"{dst.get('multifd_recv_unfill', 0)}, qemu_loadvm_state_section "
              f"{dst.get('qemu_loadvm_state_section', 0)}, loadvm_process_command "
              f"{dst.get('loadvm_process_command', 0)}, migrate_send_rp_message "
              f"{dst.get('migrate_send_rp_message', 0)}")


def manifests(out: Path) -> None:
    """Write OUT/runs/NAME/run.json (run-manifest.md, kind real) for every capture in OUT."""
    for cfg_path in sorted(out.glob("*.config.json")):
        name = cfg_path.name[: -len(".config.json")]
        cfg = json.loads(cfg_path.read_text())
        final = json.loads((out / f"{name}.src-query-migrate.json").read_text())
        cap = capture_of(out, name).name
        argv = cfg["source"]["argv"]
        roles = [(cap, "source-stream"), (f"{name}.src.log", "qemu-log-source"),
                 (f"{name}.dst.log", "qemu-log-destination"), (f"{name}.src-qmp.jsonl", "qmp-source"),
                 (f"{name}.dst-qmp.jsonl", "qmp-destination"),
                 (f"{name}.src-info-migrate.txt", "other"), (f"{name}.dst-info-migrate.txt", "other")]
        # NAME.src-query-migrate.json and NAME.config.json are qemu_counters / qemu_config below
        run = {
            "schema": 1, "run_id": f"real-qemu10-{name}", "kind": "real",
            "qemu": "{major}.{minor}.{micro}".format(**cfg["version"]["qemu"]),
            "vm": {"ram_bytes": int(argv[argv.index("-m") + 1]) << 20, "vcpus": 1,
                   "machine": "pc", "accel": "tcg", "guest": "traces/real/guest (dirtyguest.elf)",
                   "guest_args": argv[argv.index("-append") + 1]},
            "labels": {"source": "traces/real/record_qemu10.py", "date": cfg["date"][:10],
                       "package": cfg["version"]["package"]},
            "captures": [{"path": f"../../{p}", "role": r} for p, r in roles],
            "qemu_counters": final,
            "qemu_config": {"capabilities": cfg["source"]["capabilities"],
                            "parameters": cfg["source"]["parameters"]},
        }
        (out / "runs" / name).mkdir(parents=True, exist_ok=True)
        (out / "runs" / name / "run.json").write_text(json.dumps(run, indent=2) + "\n")


# The part of QEMU 10.0.2's trace-events-all that dissect/qemu/trace-events-qemu-10.0.2-subset
# holds.  trace-events-all is the concatenation of every source folder's trace-events file
# (each starts with the "# See docs/devel/tracing.rst" line), split into sections by
# "# file.c" comments.  A file is named by an event only it declares.
SUBSET_FILES = {"hw/vfio/trace-events": "vfio_migration_realize",
                "migration/trace-events": "savevm_section_start",
                "system/trace-events": "runstate_set"}
#: (file, section, names): names None = every event of the section ("complete"), else only those
SUBSET = [
    ("hw/vfio/trace-events", "migration.c", None),
    ("hw/vfio/trace-events", "common.c", ("vfio_device_dirty_tracking_update",
                                          "vfio_device_dirty_tracking_start",
                                          "vfio_get_dirty_bitmap", "vfio_iommu_map_dirty_notify")),
    ("migration/trace-events", "savevm.c", None),
    ("migration/trace-events", "migration.c", None),
    ("migration/trace-events", "multifd.c", None),
    ("migration/trace-events", "migration-stats", None),
    ("migration/trace-events", "ram.c", ("migration_bitmap_sync_start", "migration_bitmap_sync_end",
                                         "migration_throttle", "ram_save_iterate_big_wait",
                                         "ram_load_complete", "ram_save_page", "ram_load_loop")),
    ("system/trace-events", "cpus.c", ("vm_stop_flush_all",)),
    ("system/trace-events", "vl.c", ("vm_state_notify", "runstate_set")),
]


def trace_events_sections(text: str) -> dict[tuple[str, str], list[str]]:
    """(file, section) -> declaration lines, for the files of SUBSET_FILES."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("# See docs/devel/tracing.rst") and blocks[-1]:
            blocks.append([])
        blocks[-1].append(line)
    out: dict[tuple[str, str], list[str]] = {}
    for block in blocks:
        names = {line.split("(", 1)[0] for line in block if line[:1].isalpha()}
        for fname, marker in SUBSET_FILES.items():
            if marker not in names:
                continue
            section = ""
            for line in block:
                m = re.match(r"^#\s*(\S+\.[ch]|migration-stats)$", line)
                if m:
                    section = m.group(1)
                elif line[:1].isalpha():
                    out.setdefault((fname, section), []).append(line)
    return out


def subset(root: Path) -> None:
    """Print the subset file of QEMU's trace-events-all (provenance header + @section blocks)."""
    path = root / "usr/share/qemu/trace-events-all"
    raw = path.read_bytes()
    sections = trace_events_sections(raw.decode())
    print("# Subset of QEMU 10.0.2's trace-events-all: lines copied verbatim, in file order.")
    print("# Source: Debian package qemu-system-common 1:10.0.2+ds-2+deb13u1~bpo12+1")
    print("#   (bookworm-backports), file /usr/share/qemu/trace-events-all,")
    print(f"#   {len(raw)} bytes, sha256 {hashlib.sha256(raw).hexdigest()}.")
    print("# QEMU's trace-events files are GPL-2.0-or-later (QEMU's license).")
    print("# Made by: python3 traces/real/record_qemu10.py subset")
    print("#")
    print("# '# @section FILE SECTION complete' : every event QEMU 10.0.2 declares in that")
    print("#   section of FILE (its '# file.c' comment); '... partial': only the named")
    print("#   events (the catalogue's events from sections not taken whole).")
    for fname, section, names in SUBSET:
        lines = sections[(fname, section)]
        if names is not None:
            lines = [line for line in lines if line.split("(", 1)[0] in names]
            assert len(lines) == len(names), (section, names)
        print(f"\n# @section {fname} {section} {'complete' if names is None else 'partial'}")
        for line in lines:
            print(line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("action", choices=["unpack", "record", "summary", "subset", "manifests"])
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--root", type=Path, default=Path("/opt/qemu10"))
    ap.add_argument("--debs", type=Path, default=Path("/var/tmp/qemu10-debs"))
    ap.add_argument("-o", "--out", type=Path, default=HERE / "qemu10")
    args = ap.parse_args()
    if args.action == "unpack":
        unpack(args.root, args.debs)
        return 0
    if args.action == "subset":
        subset(args.root)
        return 0
    if args.action == "manifests":
        manifests(args.out)
        return 0
    if args.action == "summary":
        summary(args.out)
        return 0
    gdir = Path(tempfile.mkdtemp(prefix="dirtyguest-"))
    subprocess.run(["bash", str(HERE / "guest" / "build.sh"), str(gdir)], check=True,
                   stdout=subprocess.DEVNULL)
    for name in args.scenarios or list(SCENARIOS):
        record(name, SCENARIOS[name], args.root, gdir / "dirtyguest.elf", args.out)
    shutil.rmtree(gdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
