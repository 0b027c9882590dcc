# SPDX-License-Identifier: GPL-2.0-only
"""The simulator's data: what the model produces (plain dataclasses), its
units and identities.  See :mod:`analysis.simulate.model`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.simulate.profiles import SimProfile

MS = 1_000_000
US = 1_000
PAGE = 4096
HZ_NS = 1_000_000_000  # the merged driver's rate-limit interval (1 s)
CAP_CALLS = 128        # VIRTIOVF_MAX_PRE_COPY_CALLS of the V0 series
QEMU_BUFFER_MAX = 1 << 20
WINDOW_NS = 100 * MS   # QEMU's BUFFER_DELAY bandwidth window

# RunState values (qapi/run-state.json order)
RUN_STATE = {"inmigrate": 1, "paused": 4, "postmigrate": 5, "finish-migrate": 7, "running": 9}


@dataclass
class AdminCmd:
    """One admin command on a PF's admin queue (virtio-admin.md §9.2)."""

    side: str            # "source" | "destination"
    vf: int
    tag: int
    opcode: str          # contract name, e.g. "DEV_PARTS_GET"
    ts_ns: int           # request queued
    latency_ns: int      # completion - request
    reason: str
    obj_id: int | None = None
    obj_op: int | None = None       # RESOURCE_OBJ_CREATE: 0 GET, 1 SET
    mode_flags: int | None = None   # DEV_MODE_SET
    size: int | None = None         # METADATA_GET(SIZE) result
    parts: bytes | None = None      # DEV_PARTS_GET result / DEV_PARTS_SET data (after the obj header)
    record: int | None = None       # stream record index this GET produced / SET consumed
    status: int = 0
    qualifier: int = 0

    @property
    def done_ns(self) -> int:
        return self.ts_ns + self.latency_ns


@dataclass
class Record:
    """One DEVICE_DATA record in a VF's stream (vfio-virtio-stream.md §3)."""

    vf: int
    index: int
    generation: int
    offset: int           # in the VF's concatenated stream
    parts_len: int
    trailer: bytes
    taken_ns: int         # DEV_PARTS_GET completion
    reason: str           # precopy-entry | precopy-info | stopcopy
    data: bytes           # header + payload (+ trailer)
    part_types: tuple[int, ...]
    phase: str | None = None          # phase of the chunk carrying the header
    header_ts_ns: int | None = None   # capture time of that chunk

    @property
    def record_size(self) -> int:
        return self.parts_len + len(self.trailer)

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass
class Chunk:
    """One ``read()`` by QEMU that returned data: a DEV_DATA_STATE chunk or multifd packet."""

    vf: int
    phase: str            # precopy | stopcopy
    data_offset: int
    size: int
    ts_ns: int
    iteration: int | None
    unit: "Unit | None" = None


@dataclass
class Unit:
    """One write on a flow: what the renderer encodes, at its capture time.

    ``flow`` is ``main`` or ``multifd<N>``; ``direction`` ``c2s`` (source to
    destination) or ``s2c`` (return path).
    """

    ts_ns: int
    flow: str
    direction: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    write: int = 0           # units with the same write id leave in one write()
    end_ns: int = 0          # capture time of the segment holding the unit's last byte


@dataclass
class TraceEvent:
    """A QEMU trace event (ftrace backend) on one side."""

    side: str
    ts_ns: int
    tid: int
    comm: str
    name: str
    args: dict[str, Any]


@dataclass
class Ioctl:
    """A VFIO ioctl/read/write system call by QEMU (for kernel syscall events)."""

    side: str
    tid: int
    comm: str
    start_ns: int
    end_ns: int
    call: str            # ioctl | read | write
    fd: int
    cmd: int | None      # ioctl request number
    ret: int
    count: int = 0       # read/write: bytes requested


@dataclass
class Iteration:
    index: int
    start_ns: int
    end_ns: int
    exact: bool
    dirty_pages: int
    zero_pages: int
    normal_pages: int
    pending_bytes: int
    threshold_bytes: int
    vfio: list[dict[str, int]]


@dataclass
class Timeline:
    profile: SimProfile
    seed: int
    units: list[Unit]
    events: list[TraceEvent]
    admin: list[AdminCmd]
    ioctls: list[Ioctl]
    records: list[list[Record]]
    chunks: list[list[Chunk]]
    iterations: list[Iteration]
    marks: dict[str, int]
    info_calls: list[list[dict[str, int]]]
    config_blobs: list[bytes]
    ram: dict[str, Any]
    outcome: str


# --------------------------------------------------------------- identities

def vf_host_name(vf: int) -> str:
    """The VF's host PCI address (QEMU's ``vbasedev->name`` in trace events)."""
    return f"0000:3b:00.{vf + 1}"


def vf_idstr(vf: int) -> str:
    """The VFIO section idstr (guest PCI path + ``/vfio``)."""
    return f"0000:00:{5 + vf:02x}.0/vfio"


SRC_OWNER = "0000:3b:00.0"
DST_OWNER = "0000:5e:00.0"
SRC_PID, DST_PID = 4242, 5151


class _Threads:
    def __init__(self, family: str, side: str) -> None:
        new = family != "8.1"  # 9.2+ thread names
        if side == "source":
            self.main = (SRC_PID, "qemu-system-x86")
            self.mig = (SRC_PID + 8, "mig/src/main" if new else "live_migration")
            self.rp = (SRC_PID + 9, "mig/src/return" if new else "return path")
            self.dev = (SRC_PID + 14, "vfio-save")
        else:
            self.main = (DST_PID, "qemu-system-x86")
            self.mig = self.main
            self.rp = self.main
            self.dev = (DST_PID + 9, "vfio-load")


