# driver/seh.mk - the toolchain of the SEH build, for any driver's Makefile:
# clang 19 in MSVC mode with -fasync-exceptions, linked by lld-link against
# mingw-w64's DDK headers and import libraries. Unlike gcc (no __try at all)
# this compiles __try/__except into real scope tables, and under Wine a fault
# inside a guarded block is caught (facts: ../shared/notes/seh.md).
#
#   include path/to/driver/seh.mk
#   x.obj: x.c ; $(SEH_CC) $(SEH_CFLAGS) -c -o $@ $<
#   x.sys: x.obj ; $(SEH_LD) $(SEH_LDFLAGS) /out:$@ x.obj $(SEH_LIBS)
#
# -fgnuc-version: mingw's headers need __GNUC__ (without it _mingw.h blanks
# __attribute__ and intrin.h breaks); -nostdlibinc keeps clang's builtin
# headers and drops the host's. No CRT: no stack probe (frames stay under a
# page), no stack protector, no red zone (interrupts use the kernel stack).
# The two __INTRINSIC_DEFINED_ macros keep mingw's intrin-impl.h from defining
# the two functions wdm.h defines again as static inline: clang in MSVC mode
# otherwise emits both as strong symbols in every object (duplicate symbols).
# KBKIT_CLANG_ASYNC_EXCEPTIONS tells kbkit.h that -fasync-exceptions is on
# (no macro reveals it); kbkit.h refuses it with an older clang.
SEH_MINGW   := /usr/x86_64-w64-mingw32
SEH_CC      := clang-19
SEH_LD      := lld-link
SEH_CFLAGS  := --target=x86_64-pc-windows-msvc -O2 -fasync-exceptions -DKBKIT_CLANG_ASYNC_EXCEPTIONS=1 \
               -fms-extensions -fgnuc-version=4.2.1 -nostdlibinc \
               -isystem $(SEH_MINGW)/include/ddk -isystem $(SEH_MINGW)/include -D_AMD64_ \
               -D__INTRINSIC_DEFINED_InterlockedBitTestAndSet -D__INTRINSIC_DEFINED_InterlockedBitTestAndReset \
               -mno-stack-arg-probe -fno-stack-protector -mno-red-zone -fno-delete-null-pointer-checks \
               -fno-strict-aliasing -ffunction-sections -fdata-sections \
               -Wall -Wextra -Werror -Wno-\#warnings
SEH_LDFLAGS := /nologo /driver /subsystem:native /entry:DriverEntry /nodefaultlib /machine:x64 \
               /opt:ref /Brepro
SEH_LIBS    := $(SEH_MINGW)/lib/libntoskrnl.a $(SEH_MINGW)/lib/libhal.a
