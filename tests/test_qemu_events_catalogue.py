# SPDX-License-Identifier: GPL-2.0-only
"""Every entry of the QEMU trace-event catalogue, one hand-written line per version variant.

Lines are written by hand from the format strings of
qemu-trace-events.md (§2 VFIO, §3 migration core); the expected arguments
are typed as the declaration says (hex fields parsed from hex).  Each line
must parse to exactly that variant and those arguments, and rendering the
arguments must give the line back.
"""
from __future__ import annotations

import pytest

from dissect.qemu.trace_events import Catalogue, format_event, parse_event

D = "0000:3b:00.1"

# (event, variant, line, args)
LINES: list[tuple[str, str | None, str, dict]] = [
    # --- hw/vfio/migration.c ---
    ("vfio_load_bufs_thread_start", None, "vfio_load_bufs_thread_start  (0000:3b:00.1)", {"name": D}),
    ("vfio_load_bufs_thread_end", None, "vfio_load_bufs_thread_end  (0000:3b:00.1)", {"name": D}),
    ("vfio_load_cleanup", None, "vfio_load_cleanup  (0000:3b:00.1)", {"name": D}),
    ("vfio_load_device_config_state", None, "vfio_load_device_config_state  (0000:3b:00.1)", {"name": D}),
    ("vfio_load_device_config_state_start", None, "vfio_load_device_config_state_start  (0000:3b:00.1)",
     {"name": D}),
    ("vfio_load_device_config_state_end", None, "vfio_load_device_config_state_end  (0000:3b:00.1)",
     {"name": D}),
    ("vfio_load_state", None, "vfio_load_state  (0000:3b:00.1) data 0xffffffffef100004",
     {"name": D, "data": 0xFFFFFFFFEF100004}),
    ("vfio_load_state_device_data", "v1",
     "vfio_load_state_device_data  (0000:3b:00.1) Offset 0x1000 size 0x2000",
     {"name": D, "data_offset": 0x1000, "data_size": 0x2000}),
    ("vfio_load_state_device_data", "8.0-hex", "vfio_load_state_device_data  (0000:3b:00.1) size 0x100000 ret 0",
     {"name": D, "data_size": 1048576, "ret": 0}),
    ("vfio_load_state_device_data", "9.2-dec", "vfio_load_state_device_data  (0000:3b:00.1) size 1048576 ret -5",
     {"name": D, "data_size": 1048576, "ret": -5}),
    ("vfio_load_state_device_buffer_incoming", None, "vfio_load_state_device_buffer_incoming  (0000:3b:00.1) idx 3",
     {"name": D, "idx": 3}),
    ("vfio_load_state_device_buffer_start", None, "vfio_load_state_device_buffer_start  (0000:3b:00.1)",
     {"name": D}),
    ("vfio_load_state_device_buffer_starved", None, "vfio_load_state_device_buffer_starved  (0000:3b:00.1) idx 4",
     {"name": D, "idx": 4}),
    ("vfio_load_state_device_buffer_load_start", None,
     "vfio_load_state_device_buffer_load_start  (0000:3b:00.1) idx 5", {"name": D, "idx": 5}),
    ("vfio_load_state_device_buffer_load_end", None,
     "vfio_load_state_device_buffer_load_end  (0000:3b:00.1) idx 5", {"name": D, "idx": 5}),
    ("vfio_load_state_device_buffer_end", None, "vfio_load_state_device_buffer_end  (0000:3b:00.1)", {"name": D}),
    ("vfio_migration_probe", "v1", "vfio_migration_probe  (0000:3b:00.1) Region 9", {"name": D, "index": 9}),
    ("vfio_migration_probe", "8.0", "vfio_migration_probe  (0000:3b:00.1)", {"name": D}),
    ("vfio_migration_realize", None, "vfio_migration_realize  (0000:3b:00.1)", {"name": D}),
    ("vfio_migration_set_device_state", None, "vfio_migration_set_device_state  (0000:3b:00.1) state RUNNING_P2P",
     {"name": D, "state": "RUNNING_P2P"}),
    ("vfio_migration_set_state", "v1", "vfio_migration_set_state  (0000:3b:00.1) state 3", {"name": D, "state": 3}),
    ("vfio_migration_set_state", "8.0-2arg", "vfio_migration_set_state  (0000:3b:00.1) state STOP_COPY",
     {"name": D, "state": "STOP_COPY"}),
    ("vfio_migration_set_state", "9.2-3arg",
     "vfio_migration_set_state  (0000:3b:00.1) new state PRE_COPY, recover state ERROR",
     {"name": D, "new_state": "PRE_COPY", "recover_state": "ERROR"}),
    ("vfio_migration_state_notifier", "9.0-int", "vfio_migration_state_notifier  (0000:3b:00.1) state 1",
     {"name": D, "state": 1}),
    ("vfio_migration_state_notifier", "str", "vfio_migration_state_notifier  (0000:3b:00.1) state completed",
     {"name": D, "state": "completed"}),
    ("vfio_save_block", None, "vfio_save_block  (0000:3b:00.1) data_size 1048576", {"name": D, "data_size": 1048576}),
    ("vfio_save_block_precopy_empty_hit", None, "vfio_save_block_precopy_empty_hit  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_cleanup", None, "vfio_save_cleanup  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_complete_precopy", "8.0", "vfio_save_complete_precopy  (0000:3b:00.1) ret 0", {"name": D, "ret": 0}),
    ("vfio_save_complete_precopy", "v1", "vfio_save_complete_precopy  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_complete_precopy_start", None, "vfio_save_complete_precopy_start  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_complete_precopy_thread_start", None,
     "vfio_save_complete_precopy_thread_start  (0000:3b:00.1) idstr 0000:00:05.0/vfio instance 0",
     {"name": D, "idstr": "0000:00:05.0/vfio", "instance_id": 0}),
    ("vfio_save_complete_precopy_thread_end", None, "vfio_save_complete_precopy_thread_end  (0000:3b:00.1) ret 0",
     {"name": D, "ret": 0}),
    ("vfio_save_device_config_state", None, "vfio_save_device_config_state  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_iterate", "v1", "vfio_save_iterate  (0000:3b:00.1) data_size 4096", {"name": D, "data_size": 4096}),
    ("vfio_save_iterate", "8.1-hex",
     "vfio_save_iterate  (0000:3b:00.1) precopy initial size 0x4000 precopy dirty size 0x1f",
     {"name": D, "precopy_init_size": 16384, "precopy_dirty_size": 31}),
    ("vfio_save_iterate", "9.2-dec",
     "vfio_save_iterate  (0000:3b:00.1) precopy initial size 16384 precopy dirty size 31",
     {"name": D, "precopy_init_size": 16384, "precopy_dirty_size": 31}),
    ("vfio_save_iterate_start", None, "vfio_save_iterate_start  (0000:3b:00.1)", {"name": D}),
    ("vfio_save_setup", "8.0-hex", "vfio_save_setup  (0000:3b:00.1) data buffer size 0x100000",
     {"name": D, "data_buffer_size": 1048576}),
    ("vfio_save_setup", "9.2-dec", "vfio_save_setup  (0000:3b:00.1) data buffer size 1048576",
     {"name": D, "data_buffer_size": 1048576}),
    ("vfio_save_setup", "v1", "vfio_save_setup  (0000:3b:00.1)", {"name": D}),
    ("vfio_state_pending_estimate", "8.1-hex",
     "vfio_state_pending_estimate  (0000:3b:00.1) precopy 0x4000 postcopy 0x0 precopy initial size 0x4000 "
     "precopy dirty size 0x0",
     {"name": D, "precopy": 16384, "postcopy": 0, "precopy_init_size": 16384, "precopy_dirty_size": 0}),
    ("vfio_state_pending_estimate", "9.2-dec",
     "vfio_state_pending_estimate  (0000:3b:00.1) precopy 16384 postcopy 0 precopy initial size 16384 "
     "precopy dirty size 0",
     {"name": D, "precopy": 16384, "postcopy": 0, "precopy_init_size": 16384, "precopy_dirty_size": 0}),
    ("vfio_state_pending_exact", "8.0-hex",
     "vfio_state_pending_exact  (0000:3b:00.1) precopy 0x0 postcopy 0x0 stopcopy size 0x1900000000",
     {"name": D, "precopy": 0, "postcopy": 0, "stopcopy_size": 100 * 2**30}),
    ("vfio_state_pending_exact", "8.1-hex",
     "vfio_state_pending_exact  (0000:3b:00.1) precopy 0x0 postcopy 0x0 stopcopy size 0x1287 "
     "precopy initial size 0x0 precopy dirty size 0x0",
     {"name": D, "precopy": 0, "postcopy": 0, "stopcopy_size": 4743, "precopy_init_size": 0,
      "precopy_dirty_size": 0}),
    ("vfio_state_pending_exact", "9.2-dec",
     "vfio_state_pending_exact  (0000:3b:00.1) precopy 0 postcopy 0 stopcopy size 4743 "
     "precopy initial size 0 precopy dirty size 0",
     {"name": D, "precopy": 0, "postcopy": 0, "stopcopy_size": 4743, "precopy_init_size": 0,
      "precopy_dirty_size": 0}),
    ("vfio_vmstate_change", "v1", "vfio_vmstate_change  (0000:3b:00.1) running 0 reason finish-migrate device state 2",
     {"name": D, "running": 0, "reason": "finish-migrate", "dev_state": 2}),
    ("vfio_vmstate_change", "8.0",
     "vfio_vmstate_change  (0000:3b:00.1) running 0 reason finish-migrate device state STOP_COPY",
     {"name": D, "running": 0, "reason": "finish-migrate", "dev_state": "STOP_COPY"}),
    ("vfio_vmstate_change_prepare", None,
     "vfio_vmstate_change_prepare  (0000:3b:00.1) running 0 reason finish-migrate device state PRE_COPY_P2P",
     {"name": D, "running": 0, "reason": "finish-migrate", "dev_state": "PRE_COPY_P2P"}),
    ("vfio_save_buffer", None, "vfio_save_buffer  (0000:3b:00.1) Offset 0x1000 size 0x800 pending 0x0",
     {"name": D, "data_offset": 4096, "data_size": 2048, "pending": 0}),
    ("vfio_update_pending", None, "vfio_update_pending  (0000:3b:00.1) pending 0x2000", {"name": D, "pending": 8192}),
    ("vfio_save_pending", None, "vfio_save_pending  (0000:3b:00.1) precopy 0x0 postcopy 0x0 compatible 0x2000",
     {"name": D, "precopy": 0, "postcopy": 0, "compatible": 8192}),
    ("vfio_get_dirty_bitmap", "v1",
     "vfio_get_dirty_bitmap container fd=23, iova=0x0 size= 0xa0000 bitmap_size=0x8 start=0x0",
     {"fd": 23, "iova": 0, "size": 0xA0000, "bitmap_size": 8, "start": 0}),
    ("vfio_get_dirty_bitmap", "8.2",
     "vfio_get_dirty_bitmap iova=0x100000 size= 0x7ff00000 bitmap_size=0x10000 start=0x100000 dirty_pages=17",
     {"iova": 0x100000, "size": 0x7FF00000, "bitmap_size": 0x10000, "start": 0x100000, "dirty_pages": 17}),
    ("vfio_container_query_dirty_bitmap", None,
     "vfio_container_query_dirty_bitmap iova=0x0 size= 0xa0000 bitmap_size=0x8 start=0x0 dirty_pages=3",
     {"iova": 0, "size": 0xA0000, "bitmap_size": 8, "start": 0, "dirty_pages": 3}),
    ("vfio_iommu_map_dirty_notify", None, "vfio_iommu_map_dirty_notify iommu dirty @ 0x1000 - 0x1fff",
     {"iova_start": 0x1000, "iova_end": 0x1FFF}),
    ("vfio_device_dirty_tracking_update", None,
     "vfio_device_dirty_tracking_update section 0xc0000 - 0x7ffffff -> update [0x0 - 0x7ffffff]",
     {"start": 0xC0000, "end": 0x7FFFFFF, "min": 0, "max": 0x7FFFFFF}),
    ("vfio_device_dirty_tracking_start", None,
     "vfio_device_dirty_tracking_start nr_ranges 2 32:[0x0 - 0x7ffffff], 64:[0x100000000 - 0x47fffffff], "
     "pci64:[0x0 - 0x0]",
     {"nr_ranges": 2, "min32": 0, "max32": 0x7FFFFFF, "min64": 0x100000000, "max64": 0x47FFFFFFF,
      "minpci": 0, "maxpci": 0}),
    # --- migration/savevm.c ---
    ("savevm_state_setup", None, "savevm_state_setup ", {}),
    ("savevm_state_header", None, "savevm_state_header ", {}),
    ("savevm_state_iterate", None, "savevm_state_iterate ", {}),
    ("savevm_state_complete_precopy", None, "savevm_state_complete_precopy ", {}),
    ("savevm_state_cleanup", None, "savevm_state_cleanup ", {}),
    ("savevm_section_start", None, "savevm_section_start ram, section_id 2", {"id": "ram", "section_id": 2}),
    ("savevm_section_end", None, "savevm_section_end 0000:00:05.0/vfio, section_id 5 -> 0",
     {"id": "0000:00:05.0/vfio", "section_id": 5, "ret": 0}),
    ("savevm_section_skip", None, "savevm_section_skip timer, section_id 0", {"id": "timer", "section_id": 0}),
    ("savevm_command_send", None, "savevm_command_send com=0x3 len=4", {"command": 3, "len": 4}),
    ("savevm_send_open_return_path", None, "savevm_send_open_return_path ", {}),
    ("savevm_send_postcopy_listen", None, "savevm_send_postcopy_listen ", {}),
    ("savevm_send_postcopy_run", None, "savevm_send_postcopy_run ", {}),
    ("savevm_send_postcopy_resume", None, "savevm_send_postcopy_resume ", {}),
    ("savevm_send_colo_enable", None, "savevm_send_colo_enable ", {}),
    ("savevm_send_ping", None, "savevm_send_ping 0x1", {"val": 1}),
    ("savevm_send_recv_bitmap", None, "savevm_send_recv_bitmap pc.ram", {"name": "pc.ram"}),
    ("savevm_send_switchover_start", None, "savevm_send_switchover_start ", {}),
    ("vmstate_save", None, "vmstate_save 0000:00:05.0/vfio, vfio", {"idstr": "0000:00:05.0/vfio", "vmsd_name": "vfio"}),
    ("vmstate_load", None, "vmstate_load timer, timer", {"idstr": "timer", "vmsd_name": "timer"}),
    ("vmstate_downtime_save", None,
     "vmstate_downtime_save type=iterable idstr=0000:00:05.0/vfio instance_id=0 downtime=812",
     {"type": "iterable", "idstr": "0000:00:05.0/vfio", "instance_id": 0, "downtime": 812}),
    ("vmstate_downtime_load", None, "vmstate_downtime_load type=non-iterable idstr=apic instance_id=1 downtime=9",
     {"type": "non-iterable", "idstr": "apic", "instance_id": 1, "downtime": 9}),
    ("vmstate_downtime_checkpoint", None, "vmstate_downtime_checkpoint src-downtime-start",
     {"checkpoint": "src-downtime-start"}),
    ("qemu_loadvm_state_section", None, "qemu_loadvm_state_section 4", {"section_type": 4}),
    ("qemu_loadvm_state_section_startfull", None, "qemu_loadvm_state_section_startfull 2(ram) 0 4",
     {"section_id": 2, "idstr": "ram", "instance_id": 0, "version_id": 4}),
    ("qemu_loadvm_state_section_partend", None, "qemu_loadvm_state_section_partend 2", {"section_id": 2}),
    ("qemu_loadvm_state_section_command", None, "qemu_loadvm_state_section_command 0", {"ret": 0}),
    ("qemu_loadvm_state_post_main", None, "qemu_loadvm_state_post_main -22", {"ret": -22}),
    ("loadvm_state_setup", None, "loadvm_state_setup ", {}),
    ("loadvm_state_cleanup", None, "loadvm_state_cleanup ", {}),
    ("loadvm_process_command", "old-hex", "loadvm_process_command com=0x3 len=4", {"com": 3, "len": 4}),
    ("loadvm_process_command", "7.2-name", "loadvm_process_command com=PING len=4", {"s": "PING", "len": 4}),
    ("loadvm_process_command_ping", None, "loadvm_process_command_ping 0x1", {"val": 1}),
    ("loadvm_state_switchover_ack_needed", None, "loadvm_state_switchover_ack_needed Switchover ack pending num=1",
     {"switchover_ack_pending_num": 1}),
    ("loadvm_approve_switchover", None, "loadvm_approve_switchover Switchover ack pending num=0",
     {"switchover_ack_pending_num": 0}),
    # postcopy and packaged commands (7.2 = 10.0.2)
    ("qemu_savevm_send_packaged", None, "qemu_savevm_send_packaged ", {}),
    ("loadvm_handle_cmd_packaged", None, "loadvm_handle_cmd_packaged 4096", {"length": 4096}),
    ("loadvm_handle_cmd_packaged_main", None, "loadvm_handle_cmd_packaged_main 0", {"ret": 0}),
    ("loadvm_handle_cmd_packaged_received", None, "loadvm_handle_cmd_packaged_received -22", {"ret": -22}),
    ("loadvm_handle_recv_bitmap", None, "loadvm_handle_recv_bitmap pc.ram", {"s": "pc.ram"}),
    ("loadvm_postcopy_handle_advise", None, "loadvm_postcopy_handle_advise ", {}),
    ("loadvm_postcopy_handle_listen", None, "loadvm_postcopy_handle_listen enter", {"str": "enter"}),
    ("loadvm_postcopy_handle_run", None, "loadvm_postcopy_handle_run ", {}),
    ("loadvm_postcopy_handle_resume", None, "loadvm_postcopy_handle_resume ", {}),
    ("loadvm_postcopy_ram_handle_discard", None, "loadvm_postcopy_ram_handle_discard ", {}),
    ("loadvm_postcopy_ram_handle_discard_end", None, "loadvm_postcopy_ram_handle_discard_end ", {}),
    # "%ud" is QEMU's own: the number, then a literal "d"
    ("loadvm_postcopy_ram_handle_discard_header", None,
     "loadvm_postcopy_ram_handle_discard_header pc.ram: 16d", {"ramid": "pc.ram", "len": 16}),
    ("postcopy_ram_listen_thread_exit", None, "postcopy_ram_listen_thread_exit ", {}),
    ("postcopy_ram_listen_thread_start", None, "postcopy_ram_listen_thread_start ", {}),
    ("qemu_savevm_send_postcopy_advise", None, "qemu_savevm_send_postcopy_advise ", {}),
    ("qemu_savevm_send_postcopy_ram_discard", None, "qemu_savevm_send_postcopy_ram_discard pc.ram: 3d",
     {"id": "pc.ram", "len": 3}),
    ("savevm_state_resume_prepare", None, "savevm_state_resume_prepare ", {}),
    ("postcopy_pause_incoming", None, "postcopy_pause_incoming ", {}),
    ("postcopy_pause_incoming_continued", None, "postcopy_pause_incoming_continued ", {}),
    ("postcopy_page_req_sync", None, "postcopy_page_req_sync sync page req 0x7f3c2a5ff000",
     {"host_addr": 0x7F3C2A5FF000}),
    # --- migration/migration.c ---
    ("migrate_set_state", None, "migrate_set_state new state active", {"new_state": "active"}),
    ("migrate_pending_exact", None, "migrate_pending_exact exact pending size 4743 (pre = 4743 post=0)",
     {"size": 4743, "pre": 4743, "post": 0}),
    ("migrate_pending_estimate", None, "migrate_pending_estimate estimate pending size 8192 (pre = 8192 post=0)",
     {"size": 8192, "pre": 8192, "post": 0}),
    ("migrate_pending", None, "migrate_pending pending size 0 max 0 (pre = 0 compat=0 post=0)",
     {"size": 0, "max": 0, "pre": 0, "compat": 0, "post": 0}),
    ("migration_thread_low_pending", None, "migration_thread_low_pending 49152", {"pending": 49152}),
    ("migrate_transferred", "8.2",
     "migrate_transferred transferred 1074176 time_spent 100 bandwidth 10741 switchover_bw 0 max_size 3222300",
     {"transferred": 1074176, "time_spent": 100, "bandwidth": 10741, "avail_bw": 0, "size": 3222300}),
    ("migrate_transferred", "7.2", "migrate_transferred transferred 131072 time_spent 101 bandwidth 1297 max_size 1297",
     {"tranferred": 131072, "time_spent": 101, "bandwidth": 1297, "size": 1297}),
    ("migration_completion_vm_stop", None, "migration_completion_vm_stop ret 0", {"ret": 0}),
    ("migration_completion_file_err", None, "migration_completion_file_err ", {}),
    ("migration_completion_postcopy_end", None, "migration_completion_postcopy_end ", {}),
    ("migration_completion_postcopy_end_after_complete", None,
     "migration_completion_postcopy_end_after_complete ", {}),
    ("migration_thread_setup_complete", None, "migration_thread_setup_complete ", {}),
    ("migration_thread_after_loop", None, "migration_thread_after_loop ", {}),
    ("migration_thread_file_err", None, "migration_thread_file_err ", {}),
    ("migration_return_path_end_before", None, "migration_return_path_end_before ", {}),
    ("migration_return_path_end_after", "7.2", "migration_return_path_end_after 0", {"rp_error": 0}),
    ("migration_return_path_end_after", "new", "migration_return_path_end_after ", {}),
    ("source_return_path_thread_entry", None, "source_return_path_thread_entry ", {}),
    ("source_return_path_thread_loop_top", None, "source_return_path_thread_loop_top ", {}),
    ("source_return_path_thread_end", None, "source_return_path_thread_end ", {}),
    ("source_return_path_thread_bad_end", None, "source_return_path_thread_bad_end ", {}),
    ("source_return_path_thread_pong", None, "source_return_path_thread_pong 0x1", {"val": 1}),
    ("source_return_path_thread_shut", None, "source_return_path_thread_shut 0x0", {"val": 0}),
    ("source_return_path_thread_switchover_acked", None, "source_return_path_thread_switchover_acked ", {}),
    ("migrate_send_rp_message", None, "migrate_send_rp_message 7: len 0", {"msg_type": 7, "len": 0}),
    ("migration_rate_limit_pre", None, "migration_rate_limit_pre 87 ms", {"ms": 87}),
    ("migration_rate_limit_post", None, "migration_rate_limit_post urgent: 0", {"urgent": 0}),
    ("postcopy_start", None, "postcopy_start ", {}),
    ("postcopy_start_set_run", None, "postcopy_start_set_run ", {}),
    ("migrate_fd_error", None, "migrate_fd_error error=Unable to write to socket: Broken pipe",
     {"error_desc": "Unable to write to socket: Broken pipe"}),
    ("migrate_error", None, "migrate_error error=Channel error", {"error_desc": "Channel error"}),
    ("migration_precopy_complete", None, "migration_precopy_complete ", {}),
    ("process_incoming_migration_co_end", None, "process_incoming_migration_co_end ret=0 postcopy-state=0",
     {"ret": 0, "ps": 0}),
    ("migration_transferred_bytes", None, "migration_transferred_bytes qemu_file 640000 multifd 0 RDMA 0",
     {"qemu_file": 640000, "multifd": 0, "rdma": 0}),
    # real lines of traces/real/qemu10/*.log (QEMU 10.0.2)
    ("migration_cleanup", None, "migration_cleanup ", {}),
    ("migration_cancel", None, "migration_cancel ", {}),
    ("open_return_path_on_source", None, "open_return_path_on_source ", {}),
    ("open_return_path_on_source_continue", None, "open_return_path_on_source_continue ", {}),
    ("migrate_handle_rp_req_pages", None, "migrate_handle_rp_req_pages in pc.ram at 0x7000 len 0x1000",
     {"rbname": "pc.ram", "start": 0x7000, "len": 0x1000}),
    # QEMU's "0x%"PRIi64 prints the size in decimal after a literal 0x
    ("migrate_send_rp_recv_bitmap", None, "migrate_send_rp_recv_bitmap block 'pc.ram' size 0x4096",
     {"name": "pc.ram", "size": 4096}),
    ("postcopy_pause_return_path", None, "postcopy_pause_return_path ", {}),
    ("postcopy_pause_return_path_continued", None, "postcopy_pause_return_path_continued ", {}),
    ("postcopy_pause_continued", None, "postcopy_pause_continued ", {}),
    ("postcopy_page_req_add", None, "postcopy_page_req_add new page req 0x7f3c2a600000 total 2",
     {"addr": 0x7F3C2A600000, "count": 2}),
    ("source_return_path_thread_resume_ack", None, "source_return_path_thread_resume_ack 1", {"v": 1}),
    ("process_incoming_migration_co_postcopy_end_main", None,
     "process_incoming_migration_co_postcopy_end_main ", {}),
    ("postcopy_preempt_enabled", None, "postcopy_preempt_enabled 0", {"value": 0}),
    # --- migration/ram.c ---
    ("migration_bitmap_sync_start", None, "migration_bitmap_sync_start ", {}),
    ("migration_bitmap_sync_end", None, "migration_bitmap_sync_end dirty_pages 16", {"dirty_pages": 16}),
    ("migration_throttle", None, "migration_throttle ", {}),
    ("ram_save_iterate_big_wait", None, "ram_save_iterate_big_wait big wait: 51 milliseconds, 3 iterations",
     {"milliconds": 51, "iterations": 3}),
    ("ram_load_complete", None, "ram_load_complete exit_code 0 seq iteration 4", {"ret": 0, "seq_iter": 4}),
    ("ram_save_page", None, "ram_save_page pc.ram: offset: 0x7000 host: 0x7f2a3c007000",
     {"rbname": "pc.ram", "offset": 0x7000, "host": 0x7F2A3C007000}),
    ("ram_load_loop", None, "ram_load_loop pc.ram: addr: 0x1000 flags: 0x28 host: (nil)",
     {"rbname": "pc.ram", "addr": 0x1000, "flags": 0x28, "host": 0}),
    # --- migration/multifd.c ---
    ("multifd_send_sync_main", None, "multifd_send_sync_main packet num 12", {"packet_num": 12}),
    ("multifd_recv_sync_main", None, "multifd_recv_sync_main packet num 12", {"packet_num": 12}),
    ("multifd_send_thread_start", None, "multifd_send_thread_start 1", {"id": 1}),
    ("multifd_send", None, "multifd_send channel 1 packet_num 7 normal pages 128 flags 0x0 next packet size 0",
     {"id": 1, "packet_num": 7, "normal": 128, "flags": 0, "next_packet_size": 0}),
    ("multifd_recv", None, "multifd_recv channel 0 packet_num 7 pages 128 flags 0x1 next packet size 0",
     {"id": 0, "packet_num": 7, "used": 128, "flags": 1, "next_packet_size": 0}),
    # 10.0.2 lines are real (traces/real/qemu10/multifd.*.log), 7.2 ones from traces/real/qemu-tcp-multifd.*.log
    ("multifd_send_fill", None, "multifd_send_fill channel 2 packet_num 0 flags 0x1 next packet size 0",
     {"id": 2, "packet_num": 0, "flags": 1, "next_packet_size": 0}),
    ("multifd_send_ram_fill", None, "multifd_send_ram_fill channel 0 normal pages 3 zero pages 125",
     {"id": 0, "normal": 3, "zero": 125}),
    ("multifd_recv_unfill", None, "multifd_recv_unfill channel 1 packet_num 3 flags 0x1 next packet size 0",
     {"id": 1, "packet_num": 3, "flags": 1, "next_packet_size": 0}),
    ("multifd_new_send_channel_async", None, "multifd_new_send_channel_async channel 1", {"id": 1}),
    ("multifd_new_send_channel_async_error", None,
     "multifd_new_send_channel_async_error channel=3 err=0x55d0c4a1e2f0", {"id": 3, "err": 0x55D0C4A1E2F0}),
    ("multifd_recv_new_channel", None, "multifd_recv_new_channel channel 1", {"id": 1}),
    ("multifd_recv_sync_main_signal", None, "multifd_recv_sync_main_signal channel 0", {"id": 0}),
    ("multifd_recv_sync_main_wait", "10.0", "multifd_recv_sync_main_wait iter 0", {"id": 0}),
    ("multifd_recv_sync_main_wait", "7.2", "multifd_recv_sync_main_wait channel 0", {"id": 0}),
    ("multifd_recv_terminate_threads", None, "multifd_recv_terminate_threads error 0", {"error": 0}),
    ("multifd_recv_thread_end", "10.0", "multifd_recv_thread_end channel 1 packets 23", {"id": 1, "packets": 23}),
    ("multifd_recv_thread_end", "7.2", "multifd_recv_thread_end channel 0 packets 10 pages 80",
     {"id": 0, "packets": 10, "pages": 80}),
    ("multifd_recv_thread_start", None, "multifd_recv_thread_start 1", {"id": 1}),
    ("multifd_send_error", None, "multifd_send_error channel 2", {"id": 2}),
    ("multifd_send_sync_main_signal", None, "multifd_send_sync_main_signal channel 0", {"id": 0}),
    ("multifd_send_sync_main_wait", None, "multifd_send_sync_main_wait channel 0", {"id": 0}),
    ("multifd_send_terminate_threads", "10.0", "multifd_send_terminate_threads ", {}),
    ("multifd_send_terminate_threads", "7.2", "multifd_send_terminate_threads error 0", {"error": 0}),
    ("multifd_send_thread_end", "10.0", "multifd_send_thread_end channel 0 packets 23", {"id": 0, "packets": 23}),
    ("multifd_send_thread_end", "7.2", "multifd_send_thread_end channel 0 packets 10 normal pages 80",
     {"id": 0, "packets": 10, "normal_pages": 80}),
    ("multifd_tls_outgoing_handshake_start", None,
     "multifd_tls_outgoing_handshake_start ioc=0x55d0c4a1e2f0 tioc=0x55d0c4b00000 hostname=127.0.0.1",
     {"ioc": 0x55D0C4A1E2F0, "tioc": 0x55D0C4B00000, "hostname": "127.0.0.1"}),
    ("multifd_tls_outgoing_handshake_error", None,
     "multifd_tls_outgoing_handshake_error ioc=0x55d0c4a1e2f0 err=handshake failed",
     {"ioc": 0x55D0C4A1E2F0, "err": "handshake failed"}),
    ("multifd_tls_outgoing_handshake_complete", None,
     "multifd_tls_outgoing_handshake_complete ioc=0x55d0c4a1e2f0", {"ioc": 0x55D0C4A1E2F0}),
    ("multifd_set_outgoing_channel", "7.2",
     "multifd_set_outgoing_channel ioc=0x55d0c4a1e2f0 ioctype=qio-channel-socket hostname=127.0.0.1 err=(nil)",
     {"ioc": 0x55D0C4A1E2F0, "ioctype": "qio-channel-socket", "hostname": "127.0.0.1", "err": 0}),
    ("multifd_set_outgoing_channel", "10.0",
     "multifd_set_outgoing_channel ioc=0x7fba440045e0 ioctype=qio-channel-socket hostname=(null)",
     {"ioc": 0x7FBA440045E0, "ioctype": "qio-channel-socket", "hostname": "(null)"}),
    # --- system/runstate.c ---
    ("vm_state_notify", None, "vm_state_notify running 0 reason 7 (finish-migrate)",
     {"running": 0, "reason": 7, "reason_str": "finish-migrate"}),
    ("runstate_set", None, "runstate_set current_run_state 9 (running) new_state 7 (finish-migrate)",
     {"current_state": 9, "current_state_str": "running", "new_state": 7, "new_state_str": "finish-migrate"}),
    ("vm_stop_flush_all", None, "vm_stop_flush_all ret 0", {"ret": 0}),
]

CAT = Catalogue.default()


def test_every_catalogue_declaration_has_a_test_line():
    declared = {(d.name, d.variant) for d in CAT.declarations()}
    tested = {(n, v) for n, v, _, _ in LINES}
    assert declared - tested == set(), "catalogue entries without a hand-written test line"
    assert tested - declared == set(), "test lines for variants the catalogue lacks"
    assert len(CAT.declarations()) == len(LINES)


@pytest.mark.parametrize("event,variant,line,args", LINES, ids=[f"{n}[{v}]" for n, v, _, _ in LINES])
def test_line_parses_to_its_variant(event, variant, line, args):
    q = CAT.parse(line)
    assert q is not None and q.matched
    assert (q.event, q.version_variant, q.args) == (event, variant, args)
    assert not q.truncated
    # types: what the format prints in hex or decimal comes out as int
    for k, v in args.items():
        assert type(q.args[k]) is type(v), k


@pytest.mark.parametrize("event,variant,line,args", LINES, ids=[f"{n}[{v}]" for n, v, _, _ in LINES])
def test_format_event_renders_the_line(event, variant, line, args):
    assert format_event(event, variant, **args) == line


def test_parse_accepts_the_trailing_newline_and_missing_trailing_space():
    assert parse_event("savevm_state_setup\n").args == {}
    assert parse_event("savevm_state_setup").matched
    assert parse_event("vfio_save_block  (0000:3b:00.1) data_size 7\n").args == {"name": D, "data_size": 7}


def test_unknown_names_are_not_qemu_events():
    assert parse_event("hello world") is None
    assert parse_event("") is None
    assert parse_event("tracing_mark_write: vfio_save_block  (x) data_size 1") is None


def test_known_name_with_foreign_arguments_keeps_raw_text():
    q = parse_event("vfio_save_block  0000:3b:00.1 data_size 5")  # parentheses missing
    assert q is not None and not q.matched
    assert q.args == {} and q.version_variant is None
    assert q.raw == " 0000:3b:00.1 data_size 5"


def test_hex_and_decimal_forms_of_one_event_give_equal_args():
    a = parse_event("vfio_save_setup  (d) data buffer size 0x100000")
    b = parse_event("vfio_save_setup  (d) data buffer size 1048576")
    assert a.args == b.args == {"name": "d", "data_buffer_size": 1048576}
    assert (a.version_variant, b.version_variant) == ("8.0-hex", "9.2-dec")


def test_vfio_lines_have_two_spaces_after_the_name():
    assert format_event("vfio_save_cleanup", name=D) == "vfio_save_cleanup  (0000:3b:00.1)"
    # one space only: not this event's text
    assert not parse_event("vfio_save_cleanup (0000:3b:00.1)").matched


def test_format_event_picks_the_newest_variant_with_those_arguments():
    assert format_event("vfio_save_iterate", name="d", precopy_init_size=16, precopy_dirty_size=0) == \
        "vfio_save_iterate  (d) precopy initial size 16 precopy dirty size 0"
    assert format_event("vfio_migration_set_state", name="d", state="STOP") == \
        "vfio_migration_set_state  (d) state STOP"
    assert format_event("migrate_transferred", transferred=1, time_spent=2, bandwidth=3, avail_bw=4, size=5) == \
        "migrate_transferred transferred 1 time_spent 2 bandwidth 3 switchover_bw 4 max_size 5"


def test_format_event_rejects_unknown_events_and_arguments():
    with pytest.raises(KeyError):
        format_event("no_such_event")
    with pytest.raises(TypeError):
        format_event("vfio_save_block", name="d")  # data_size missing: fits no variant
    with pytest.raises(KeyError):
        format_event("vfio_save_block", "9.9", name="d", data_size=1)
    with pytest.raises(TypeError):
        format_event("vfio_save_block", name="d", data_size="big")


def test_version_ranges_are_recorded():
    q = parse_event("vfio_save_iterate  (d) precopy initial size 0x1 precopy dirty size 0x2")
    assert q.versions == "8.1-9.1"
    assert {d.versions for d in CAT.declarations("vfio_migration_set_state")} == {"-7.2", "8.0-9.1", "9.2-"}


def test_to_json_has_the_contract_keys():
    q = parse_event("vmstate_downtime_checkpoint src-vm-stopped")
    j = q.to_json()
    assert j["event"] == "vmstate_downtime_checkpoint" and j["args"] == {"checkpoint": "src-vm-stopped"}
    assert j["matched"] is True and j["truncated"] is False
