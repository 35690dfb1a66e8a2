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

#define HUGE_PAGE ((uintptr_t)2 << 20)

/* Moves the program break so that the heap malloc is about to create starts one page below
 * a 2 MiB boundary. malloc writes its first headers in that page; the 2 MiB above it are
 * still untouched, so they can become one transparent huge page. Returns the boundary, or 0
 * when the break cannot be moved. */
static uintptr_t break_below_huge_boundary(uintptr_t page)
{
    char *cur = sbrk(0);
    if (cur == (char *)-1) {
        return 0;
    }
    uintptr_t boundary = ((uintptr_t)cur + page + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (sbrk((intptr_t)(boundary - page - (uintptr_t)cur)) == (void *)-1) {
        return 0;
    }
    return boundary;
}

/* One huge page at `at` if the kernel gives one: populating its first 4 KiB then leaves its
 * second resident too. */
static int populate_huge(uintptr_t at, uintptr_t page)
{
    unsigned char resident = 0;
    return madvise((void *)at, HUGE_PAGE, MADV_HUGEPAGE) == 0 &&
           madvise((void *)at, page, MADV_POPULATE_WRITE) == 0 &&
           mincore((void *)(at + page), page, &resident) == 0 && (resident & 1);
}

void ar_heap_prefault(size_t bytes)
{
#if defined(__GLIBC__) && defined(MADV_POPULATE_WRITE)
    if (AR_SANITIZED) {
        return;
    }
    uintptr_t page = ~page_mask() + 1;
    uintptr_t boundary = break_below_huge_boundary(page);
    /* Setting any of these turns off glibc's own tuning, which raises the mmap threshold up
     * to 32 MiB (and the trim threshold to twice that) as large blocks are freed: start from
     * there, or every large string a recipe builds and drops is a fresh mmap() and its faults. */
    mallopt(M_TOP_PAD, (int)(boundary ? HUGE_PAGE + page : bytes));
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
    char *before = sbrk(0);
    void *volatile p = malloc(1); /* volatile: a malloc/free pair may be elided otherwise */
    char *after = sbrk(0);
    mallopt(M_TOP_PAD, (int)bytes); /* later growth: in steps of `bytes` */
    if (before != (char *)-1 && after > before) {
        if (boundary == 0 || (uintptr_t)after < boundary + HUGE_PAGE ||
            !populate_huge(boundary, page)) {
            uintptr_t start = ((uintptr_t)before + page - 1) & page_mask();
            uintptr_t end = start + bytes < (uintptr_t)after ? start + bytes : (uintptr_t)after;
            madvise((void *)start, end - start, MADV_POPULATE_WRITE);
        }
    }
    free(p);
#else
    (void)bytes;
#endif
}

void ar_stack_prefault(size_t bytes)
{
#if defined(MADV_POPULATE_WRITE)
    char here;
    uintptr_t top = (uintptr_t)&here & page_mask();
    /* Within the stack mapping the kernel set up (128 KiB and more); madvise() refuses a range
     * reaching below it, and the stack then faults in as before. */
    madvise((void *)(top - bytes), bytes, MADV_POPULATE_WRITE);
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
