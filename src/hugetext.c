/* autorun's code with huge pages.
 *
 * On the virtual machines autorun is measured on, the first touch of each 4 KiB page of
 * code costs about a microsecond even when the page is mapped, and a short `autorun run`
 * touches some 270 of them. cmake/hugetext.ld therefore links the code and constants of the
 * engine and of its static libraries into one block aligned to 2 MiB, and when the page cache
 * holds that block as one huge page the kernel maps it with a single entry: a short run is
 * then about 0.5 ms faster (docs/performance.md).
 *
 * Linux reads a file range in as one huge page only when a mapping advised MADV_HUGEPAGE
 * faults on it while none of it is cached. Right after the binary was written (by the
 * linker, by the package manager), or after an earlier fault read the pages around it, the
 * block is cached in small pages, and would stay so. When this process is the only one
 * mapping them, it drops its mapping and the block's cached pages and reads the block
 * again, huge. Should that still not give a huge page (a file system or kernel without
 * large folios), a marker in /dev/shm stops later processes from trying again until the
 * next boot: a retry reads 2 MiB from disk. Nor is it done under a debugger, whose
 * breakpoints are in those pages.
 *
 * This file is linked outside the block: the pages it drops must not be the ones running. */
#define _GNU_SOURCE
#include "hugetext.h"

#include "core/prefault.h"

#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

/* Defined by cmake/hugetext.ld; absent (NULL) when the executable was linked without it. */
extern const char __autorun_text_start[] __attribute__((weak));
extern const char __autorun_text_end[] __attribute__((weak));

/* The PAGEMAP_SCAN ioctl (Linux 6.7) tells which ranges are mapped by huge pages. Older
 * kernel headers lack it; its ABI is fixed. */
#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_HUGE (1 << 6)
#endif

#define PAGEMAP_EXCLUSIVE ((uint64_t)1 << 56) /* /proc/PID/pagemap: mapped by this process only */

/* 1 when the whole range is mapped by huge pages, 0 when not, -1 when the kernel cannot say. */
static int mapped_huge(int pagemap, const char *start, size_t size)
{
    struct page_region regions[8];
    struct pm_scan_arg scan = {
        .size = sizeof(scan),
        .start = (uintptr_t)start,
        .end = (uintptr_t)start + size,
        .vec = (uintptr_t)regions,
        .vec_len = sizeof(regions) / sizeof(regions[0]),
        .category_mask = PAGE_IS_HUGE,
        .return_mask = PAGE_IS_HUGE,
    };
    long n = ioctl(pagemap, PAGEMAP_SCAN, &scan);
    if (n < 0) {
        return -1;
    }
    uint64_t huge = 0;
    for (long i = 0; i < n; i++) {
        huge += regions[i].end - regions[i].start;
    }
    return huge == size;
}

static int mapped_by_us_only(int pagemap, const char *addr)
{
    uint64_t entry;
    off_t at = (off_t)((uintptr_t)addr / (uintptr_t)sysconf(_SC_PAGESIZE)) * 8;
    return pread(pagemap, &entry, sizeof(entry), at) == sizeof(entry) &&
           (entry & PAGEMAP_EXCLUSIVE) != 0;
}

/* Under a debugger, the pages of the block may hold its breakpoints: not to be dropped. */
static int traced(void)
{
    char buf[1024];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return 1;
    }
    buf[n] = '\0';
    const char *tracer = strstr(buf, "TracerPid:");
    return tracer == NULL || atoi(tracer + strlen("TracerPid:")) != 0;
}

struct file_offset {
    const char *addr;
    off_t offset;
};

/* dl_iterate_phdr() lists the executable first: its entry is the only one used. */
static int find_offset(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct file_offset *f = data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t seg = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)f->addr >= seg &&
            (uintptr_t)f->addr < seg + ph->p_filesz) {
            f->offset = (off_t)(ph->p_offset + ((uintptr_t)f->addr - seg));
        }
    }
    return 1;
}

/* Drops this process's mapping of the block and the block's small pages from the page cache,
 * then maps it again through MADV_HUGEPAGE, which reads it in as one huge page. A marker in
 * /dev/shm, made before and removed unless the kernel gave small pages again, keeps other
 * processes from trying at the same time, and from trying again until the next boot after
 * such a failure. Without /dev/shm nothing is tried: retries could not be bounded. */
static void reread_huge(const char *start, size_t size, int pagemap)
{
    struct file_offset at = {.addr = start, .offset = -1};
    dl_iterate_phdr(find_offset, &at);
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (at.offset < 0 || exe < 0 || fstat(exe, &st) != 0) {
        if (exe >= 0) {
            close(exe);
        }
        return;
    }
    char marker[128];
    snprintf(marker, sizeof(marker), "/dev/shm/autorun-hugetext-%llx-%llx-%lld.%09ld",
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        close(exe);
        return;
    }
    close(fd);
    madvise((void *)start, size, MADV_HUGEPAGE);
    madvise((void *)start, size, MADV_DONTNEED);
    fdatasync(exe); /* pages not yet written back cannot be dropped */
    posix_fadvise(exe, at.offset, (off_t)size, POSIX_FADV_DONTNEED);
    madvise((void *)start, size, MADV_POPULATE_READ);
    close(exe);
    /* Kept only when the kernel read the block in small pages again; not when another
     * process mapped some of them meanwhile, which kept them in the page cache. */
    if (mapped_huge(pagemap, start, size) == 1 || !mapped_by_us_only(pagemap, start)) {
        unlink(marker);
    }
}

static long minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt : 0;
}

int ar_hugetext_map(void)
{
    const char *start = __autorun_text_start, *end = __autorun_text_end;
    if (AR_SANITIZED || start == NULL || end <= start) {
        return 0;
    }
    size_t size = (size_t)(end - start);
#if defined(MADV_POPULATE_READ)
    long faults = minor_faults();
    madvise((void *)start, size, MADV_POPULATE_READ);
    /* A huge page maps in one fault, small pages take one per 16 or so: only then is
     * /proc/self/pagemap worth opening (a lookup in /proc costs several faults' time). */
    if (minor_faults() - faults <= (long)(size >> 21)) {
        return 1;
    }
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap >= 0) {
        /* Not when another process maps the small pages: they could not be dropped. */
        if (mapped_huge(pagemap, start, size) == 0 && mapped_by_us_only(pagemap, start) &&
            !traced()) {
            reread_huge(start, size, pagemap);
        }
        close(pagemap);
    }
#endif
    return 1;
}
