# SPDX-License-Identifier: GPL-2.0-only
"""Simulation profiles: what is migrated, by which QEMU, over which link, with
which driver PRE_COPY policy, kernel and device firmware.

Every knob is a plain frozen dataclass field so a profile is data: it goes
into ``run.json`` (``labels``/``truth.profile``) unchanged and two runs with
the same profile and seed are byte-identical.  Named presets live in
:data:`FIRMWARE_PRESETS`, :data:`QEMU_PRESETS` and :data:`PRESETS`.

Sources for the behaviours the knobs select: shared/spec/vfio-virtio-stream.md
§4 (producer), §6 (trailer bug), §7 (PRE_COPY variants);
shared/spec/qemu-migration-stream.md §10, §14; shared/spec/virtio-admin.md §9.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Policy = Literal["cap128", "ratelimited"]
QemuFamily = Literal["8.1", "9.x", "10.x"]

KIB = 1024
MIB = 1024 * 1024

#: Kernels that append 8 junk bytes per DEVICE_DATA record (CVE-2025-38314).
TRAILER_BUG_RANGE = ((6, 13, 0), (6, 15, 2))


def kernel_has_trailer_bug(kernel: str) -> bool:
    """True for source kernels 6.13.0–6.15.2 (vfio-virtio-stream.md §6)."""
    nums: list[int] = []
    for piece in kernel.split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        nums.append(int(digits) if digits else 0)
    while len(nums) < 3:
        nums.append(0)
    lo, hi = TRAILER_BUG_RANGE
    return lo <= tuple(nums) <= hi


@dataclass(frozen=True)
class AdminFailure:
    """An admin command the device fails (virtio-admin.md §6).

    ``kind``:
      - ``precopy_metadata_einval``: the ``nth`` (1-based) METADATA_GET issued
        by a pre-copy info call on the source fails with ``status``/``qualifier``;
        the ioctl returns -EINVAL, QEMU zeroes its cached sizes and goes on.
      - ``parts_set_reject``: the destination rejects the DEV_PARTS_SET of the
        final (stop-copy) record; the load fails, the destination sends
        RP SHUT(1) and the source resumes the VM (migration ``failed``).
    """

    kind: Literal["precopy_metadata_einval", "parts_set_reject"]
    nth: int = 1
    status: int = 22          # EINVAL
    qualifier: int = 3        # INVALID_FIELD


@dataclass(frozen=True)
class FirmwareProfile:
    """The VF's device firmware: device context and admin-command behaviour.

    The device context (a DEV_PARTS_GET(ALL) result) is a virtio-net VF with
    ``queue_pairs`` pairs (+ CVQ), the net CVQ parts, an RSS table of
    ``rss_table_size`` entries (0 = no RSS parts) and a multicast MAC table
    that starts with ``multicast_macs`` entries and gains
    ``multicast_growth`` entries per snapshot (the guest joins groups while
    it runs), up to ``multicast_max``.  ``vlans`` VLAN ids are in the filter
    table.  METADATA SIZE reports the current parts size plus
    ``metadata_slack`` bytes, rounded up to ``metadata_round`` (the spec's
    "maximum size"; firmware may over-report).

    Latencies are medians in milliseconds; each command's latency is the
    median times a log-normal factor with sigma ``latency_sigma``.
    DEV_PARTS_GET / DEV_PARTS_SET add ``*_per_kib_ms`` per KiB of parts.
    """

    name: str
    version: str
    vendor: str = "example"
    model: str = "virtio-net VF"
    queue_pairs: int = 1
    rss_table_size: int = 0
    vlans: int = 0
    multicast_macs: int = 2
    multicast_growth: int = 1
    multicast_max: int = 24
    metadata_slack: int = 0
    metadata_round: int = 1
    obj_create_ms: float = 0.15
    obj_destroy_ms: float = 0.10
    metadata_get_ms: float = 0.08
    parts_get_ms: float = 0.6
    parts_get_per_kib_ms: float = 0.05
    parts_set_ms: float = 1.5
    parts_set_per_kib_ms: float = 0.1
    mode_stop_ms: float = 2.0
    mode_resume_ms: float = 1.0
    latency_sigma: float = 0.08
    failures: tuple[AdminFailure, ...] = ()


@dataclass(frozen=True)
class QemuProfile:
    """The QEMU build and migration parameters (qemu-migration-stream.md §10.2).

    ``family`` selects stream layout and trace-event formats: ``8.1`` (hex
    sizes in VFIO traces, no P2P prepare step, serialized iteration),
    ``9.x`` (9.2: decimal sizes, 3-argument set_state, every iterable gets
    a PART each round), ``10.x`` (10.0: SWITCHOVER_START, VFIO stop-copy
    data as multifd device-state packets when ``multifd_channels`` > 0).
    """

    family: QemuFamily
    version: str
    machine: str
    switchover_ack: bool = True
    return_path: bool = True
    multifd_channels: int = 0
    downtime_limit_ms: int = 300
    #: QEMU's switchover threshold (expected bandwidth x downtime-limit); a
    #: knob because the simulated guest is scaled down (docs/simulator.md)
    threshold_bytes: int = 32 * KIB
    #: avail-switchover-bandwidth as printed by migrate_transferred (0 = unset)
    switchover_bandwidth: int = 0
    #: pacing of one pre-copy iteration (bitmap sync, dirty-log collection)
    iteration_ms: float = 60.0
    iteration_sigma: float = 0.15
    #: destination cost of loading the non-VFIO FULL sections and starting the VM
    dst_devices_load_ms: float = 3.0
    dst_vm_start_ms: float = 1.5
    #: source cost of vm_stop excluding the VFIO state change (vCPU pause, flush)
    src_vm_stop_ms: float = 2.0


@dataclass(frozen=True)
class SimProfile:
    """One simulated migration scenario.

    Guest: ``ram_bytes`` of RAM of which ``initial_normal_pages`` are non-zero
    at start; the guest dirties ``busy_dirty_pages_per_s`` pages per second
    for ``busy_s`` seconds (mostly zero pages on the wire; a fraction
    ``dirty_normal_fraction`` is non-zero), then ``idle_dirty_pages_per_s``.
    While it is busy the dirty set stays above QEMU's switchover threshold,
    so ``busy_s`` sets the length of pre-copy.
    """

    name: str
    qemu: QemuProfile
    firmware: FirmwareProfile
    policy: Policy = "ratelimited"
    kernel: str = "6.16.0"
    trailer_bug: bool = False
    vfs: int = 1
    ram_bytes: int = 2 * MIB
    vcpus: int = 2
    initial_normal_pages: int = 1
    busy_s: float = 3.5
    busy_dirty_pages_per_s: float = 300.0
    idle_dirty_pages_per_s: float = 0.0
    dirty_normal_fraction: float = 0.002
    link_gbit_per_s: float = 10.0
    link_latency_us: float = 60.0
    mss: int = 1448
    #: also write the admin records into each host's trace.dat (trace_marker_raw pieces,
    #: admin-capture.md "ftrace" container), as a capture helper on the host would
    admin_in_trace: bool = False
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def to_json(self) -> dict[str, Any]:
        """The profile as plain JSON data (stored in run.json ``truth.profile``)."""
        d = asdict(self)
        d["firmware"]["failures"] = [asdict(f) for f in self.firmware.failures]
        return d


# ------------------------------------------------------------------ presets

FIRMWARE_PRESETS: dict[str, FirmwareProfile] = {
    # Baseline: one queue pair, no RSS, METADATA SIZE exact (records need two reads).
    "fw-28.40": FirmwareProfile(name="fw-28.40", version="28.40.1000"),
    # Same device; regresses stop-copy: slower DEV_MODE_SET stop and DEV_PARTS_SET.
    "fw-28.41": FirmwareProfile(name="fw-28.41", version="28.41.1000",
                                mode_stop_ms=9.0, parts_set_ms=14.0, parts_get_ms=3.5),
    # Changes PRE_COPY behaviour: METADATA SIZE rounded up to 4 KiB (QEMU reads a
    # record in one chunk: pre-copy chunks halve, cap128 re-snapshots double);
    # adds RSS (8-entry table) to the context.
    "fw-29.0": FirmwareProfile(name="fw-29.0", version="29.0.200", rss_table_size=8, multicast_max=16,
                               metadata_round=4 * KIB),
    # Fails one pre-copy METADATA_GET with EINVAL/INVALID_FIELD (benign).
    "fw-28.40-einval": FirmwareProfile(
        name="fw-28.40-einval", version="28.40.1001",
        failures=(AdminFailure("precopy_metadata_einval", nth=3),)),
    # The destination rejects the final DEV_PARTS_SET: the migration fails.
    "fw-28.40-setreject": FirmwareProfile(
        name="fw-28.40-setreject", version="28.40.1002",
        failures=(AdminFailure("parts_set_reject"),)),
}

QEMU_PRESETS: dict[str, QemuProfile] = {
    "8.1": QemuProfile(family="8.1", version="8.1.5", machine="pc-q35-8.1"),
    "9.x": QemuProfile(family="9.x", version="9.2.0", machine="pc-q35-9.2"),
    "10.x": QemuProfile(family="10.x", version="10.0.2", machine="pc-q35-10.0",
                        multifd_channels=2),
}


def _p(name: str, qemu: str = "9.x", fw: str = "fw-28.40", **kw: Any) -> SimProfile:
    return SimProfile(name=name, qemu=QEMU_PRESETS[qemu], firmware=FIRMWARE_PRESETS[fw], **kw)


PRESETS: dict[str, SimProfile] = {
    # Merged kernel, QEMU 9.2, ratelimited PRE_COPY.
    "default": _p("default"),
    # Posted V0 series on a vendor kernel: 128-call cap; pre-copy long enough
    # to exhaust the cap (>128 info calls).
    "cap128": _p("cap128", policy="cap128", kernel="6.12.0-vfio-virtio-v0", busy_s=9.0),
    # Kernel 6.14.2 (6.13.0–6.15.2): 8-byte trailer per record.
    "trailer": _p("trailer", kernel="6.14.2", trailer_bug=True),
    "qemu81": _p("qemu81", qemu="8.1"),
    # multifd sends a SYNC packet per channel per RAM pass: a shorter pre-copy keeps it small
    "qemu10": _p("qemu10", qemu="10.x", busy_s=2.0),
    "two-vfs": _p("two-vfs", vfs=2),
    "no-ack": SimProfile(name="no-ack", qemu=replace(QEMU_PRESETS["9.x"], switchover_ack=False),
                         firmware=FIRMWARE_PRESETS["fw-28.40"]),
    "no-return-path": SimProfile(name="no-return-path",
                                 qemu=replace(QEMU_PRESETS["9.x"], switchover_ack=False, return_path=False),
                                 firmware=FIRMWARE_PRESETS["fw-28.40"]),
    "einval": _p("einval", fw="fw-28.40-einval"),
    "set-reject": _p("set-reject", fw="fw-28.40-setreject"),
    "admin-in-trace": _p("admin-in-trace", admin_in_trace=True),
}


def resolve(profile: str | SimProfile, *, firmware: str | None = None, policy: str | None = None,
            qemu: str | None = None, trailer_bug: bool | None = None) -> SimProfile:
    """A preset by name (or a profile) with the CLI's overrides applied.

    ``trailer_bug=True`` without a kernel in the affected range moves the
    kernel to 6.14.2; ``policy="cap128"`` marks the kernel as carrying the V0
    series (the cap was never merged)."""
    p = PRESETS[profile] if isinstance(profile, str) else profile
    if firmware is not None:
        p = replace(p, firmware=FIRMWARE_PRESETS[firmware])
    if qemu is not None:
        p = replace(p, qemu=QEMU_PRESETS[qemu])
    if policy is not None and policy != p.policy:
        if policy not in ("cap128", "ratelimited"):
            raise ValueError(f"unknown policy {policy!r}")
        p = replace(p, policy=policy)
        if policy == "cap128" and p.busy_s < 8.5:
            p = replace(p, busy_s=9.0)
    if trailer_bug is not None and trailer_bug != p.trailer_bug:
        kernel = p.kernel
        if trailer_bug and not kernel_has_trailer_bug(kernel):
            kernel = "6.14.2"
        if not trailer_bug and kernel_has_trailer_bug(kernel):
            kernel = "6.15.3"
        p = replace(p, trailer_bug=trailer_bug, kernel=kernel)
    return p
