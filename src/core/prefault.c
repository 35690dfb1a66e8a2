/* Up-front mapping of the heap and of code; see core/prefault.h. Kernels older than 5.14
 * refuse MADV_POPULATE_*: pages then fault in one by one, as they would have anyway. */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include "core/prefault.h"

#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uintptr_t page_mask(void)
{
    long page = sysconf(_SC_PAGESIZE);
    return page > 0 ? ~((uintptr_t)page - 1) : ~(uintptr_t)4095;
}

void ar_heap_prefault(size_t bytes)
{
#if defined(__GLIBC__) && defined(MADV_POPULATE_WRITE)
    if (AR_SANITIZED) {
        return;
    }
    /* Setting any of these turns off glibc's own tuning, which raises the mmap threshold up
     * to 32 MiB (and the trim threshold to twice that) as large blocks are freed: start from
     * there, or every large string a recipe builds and drops is a fresh mmap() and its faults. */
    mallopt(M_TOP_PAD, (int)bytes);
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    char *before = sbrk(0);
    void *volatile p = malloc(1); /* volatile: a malloc/free pair may be elided otherwise */
    char *after = sbrk(0);
    if (before != (char *)-1 && after > before) {
        uintptr_t start = ((uintptr_t)before + ~page_mask()) & page_mask();
        if ((uintptr_t)after > start) {
            madvise((void *)start, (uintptr_t)after - start, MADV_POPULATE_WRITE);
        }
    }
    free(p);
#else
    (void)bytes;
#endif
}

#if defined(MADV_POPULATE_READ)
/* dl_iterate_phdr() lists the executable first: its entry is the only one used. */
static int populate_executable(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        /* Writable segments were touched by relocation already, and a read mapping of them
         * would only fault again on the first write. */
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) {
            continue;
        }
        uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & page_mask();
        uintptr_t end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        madvise((void *)start, end - start, MADV_POPULATE_READ);
    }
    return 1;
}
#endif

void ar_code_prefault(void)
{
#if defined(MADV_POPULATE_READ)
    dl_iterate_phdr(populate_executable, NULL);
#endif
}
