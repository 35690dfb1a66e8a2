/* autorun's code mapped with huge pages; see hugetext.c. Linked into the executable only,
 * outside the block of code it maps. */
#ifndef AR_HUGETEXT_H
#define AR_HUGETEXT_H

/* Maps the block of code cmake/hugetext.ld lays out, as one huge page where the page cache
 * holds it so, and otherwise brings it into the page cache that way once, for the processes
 * that follow. Call it first thing in main(), before any code of the block has run.
 * Returns 1 when the executable has such a block (mapped, huge or not), 0 when not. */
int ar_hugetext_map(void);

#endif
