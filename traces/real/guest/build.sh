#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Build the tiny multiboot dirtying guest with the system toolchain only.
#
#   bash traces/real/guest/build.sh OUTDIR [DEFAULT_PAGES]
#     -> OUTDIR/dirtyguest.elf   (ELF32 multiboot v1 kernel, < 8 KiB)
#
# Run:  qemu-system-x86_64 -m 32 -kernel OUTDIR/dirtyguest.elf \
#           [-append "pages=N"] -serial file:console.txt -display none ...
# It rewrites one byte in each 4 KiB page of an N-page buffer at guest
# physical 2 MiB forever (DEFAULT_PAGES = 1024 = 4 MiB unless given here or
# overridden at boot with -append "pages=N"; clamped to the guest's RAM).
# COM1 prints "dirtyguest pages=<hex>" once, then a "." every 2^24 page writes.
# Needs gcc (as the C preprocessor + assembler driver) and GNU ld (binutils).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUTDIR [DEFAULT_PAGES]}"
pages="${2:-1024}"
mkdir -p "$out"
gcc -m32 -c -nostdlib -ffreestanding -DDEFAULT_PAGES="$pages" \
    -o "$out/dirtyguest.o" "$here/dirtyguest.S"
ld -m elf_i386 -nostdlib -static --build-id=none --no-warn-rwx-segments -T "$here/dirtyguest.ld" \
    -o "$out/dirtyguest.elf" "$out/dirtyguest.o"
rm -f "$out/dirtyguest.o"
echo "$out/dirtyguest.elf"
