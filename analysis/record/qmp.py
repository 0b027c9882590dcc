# SPDX-License-Identifier: GPL-2.0-only
"""One QEMU's QMP monitor, through the ``qemu.qmp`` library (``QMPClient``).

Adds what recording needs on top of the library: errors turned into
:class:`RecordError` with the socket named (no traceback for a missing
socket or a refused command), typed ``--capability`` / ``--parameter``
values, the destination's ``-incoming defer`` handshake, trace-event state
saved and restored, and a clean ``quit``.
"""
from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import Any

from analysis.record.errors import RecordError

#: query-migrate statuses after which a migration is over (qapi/migration.json MigrationStatus).
TERMINAL = frozenset({"completed", "failed", "cancelled"})
_SIZE = re.compile(r"^(\d+)([kKmMgGtT]?)[bB]?$")
_SCALE = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

# The library logs the server's hang-up after `quit` from its reader task; that is expected here.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


def parse_capability(text: str) -> tuple[str, bool]:
    """``NAME`` / ``NAME=on`` / ``NAME=off`` (also true/false/yes/no/1/0)."""
    name, sep, val = text.partition("=")
    if not name:
        raise RecordError(f"--capability {text!r}: expected NAME[=on|off]")
    if not sep:
        return name, True
    b = _bool(val)
    if b is None:
        raise RecordError(f"--capability {text!r}: value must be on or off")
    return name, b


def _bool(val: str) -> bool | None:
    v = val.strip().lower()
    if v in ("on", "true", "yes", "1"):
        return True
    if v in ("off", "false", "no", "0"):
        return False
    return None


def parse_parameter(text: str) -> tuple[str, str]:
    name, sep, val = text.partition("=")
    if not name or not sep:
        raise RecordError(f"--parameter {text!r}: expected NAME=VALUE")
    return name, val


def typed_parameters(raw: list[tuple[str, str]], current: dict[str, Any]) -> dict[str, Any]:
    """Convert ``--parameter`` strings to the JSON types QEMU reports for them.

    The type is taken from ``query-migrate-parameters`` (so a QEMU version's
    own set decides); integers accept a K/M/G/T suffix (powers of 1024), as
    HMP's ``migrate_set_parameter`` does for sizes.
    """
    out: dict[str, Any] = {}
    for name, val in raw:
        if name not in current:
            known = ", ".join(sorted(current))
            raise RecordError(f"--parameter {name}: QEMU has no such migration parameter (it knows: {known})")
        cur = current[name]
        if isinstance(cur, bool):
            b = _bool(val)
            if b is None:
                raise RecordError(f"--parameter {name}={val}: expected on or off")
            out[name] = b
        elif isinstance(cur, int):
            m = _SIZE.match(val.strip())
            if not m:
                raise RecordError(f"--parameter {name}={val}: expected an integer (K/M/G suffix allowed)")
            out[name] = int(m.group(1)) * _SCALE[m.group(2).lower()]
        elif isinstance(cur, float):
            try:
                out[name] = float(val)
            except ValueError:
                raise RecordError(f"--parameter {name}={val}: expected a number") from None
        else:
            out[name] = val
    return out


class Qmp:
    """A connected QMP monitor (``qemu.qmp.QMPClient``) with errors as :class:`RecordError`."""

    def __init__(self, address: str, label: str) -> None:
        self.address = address
        self.label = label  # "source" / "destination", for messages
        self._client: Any = None

    @staticmethod
    def _library():
        try:
            import qemu.qmp as qmp
        except ModuleNotFoundError:
            raise RecordError("the qemu.qmp package is not installed (pip install qemu.qmp)") from None
        return qmp

    async def connect(self, timeout: float = 0.0) -> "Qmp":
        """Connect; with ``timeout`` > 0 keep retrying that long (a QEMU being started)."""
        qmp = self._library()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            client = qmp.QMPClient(f"migtrace-{self.label}")
            try:
                await asyncio.wait_for(client.connect(self._target()), timeout=10)
                self._client = client
                return self
            except (qmp.ConnectError, asyncio.TimeoutError, OSError) as e:
                cause = getattr(e, "exc", None) or e
                if loop.time() >= deadline:
                    if not Path(self.address).exists() and ":" not in self.address:
                        why = "no such socket"
                    elif isinstance(e, asyncio.TimeoutError):
                        # QEMU serves one client per -qmp socket; a second one waits for a greeting
                        why = ("no QMP greeting within 10 s (another client holds this monitor? "
                               "give QEMU a second -qmp socket for record)")
                    else:
                        why = str(cause) or type(cause).__name__
                    raise RecordError(f"{self.label} QMP {self.address}: {why}") from None
            await asyncio.sleep(0.2)

    def _target(self) -> str | tuple[str, int]:
        """A unix socket path, or ``HOST:PORT`` for a QMP server on TCP (``-qmp tcp:…,server=on``)."""
        host, sep, port = self.address.rpartition(":")
        if sep and host and port.isdigit() and not Path(self.address).exists():
            return host.strip("[]"), int(port)
        return self.address

    async def execute(self, cmd: str, args: dict[str, Any] | None = None) -> Any:
        qmp = self._library()
        if self._client is None:
            raise RecordError(f"{self.label} QMP {self.address}: not connected")
        try:
            return await self._client.execute(cmd, args)
        except qmp.ExecuteError as e:
            raise RecordError(f"{self.label} QEMU refused {cmd}: {e}") from None
        except (qmp.QMPError, EOFError, OSError) as e:
            raise RecordError(f"{self.label} QMP {self.address}: connection lost during {cmd} "
                              f"({e or type(e).__name__})") from None

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await client.disconnect()
        except Exception:  # the peer already hung up (e.g. after quit): nothing left to release
            pass

    async def quit(self) -> None:
        """Ask QEMU to exit (``quit``) and drop the connection."""
        try:
            await self.execute("quit")
        except RecordError:
            pass  # QEMU may hang up before replying
        await self.close()

    # -- what recording asks --------------------------------------------------------------

    async def status(self) -> str:
        return str((await self.execute("query-status")).get("status", ""))

    async def version(self) -> str:
        v = (await self.execute("query-version"))["qemu"]
        return f"{v['major']}.{v['minor']}.{v['micro']}"

    async def config(self) -> dict[str, Any]:
        """``qemu_config``: capabilities and parameters as QEMU returns them."""
        caps = await self.execute("query-migrate-capabilities")
        params = await self.execute("query-migrate-parameters")
        return {"capabilities": caps, "parameters": params}

    async def apply(self, caps: list[tuple[str, bool]], params: list[tuple[str, str]]) -> None:
        """Set capabilities, then parameters (QEMU checks some parameters against capabilities)."""
        if caps:
            known = {c["capability"] for c in await self.execute("query-migrate-capabilities")}
            bad = [n for n, _ in caps if n not in known]
            if bad:
                raise RecordError(f"--capability {bad[0]}: {self.label} QEMU has no such capability "
                                  f"(it knows: {', '.join(sorted(known))})")
            await self.execute("migrate-set-capabilities",
                               {"capabilities": [{"capability": n, "state": s} for n, s in caps]})
        if params:
            current = await self.execute("query-migrate-parameters")
            await self.execute("migrate-set-parameters", typed_parameters(params, current))

    async def prepare_incoming(self, uri: str, caps: list[tuple[str, bool]],
                               params: list[tuple[str, str]]) -> bool:
        """Make a destination started with ``-incoming defer`` listen on ``uri``.

        Capabilities and parameters are set first (multifd, return-path and
        switchover-ack must be on at both ends, and multifd's channels are
        fixed when the destination starts listening).  Returns False when the
        destination already listens (started with ``-incoming URI`` or by
        someone else's ``migrate-incoming``): then nothing is changed.
        """
        st = await self.status()
        if st != "inmigrate":
            raise RecordError(f"destination QEMU {self.address} is not waiting for an incoming migration "
                              f"(status {st!r}); start it with -incoming defer")
        if await self.execute("query-migrate"):  # {} until migrate-incoming (socket-address after)
            return False
        await self.apply(caps, params)
        await self.execute("migrate-incoming", {"uri": uri})
        return True

    async def trace_events_enable(self, patterns: list[str]) -> list[str]:
        """Enable trace events matching ``patterns``; returns the names that were off (to restore)."""
        was_off: list[str] = []
        for pat in patterns:
            evs = await self.execute("trace-event-get-state", {"name": pat})
            if not evs:
                raise RecordError(f"--trace-event {pat}: no {self.label} QEMU trace event matches")
            was_off += [e["name"] for e in evs if e.get("state") == "disabled"]
            await self.execute("trace-event-set-state", {"name": pat, "enable": True})
        return was_off

    async def trace_events_restore(self, was_off: list[str]) -> None:
        for name in was_off:
            await self.execute("trace-event-set-state", {"name": name, "enable": False})
