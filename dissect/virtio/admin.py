# SPDX-License-Identifier: GPL-2.0-only
"""Virtio 1.4 group-administration commands: the public facade.

Spec: ``shared/spec/virtio-admin.md``.  Importing this module loads every
admin layer: the header layers, names and result dispatch
(:mod:`dissect.virtio.admin_hdr`), the ``command_specific_data`` layers
(:mod:`dissect.virtio.admin_data`), the ``command_specific_result`` layers
(:mod:`dissect.virtio.admin_result`) and the plain-dict API
(:mod:`dissect.virtio.admin_decode`).  Nothing inside the package imports
this module, so the admin modules have no import cycle.

Adding an opcode is one call (docs/extending.md)::

    register_opcode(0x13, "FOO_GET", data=VirtioAdminFooData, result=VirtioAdminFooResult)
"""
from __future__ import annotations

from scapy.packet import Packet, bind_layers

from dissect.virtio import admin_data as _admin_data  # noqa: F401  (binds the data layers)
from dissect.virtio import admin_result as _admin_result  # noqa: F401  (binds the result layers)
from dissect.virtio.admin_decode import decode_request, decode_result  # noqa: F401
from dissect.virtio.admin_hdr import *  # noqa: F401,F403  (names, layers, dispatch)
from dissect.virtio.admin_hdr import _OPCODE_S2I, OPCODE_GROUP, OPCODES, VirtioAdminCmd, bind_result


def register_opcode(opcode: int, name: str, *, data: type[Packet] | None = None,
                    result: type[Packet] | None = None, subtype: int | None = None,
                    group_type: int | None = None) -> None:
    """Name ``opcode`` and register its data and result layers.

    ``data`` is bound to :class:`VirtioAdminCmd` for that opcode (scapy
    ``bind_layers``), ``result`` is the ``command_specific_result`` for every
    request of it (or for requests whose subtype field equals ``subtype``);
    ``group_type`` restricts the command to one group type (§4).  The layers'
    ``fields_desc`` are the whole declaration: :func:`decode_request`,
    :func:`decode_result`, the admin-capture decoder and ``migtrace decode``
    follow from them.
    """
    OPCODES[opcode] = name
    _OPCODE_S2I[name] = opcode
    if data is not None:
        bind_layers(VirtioAdminCmd, data, opcode=opcode)
        _admin_data.DATA_LAYERS[opcode] = data
    if result is not None:
        bind_result(opcode, result, subtype)
    if group_type is not None:
        OPCODE_GROUP[opcode] = group_type
