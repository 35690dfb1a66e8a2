/* Mapping memory up front for short-lived commands. A page fault costs about 10 µs on the
 * virtual machines autorun often runs on (25 µs and more when the kernel maps 16 file pages
 * around it), and `autorun run` of a short recipe used to take some 240 of them: a third of
 * its time. One madvise() call maps the same pages for a fraction of that. */
#ifndef AR_CORE_PREFAULT_H
#define AR_CORE_PREFAULT_H

#include <stddef.h>

/* Built with AddressSanitizer: memory must be freed at exit, or its leak check fails; and
 * its allocator does not use the brk heap. */
#if defined(__SANITIZE_ADDRESS__)
#define AR_SANITIZED 1
#else
#define AR_SANITIZED 0
#endif

/* Maps the start of the heap up front: one 2 MiB transparent huge page where the kernel
 * offers them (on the virtual machines measured, even a populated 4 KiB page costs a trap
 * into the hypervisor on first touch, about 3 us: some 0.2 ms for a short run), else `bytes`
 * of small pages. The heap then grows in steps of `bytes`, and blocks up to 32 MiB come from
 * it. For short-lived commands: call it before anything has grown the heap. */
void ar_heap_prefault(size_t bytes);

/* Maps `bytes` of stack below the caller's frame: a short run's deepest calls (SQLite's path
 * handling, the loader's lazy binding saving every vector register) reach some 24 KiB down,
 * five faults' worth. Call it from main(), where the stack is shallow. */
void ar_stack_prefault(size_t bytes);

/* Maps the read-only segments (code, constants) of the executable, so that the code a
 * command runs is not brought in one fault at a time: for executables linked without the
 * block of src/hugetext.c. Not the shared libraries': a run uses a small part of libc and
 * libm, and mapping all of them (and of the loader) cost more than the faults it saved,
 * about 0.1 ms. */
void ar_code_prefault(void);

#endif
