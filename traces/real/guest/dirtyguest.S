/* SPDX-License-Identifier: GPL-2.0-only
 *
 * dirtyguest: a multiboot (v1) kernel of a few hundred bytes that keeps
 * dirtying guest RAM so that a live migration needs several pre-copy passes.
 *
 * Boot:  qemu-system-x86_64 -kernel dirtyguest.elf [-append "pages=N"]
 *
 * It writes one byte into each 4 KiB page of a buffer starting at 2 MiB,
 * pass after pass, forever.  The byte is (pass counter + page index), so
 * consecutive passes change every page and no page is ever all zero (the
 * buffer's pages are sent as normal pages, the rest of RAM stays zero and
 * is sent as zero/duplicate pages).  The buffer holds DEFAULT_PAGES pages
 * unless the kernel command line holds "pages=N" (decimal, N >= 1); it is
 * clamped so it ends below the RAM size multiboot reports.
 *
 * On COM1 it prints "dirtyguest pages=<hex>\n" once, then "." every 2^24
 * page writes (16M), so a caller can tell it is running.
 *
 * QEMU's multiboot loader takes ELF32 (not ELF64) without the a.out kludge,
 * so this is assembled with --32 and linked as elf_i386.
 */

#ifndef DEFAULT_PAGES
#define DEFAULT_PAGES 1024              /* 4 MiB */
#endif

#define MB_MAGIC   0x1BADB002
#define MB_FLAGS   0x00000002           /* bit 1: ask for mem_lower/mem_upper */
#define BUF_BASE   0x00200000           /* 2 MiB: above the kernel at 1 MiB */
#define COM1       0x3f8

        .section .multiboot, "a"
        .align 4
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .text
        .code32
        .globl _start
_start:
        cli
        mov     $stack_top, %esp
        mov     $DEFAULT_PAGES, %esi    /* esi = page count */

        cmp     $0x2BADB002, %eax       /* booted by a multiboot loader? */
        jne     clamp_done

        /* command line: flags bit 2, pointer at offset 16; look for "pages=" */
        testl   $4, (%ebx)
        jz      cmdline_done
        mov     16(%ebx), %edx
find:   movb    (%edx), %al
        test    %al, %al
        jz      cmdline_done
        cmpl    $0x65676170, (%edx)     /* "page" */
        jne     next
        cmpw    $0x3d73, 4(%edx)        /* "s=" */
        je      digits
next:   inc     %edx
        jmp     find
digits: add     $6, %edx
        xor     %ecx, %ecx
dloop:  movzbl  (%edx), %eax
        sub     $'0', %eax
        cmp     $9, %eax
        ja      dend
        imul    $10, %ecx, %ecx
        add     %eax, %ecx
        inc     %edx
        jmp     dloop
dend:   test    %ecx, %ecx
        jz      cmdline_done
        mov     %ecx, %esi
cmdline_done:

        /* memory: flags bit 0, mem_upper (KiB above 1 MiB) at offset 8 */
        testl   $1, (%ebx)
        jz      clamp_done
        mov     8(%ebx), %eax
        shr     $2, %eax                /* pages above 1 MiB */
        sub     $(256 + 16), %eax       /* minus 1 MiB (buffer starts at 2 MiB), 64 KiB spare */
        jbe     clamp_done
        cmp     %eax, %esi
        jbe     clamp_done
        mov     %eax, %esi
clamp_done:

        /* banner: "dirtyguest pages=<8 hex digits>\n" */
        mov     $banner, %edx
        call    puts
        mov     %esi, %ebx
        mov     $8, %ecx
hex:    rol     $4, %ebx
        mov     %ebx, %eax
        and     $0xf, %eax
        movb    hexdigits(%eax), %al
        call    putc
        loop    hex
        mov     $'\n', %al
        call    putc

        xor     %ebp, %ebp              /* pass counter */
        xor     %edx, %edx              /* pages written since the last dot */
pass:   mov     $BUF_BASE, %edi
        mov     %esi, %ecx
        mov     %ebp, %eax
page:   inc     %eax
        jnz     1f
        inc     %eax                    /* never write 0 */
1:      movb    %al, (%edi)
        add     $4096, %edi
        loop    page
        inc     %ebp
        add     %esi, %edx
        cmp     $0x1000000, %edx
        jb      pass
        sub     $0x1000000, %edx
        mov     $'.', %al
        call    putc
        jmp     pass

/* putc: al -> COM1 (polls LSR bit 5, THR empty) */
putc:   push    %edx
        push    %eax
        mov     $(COM1 + 5), %dx
2:      inb     %dx, %al
        test    $0x20, %al
        jz      2b
        pop     %eax
        mov     $COM1, %dx
        outb    %al, %dx
        pop     %edx
        ret

/* puts: NUL-terminated string at edx */
puts:   push    %edx
3:      movb    (%edx), %al
        test    %al, %al
        jz      4f
        call    putc
        inc     %edx
        jmp     3b
4:      pop     %edx
        ret

        .section .rodata
banner:    .asciz "dirtyguest pages="
hexdigits: .ascii "0123456789abcdef"

        .bss
        .align 16
        .skip 4096
stack_top:
