# SPDX-License-Identifier: GPL-2.0-only
"""Real loopback captures: a Python socket exchange on 127.0.0.1/::1 captured
by tcpdump or dumpcap, and checked against the bytes each side sent.

The same code made the committed fixtures traces/real/loopback-*.pcap*
(traces/README.md gives the commands):

    python3 -m tests.test_capture_loopback OUT [--tool tcpdump|dumpcap]
        [--iface lo|any] [--ipv6] [--nano] [--seed N] [--burst BYTES]
"""
from __future__ import annotations

import argparse
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dissect.capture.tcp import reassemble
from tests.conftest import TRACES, require_tool

REAL = TRACES / "real"


def exchange_plan(seed: int, burst: int = 0) -> tuple[list[bytes], list[bytes]]:
    """The writes of the client and of the server, a pure function of ``seed``.

    The client sends messages of 1..3000 bytes (and, if ``burst``, one write
    of that size that loopback carries in ~64 KiB segments); the server
    answers every few messages and says goodbye after the client's FIN.
    """
    rnd = random.Random(seed)
    client = [rnd.randbytes(rnd.randint(1, 3000)) for _ in range(60)]
    if burst:
        client.insert(30, rnd.randbytes(burst))
    server = [rnd.randbytes(rnd.randint(20, 400)) for _ in range(len(client) // 6)] + [b"bye" * 300]
    return client, server


def _wait_ready(proc: subprocess.Popen, marker: bytes, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        buf += line
        if marker in line:
            return
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"capture tool did not start: {buf.decode(errors='replace')}")


def _wait_for_fins(path: Path, port: int, timeout: float = 15.0) -> None:
    """Let the capture drain: wait until the file holds both FINs and the
    final ACK (tcpdump -U writes each packet as it gets it), or time out."""
    from dissect.capture import link as L
    from dissect.capture.reader import CaptureReader

    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    while time.monotonic() < deadline:
        try:
            segs = [L.parse_tcp(p.linktype, p.data) for p in CaptureReader(path).packets()]
        except OSError:
            segs = []
        segs = [s for s in segs if isinstance(s, tuple) and port in (s[3], s[4])]
        fins = [i for i, s in enumerate(segs) if s[7] & L.TCP_FIN]
        if len(fins) >= 2 and len(segs) > fins[-1] + 1:
            break
        time.sleep(0.25)
    time.sleep(0.5)  # dumpcap has no immediate mode: give it a moment more


def capture_exchange(out: Path, *, tool: str = "tcpdump", iface: str = "lo", ipv6: bool = False,
                     nano: bool = False, seed: int = 1, burst: int = 0) -> tuple[bytes, bytes, int]:
    """Run the exchange under a live capture; returns (client bytes, server bytes, port)."""
    client_writes, server_writes = exchange_plan(seed, burst)
    fam = socket.AF_INET6 if ipv6 else socket.AF_INET
    host = "::1" if ipv6 else "127.0.0.1"
    srv = socket.socket(fam, socket.SOCK_STREAM)
    srv.bind((host, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    if tool == "tcpdump":
        # --immediate-mode: without it TPACKET_V3 hands packets over in blocks
        # and SIGINT can lose the last, unretired block.
        cmd = ["tcpdump", "-i", iface, "--immediate-mode", "-U", "-n", "-w", str(out)]
        if nano:
            cmd += ["--time-stamp-precision=nano"]
        cmd += ["tcp", "port", str(port)]
        marker = b"listening on"
    else:
        cmd = ["dumpcap", "-i", iface, "-f", f"tcp port {port}", "-w", str(out)]
        marker = b"Capturing on"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_ready(proc, marker)
        time.sleep(1.0)  # the "any" device opens its sockets after announcing itself
        received = bytearray()

        def serve() -> None:
            conn, _ = srv.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            k = 0
            while True:
                b = conn.recv(65536)
                if not b:
                    break
                received.extend(b)
                # Answer roughly every sixth message's worth of data.
                while k < len(server_writes) - 1 and len(received) > (k + 1) * 9000:
                    conn.sendall(server_writes[k])
                    k += 1
            for w in server_writes[k:]:
                conn.sendall(w)
            conn.close()

        t = threading.Thread(target=serve)
        t.start()
        cli = socket.socket(fam, socket.SOCK_STREAM)
        cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cli.connect((host, port))
        back = bytearray()
        for i, w in enumerate(client_writes):
            cli.sendall(w)
            time.sleep(0.001)  # separate segments rather than one coalesced send
        cli.shutdown(socket.SHUT_WR)
        while True:
            b = cli.recv(65536)
            if not b:
                break
            back.extend(b)
        cli.close()
        t.join(10)
        _wait_for_fins(out, port)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        srv.close()
    # (On "any", tcpdump reports a few "dropped by kernel" packets from before
    # its filter was installed; completeness is checked on the streams instead.)
    capture_exchange.last_stats = err.decode(errors="replace")  # type: ignore[attr-defined]
    sent_c = b"".join(client_writes)
    sent_s = b"".join(server_writes)
    assert bytes(received) == sent_c and bytes(back) == sent_s
    return sent_c, sent_s, port


class Collect:
    """A StreamConsumer that keeps everything (tests only)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.gaps: list[tuple[int, int]] = []
        self.first_ts: int | None = None
        self.closed = False

    def data(self, offset: int, data, ts_ns: int) -> None:
        assert offset == len(self.buf), (offset, len(self.buf))
        if self.first_ts is None:
            self.first_ts = ts_ns
        self.buf += data

    def gap(self, start: int, end: int) -> None:
        assert start == len(self.buf)
        self.gaps.append((start, end))
        self.buf += b"\0" * (end - start)

    def close(self) -> None:
        self.closed = True


def collect(path_or_packets, **kw) -> tuple[dict[tuple[int, str], Collect], object]:
    got: dict[tuple[int, str], Collect] = {}

    def factory(flow, direction):
        c = got[(flow.index, direction)] = Collect()
        return c

    res = reassemble(path_or_packets, factory, **kw)
    return got, res


FIXTURES = {
    # file: (seed, burst, ipv6)
    "loopback-ipv4.pcap": (1, 150_000, False),
    "loopback-ipv6.pcapng": (2, 0, True),
    "loopback-any-sll2-ns.pcap": (3, 0, False),
}


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_committed_fixture_streams_equal_what_was_sent(name: str) -> None:
    seed, burst, _ = FIXTURES[name]
    path = REAL / name
    if not path.exists():
        pytest.skip(f"{path} not committed")
    sent_c, sent_s = (b"".join(x) for x in exchange_plan(seed, burst))
    got, res = collect(path)
    assert [f.role for f in res.flows] == ["other"]
    assert bytes(got[(0, "c2s")].buf) == sent_c
    assert bytes(got[(0, "s2c")].buf) == sent_s
    assert res.flows[0].gaps == [] and res.flows[0].syn_seen and res.flows[0].fin_seen
    assert res.flows[0].c2s_bytes == len(sent_c) and res.flows[0].s2c_bytes == len(sent_s)
    assert [f for f in res.findings if f.severity != "info"] == []


def test_live_loopback_capture(tmp_path: Path) -> None:
    require_tool("tcpdump")
    out = tmp_path / "live.pcap"
    try:
        sent_c, sent_s, port = capture_exchange(out, seed=7, burst=100_000, nano=True)
    except (RuntimeError, PermissionError) as e:  # no capture permission on this machine
        pytest.skip(f"cannot capture on lo: {e}")
    got, res = collect(out)
    stats = capture_exchange.last_stats  # type: ignore[attr-defined]
    if "\n0 packets dropped by kernel" not in "\n" + stats:
        pytest.skip(f"the capture tool lost packets under load, not a decoder result: {stats!r}")
    (fl,) = res.flows
    assert fl.server.endswith(f":{port}") and fl.client.startswith("127.0.0.1:")
    assert bytes(got[(0, "c2s")].buf) == sent_c
    assert bytes(got[(0, "s2c")].buf) == sent_s
    assert fl.gaps == []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="capture a seeded loopback exchange")
    ap.add_argument("out")
    ap.add_argument("--tool", default="tcpdump", choices=["tcpdump", "dumpcap"])
    ap.add_argument("--iface", default="lo")
    ap.add_argument("--ipv6", action="store_true")
    ap.add_argument("--nano", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--burst", type=int, default=0)
    a = ap.parse_args(argv)
    c, s, port = capture_exchange(Path(a.out), tool=a.tool, iface=a.iface, ipv6=a.ipv6, nano=a.nano,
                                  seed=a.seed, burst=a.burst)
    print(f"{a.out}: port {port}, client sent {len(c)} bytes, server sent {len(s)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
