# SPDX-License-Identifier: GPL-2.0-only
"""Device-part value layouts: one registry entry per layout.

Spec: shared/spec/device-parts.md §4, §5, §8.2/§8.3.  Every value layout is
declared once, as a scapy layer (:mod:`dissect.virtio.value_layers`,
:mod:`dissect.virtio.netparts`), and registered here with where it applies:
a part type, a virtio-net CVQ (class, command) selector, or a chooser that
reads the selector (PCI_COMMON_CFG picks its field's size from the offset).
The bulk decoder and encoder of each layout are compiled from the layer
(:func:`dissect.common.fields.compile_layer`), so the scapy path and the fast
path cannot disagree on a byte.  Both paths turn decoded fields into the
contract's ``dev_part.value`` object (json-lines.md) through the same
``to_object``: by default every field except length fields and reserved
fields, byte strings as hex.

Adding a part type is one call (docs/extending.md)::

    register_value("net_foo", NetFooValue, part_type=0x0201, name="NET_FOO")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scapy.packet import NoPayload, Packet, Raw

from dissect.common.fields import Compiled, compile_layer, object_decoder, packet_values
from dissect.virtio import names as N
from dissect.virtio import netparts as NP
from dissect.virtio import value_layers as VL

ToObject = Callable[[dict[str, Any], bytes], dict[str, Any]]
#: chooser(selector, device_type) -> the entry that applies, or None (raw)
Chooser = Callable[[bytes, int], "ValueEntry | None"]


@dataclass(frozen=True)
class ValueEntry:
    """One registered value layout."""

    key: str
    layer: type[Packet]
    compiled: Compiled
    to_object: ToObject
    #: fewer value bytes than this is undecodable (raw)
    min_size: int
    #: the value must be exactly the layout (no excess bytes allowed)
    exact: bool
    #: generated value -> contract object (None when the value is raw), for the hot loop
    fast: Callable[[Any, bytes], dict[str, Any] | None]


def _default_fields(compiled: Compiled) -> tuple[list[str], frozenset[str]]:
    """The default contract rule: every field but length and reserved fields; bytes as hex."""
    drop = compiled.length_fields | {n for n in compiled.names if n == "reserved" or n.endswith("_reserved")}
    keep = [s for s in compiled.steps if s.name not in drop]
    return [s.name for s in keep], frozenset(s.name for s in keep if s.kind in ("bytes", "strlen"))


def _default_object(compiled: Compiled) -> ToObject:
    keep, hexed = _default_fields(compiled)

    def to_object(vals: dict[str, Any], selector: bytes) -> dict[str, Any]:
        return {k: (vals[k].hex() if k in hexed else vals[k]) for k in keep}
    return to_object


_BY_TYPE: dict[int, Chooser] = {}
#: part type -> generated value decoder for virtio-net VFs (device type 1): one
#: lookup and one call per part in the hot loop, no chooser in between
_FAST_NET: dict[int, Callable[[Any, bytes], dict[str, Any] | None]] = {}
_BY_CVQ: dict[tuple[int, int], ValueEntry] = {}
_BY_LAYER: dict[type[Packet], ValueEntry] = {}
#: called with (part_type, name) when a registration names a part type (the header
#: layers' enum field keeps its own copy of the names)
NAME_HOOKS: list[Callable[[int, str], None]] = []
#: layout key -> value layer, for the layouts chosen by type or CVQ selector.
VALUE_LAYERS: dict[str, type[Packet]] = {}


def _entry(key: str, layer: type[Packet], to_object: ToObject | None, min_size: int | None,
           exact: bool) -> ValueEntry:
    compiled = compile_layer(layer)
    need = compiled.min_size if min_size is None else min_size
    keep, hexed = _default_fields(compiled)
    fast = object_decoder(compiled, keep, hexed, min_size=need, exact=exact, to_object=to_object)
    e = ValueEntry(key, layer, compiled, to_object or _default_object(compiled), need, exact, fast)
    _BY_LAYER[layer] = e
    return e


def register_value(key: str, layer: type[Packet], *, part_type: int | None = None,
                   cvq: tuple[int, int] | None = None, name: str | None = None,
                   to_object: ToObject | None = None, min_size: int | None = None,
                   exact: bool = False, device_type: int | None = None) -> ValueEntry:
    """Register a value layout.

    ``part_type``: the layout is the value of every part of that type (types
    0x0200+ are device-type specific: they apply to ``device_type`` only,
    default virtio-net, 1).  ``cvq``: the layout is the value of the virtio-net
    CVQ part with that (class, command) selector.  ``name`` adds the part
    type's name (prefix removed) to :data:`names.PART_TYPES`.
    """
    e = _entry(key, layer, to_object, min_size, exact)
    VALUE_LAYERS[key] = layer
    if part_type is not None:
        if name is not None:
            N.PART_TYPES[part_type] = name
            for hook in NAME_HOOKS:
                hook(part_type, name)
        only = device_type if device_type is not None else (
            N.NET_DEVICE_ID if part_type >= N.DEVICE_TYPE_PARTS else None)
        _BY_TYPE[part_type] = (lambda sel, dt, e=e, only=only: e if only is None or dt == only else None)
        if only in (None, 1):
            _FAST_NET[part_type] = e.fast
        else:
            _FAST_NET.pop(part_type, None)
    if cvq is not None:
        _BY_CVQ[cvq] = e
    return e


def register_chooser(part_type: int, chooser: Chooser) -> None:
    """Register a part type whose value layout depends on its selector."""
    _BY_TYPE[part_type] = chooser

    def via_chooser(v: Any, sel: bytes) -> dict[str, Any] | None:
        e = chooser(sel, 1)
        return e.fast(v, sel) if e is not None else None
    _FAST_NET[part_type] = via_chooser


def layout(part_type: int, selector: bytes, value: bytes | memoryview,
           device_type: int = 1) -> tuple[ValueEntry | None, int, dict[str, Any] | None]:
    """``(entry, used, fields)`` for a value, or ``(None, len(value), None)`` when raw."""
    ch = _BY_TYPE.get(part_type)
    e = ch(selector, device_type) if ch is not None else None
    ln = len(value)
    if e is None or ln < e.min_size:
        return None, ln, None
    r = e.compiled.decode(value)
    if r is None or (e.exact and r[1] != ln):
        return None, ln, None
    return e, r[1], r[0]


def value_layout(part_type: int, selector: bytes, value: bytes | memoryview,
                 device_type: int = 1) -> tuple[str, int]:
    """Which value layout applies and how many value bytes it covers.

    Returns ``(key, known_len)``; ``key`` is ``"raw"`` when the value cannot
    be decoded with a known layout (unknown type, too short, inconsistent).
    ``len(value) - known_len`` bytes are excess (a newer, longer layout).
    """
    e, used, _f = layout(part_type, selector, value, device_type)
    return (e.key, used) if e is not None else ("raw", used)


def decode_value(part: Sequence[Any], device_type: int = 1) -> dict[str, Any]:
    """The contract's ``dev_part.value`` object for a part tuple
    ``(offset, part_type, flags, selector, length, value, ...)``.

    Undecodable values give ``{"raw": hex}``; a value longer than its known
    layout gives the decoded prefix plus ``"excess": hex``.
    """
    if device_type == 1:
        f = _FAST_NET.get(part[1])
        out = f(part[5], part[3]) if f is not None else None
    else:
        ch = _BY_TYPE.get(part[1])
        e = ch(part[3], device_type) if ch is not None else None
        out = e.fast(part[5], part[3]) if e is not None else None
    return out if out is not None else {"raw": bytes(part[5]).hex()}


def packet_value_object(val: Packet, selector: bytes) -> dict[str, Any]:
    """The contract's ``dev_part.value`` object from a dissected value layer."""
    if isinstance(val, (Raw, NoPayload)):
        return {"raw": bytes(val).hex()}
    e = _BY_LAYER[type(val)]
    out = e.to_object(packet_values(val, e.compiled), selector)
    if not isinstance(val.payload, NoPayload):
        out["excess"] = bytes(val.payload).hex()
    return out


def layer_for(part_type: int, selector: bytes, value: bytes, device_type: int = 1) -> type[Packet] | None:
    """The value layer for a part's value, or None when the value is raw."""
    e, _used, _f = layout(part_type, selector, value, device_type)
    return e.layer if e is not None else None


def empty_value_layer(part_type: int, selector: bytes, device_type: int = 1) -> type[Packet] | None:
    """The layer of a layout that a zero-length value still has (ANNOUNCE_ACK, an empty VLAN table)."""
    return layer_for(part_type, selector, b"", device_type)


def encode_value(layer: type[Packet], **values: Any) -> bytes:
    """The value bytes of ``layer`` with the given fields (length fields computed)."""
    return _BY_LAYER[layer].compiled.encode(values)


# ---------------------------------------------------------------- registry


def _features(vals: dict[str, Any], sel: bytes) -> dict[str, Any]:
    bits = [w * 64 + i for w, word in enumerate(vals["feature_bits"]) if word for i in range(64) if word >> i & 1]
    return {"bits": bits, "names": [N.feature_name(b) for b in bits]}


def _status(vals: dict[str, Any], sel: bytes) -> dict[str, Any]:
    s = vals["status"]
    return {"value": s, "names": N.status_names(s)}


def pci_field(selector: bytes) -> tuple[int, str | None, int | None]:
    """(offset, field name, field size) of a PCI_COMMON_CFG selector."""
    off = int.from_bytes(bytes(selector[:4]), "little")
    f = N.PCI_COMMON_CFG_FIELDS.get(off)
    return (off, f[0], f[1]) if f else (off, None, None)


def _pci(vals: dict[str, Any], sel: bytes) -> dict[str, Any]:
    return {"field": pci_field(sel)[1], "value": vals["value"]}


_feat = register_value("features", VL.DevFeaturesValue, part_type=N.DEV_FEATURES, to_object=_features, min_size=8)
_BY_TYPE[N.DRV_FEATURES] = _BY_TYPE[N.DEV_FEATURES]
_FAST_NET[N.DRV_FEATURES] = _feat.fast
register_value("status", VL.DeviceStatusValue, part_type=N.DEVICE_STATUS, to_object=_status)
register_value("vq_cfg", VL.VqCfgValue, part_type=N.VQ_CFG)
register_value("vq_notify", VL.VqNotifyCfgValue, part_type=N.VQ_NOTIFY_CFG)

_PCI = {size: _entry("pci_cfg", layer, _pci, None, True) for size, layer in VL.PCI_BY_SIZE.items()}
register_chooser(N.PCI_COMMON_CFG, lambda sel, dt: _PCI.get(pci_field(sel)[2]))

for _cmd in range(6):  # VIRTIO_NET_CTRL_RX_PROMISC .. _NOBCAST share one layout
    _rx = register_value("net_rx", NP.NetRxValue, cvq=(0, _cmd), to_object=lambda v, s: {"on": bool(v["on"])})
register_value("net_mac_table", NP.NetMacTableValue, cvq=(1, 0))
register_value("net_mac_addr", NP.NetMacAddrValue, cvq=(1, 1))
register_value("net_vlan", NP.NetVlanTableValue, cvq=(2, 0))
register_value("net_announce", NP.NetAnnounceAckValue, cvq=(3, 0))
register_value("net_mq_pairs", NP.NetMqVqPairsValue, cvq=(4, 0))
register_value("net_rss", NP.NetRssConfigValue, cvq=(4, 1))
register_value("net_hash", NP.NetHashConfigValue, cvq=(4, 2))
register_chooser(N.NET_CVQ_CFG, lambda sel, dt: _BY_CVQ.get((sel[0], sel[1])) if dt == 1 else None)
