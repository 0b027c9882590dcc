# SPDX-License-Identifier: GPL-2.0-only
"""What to capture for a migration URI: the TCP port and the interface that carries it."""
from __future__ import annotations

import ipaddress
import re
import socket
import subprocess

_TCP = re.compile(r"^tcp:(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:]*)):(?P<port>\d+)(?:,.*)?$")


def tcp_endpoint(uri: str) -> tuple[str, int] | None:
    """``tcp:HOST:PORT`` / ``tcp:[V6]:PORT`` (with QEMU's ``,option`` suffixes) → (host, port)."""
    m = _TCP.match(uri.strip())
    if not m:
        return None
    port = int(m.group("port"))
    if not 0 < port < 65536:
        return None
    return (m.group("v6") or m.group("host") or "", port)


def _is_loopback(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False


def interface_for(host: str) -> str:
    """``lo`` for a loopback peer, else the interface of the route to ``host``, else ``any``.

    ``any`` (Linux cooked capture) is the fallback only: on a loopback
    migration it would see every packet twice (once leaving, once arriving).
    """
    if _is_loopback(host):
        return "lo"
    try:
        r = subprocess.run(["ip", "route", "get", host], capture_output=True, text=True, timeout=5)
        m = re.search(r"\bdev (\S+)", r.stdout)
        if r.returncode == 0 and m:
            return m.group(1)
    except (OSError, subprocess.SubprocessError):
        pass
    return "any"
