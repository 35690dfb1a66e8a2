#!/bin/bash
# autorun's code block (cmake/hugetext.ld, src/hugetext.c): a freshly written copy of the
# binary, cached in small pages, reads its block in again as one huge page, so that the next
# process maps it with one; a copy whose small pages another process maps is left alone and
# still runs. Skipped, saying so, where the kernel or file system cannot map files with huge
# pages, and for builds without the block (AddressSanitizer).
. "$(dirname "$0")/lib.sh"

if ! readelf -SW "$AUTORUN" | grep -q ' \.text\.autorun '; then
    echo "ok - skipped: this build has no .text.autorun block (AddressSanitizer build)"
    exit 0
fi

# Prints the kB of FILE mapped by huge pages in process PID.
pmd_kb() { # PID FILE
    awk -v f="$2" '$6 == f { on = 1; next } /^[0-9a-f]+-/ { on = 0 }
        on && $1 == "FilePmdMapped:" { kb += $2 } END { print kb + 0 }' "/proc/$1/smaps"
}

# Can this kernel and file system map a file with huge pages at all? A fresh 4 MiB file, read
# through a mapping advised MADV_HUGEPAGE.
supported=$(/usr/bin/python3 - "$T_TMP/probe" <<'PY'
import mmap, os, re, sys
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(os.urandom(4 << 20))
    f.flush()
    os.fsync(f.fileno())
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
m = mmap.mmap(fd, 4 << 20, prot=mmap.PROT_READ)
m.madvise(mmap.MADV_HUGEPAGE)
sum(m[i] for i in range(0, 4 << 20, 4096))
smaps = open("/proc/self/smaps").read()
print(sum(int(k) for k in re.findall(r"FilePmdMapped:\s+(\d+)", smaps)))
PY
)
if [ "${supported:-0}" -eq 0 ]; then
    echo "ok - skipped: this kernel or file system maps no file with huge pages"
    exit 0
fi
# Telling a huge mapping from small ones takes the PAGEMAP_SCAN ioctl (Linux 6.7).
kernel=$(uname -r | awk -F. '{ print $1 * 100 + $2 }')
if [ "$kernel" -lt 607 ]; then
    echo "ok - skipped: Linux $(uname -r) has no PAGEMAP_SCAN; the block is mapped as the page cache holds it"
    exit 0
fi

t_recipe sleepy <<'JS'
exports.run = function () { sleep(30000); return 'woke'; };
JS
t_recipe hello <<'JS'
exports.run = function () { return 'hello'; };
JS

# Starts BIN running the sleepy recipe and waits until the run is recorded, long after its
# code was mapped (first thing in main()); sets PID.
start_sleepy() { # BIN
    "$1" run sleepy >/dev/null 2>&1 &
    PID=$!
    t_track "$PID"
    wait_sql "SELECT count(*) FROM runs WHERE recipe='sleepy' AND status='running'" 1
}

stop_sleepy() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; }  # recorded: interrupted

# A copy just written is cached in small pages: its first run reads the block in again.
cp "$AUTORUN" "$T_TMP/autorun"
BIN="$T_TMP/autorun"
OUT=$("$BIN" run hello 2>"$T_TMP/stderr"); RC=$?
t_expect_eq "fresh copy: runs" "$RC $OUT" '0 "hello"'
start_sleepy "$BIN"
kb=$(pmd_kb "$PID" "$BIN")
[ "$kb" -ge 2048 ] && t_pass "fresh copy: the next process maps the code with huge pages ($kb kB)" ||
    t_fail "fresh copy: the next process maps the code with huge pages" "FilePmdMapped: $kb kB"
stop_sleepy
ino=$(printf '%x' "$(stat -c %i "$BIN")")
t_expect_eq "fresh copy: no give-up marker" "$(ls /dev/shm | grep -c "autorun-hugetext-.*-$ino-")" "0"

# Another process maps the small pages of a second copy: they cannot be dropped, so autorun
# leaves them (and leaves no marker), and runs as before.
cp "$AUTORUN" "$T_TMP/autorun2"
BIN2="$T_TMP/autorun2"
/usr/bin/python3 - "$BIN2" "$T_TMP/holding" <<'PY' &
import mmap, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, os.fstat(fd).st_size, prot=mmap.PROT_READ)
sum(m[i] for i in range(0, len(m), 4096))
open(sys.argv[2], "w").close()
time.sleep(30)
PY
HOLDER=$!
t_track "$HOLDER"
until_true 100 test -e "$T_TMP/holding" || t_fail "shared small pages: the holder maps the copy"
OUT=$("$BIN2" run hello 2>"$T_TMP/stderr"); RC=$?
t_expect_eq "shared small pages: runs" "$RC $OUT" '0 "hello"'
start_sleepy "$BIN2"
t_expect_eq "shared small pages: left as they are" "$(pmd_kb "$PID" "$BIN2")" "0"
stop_sleepy
ino=$(printf '%x' "$(stat -c %i "$BIN2")")
t_expect_eq "shared small pages: no give-up marker" "$(ls /dev/shm | grep -c "autorun-hugetext-.*-$ino-")" "0"
kill "$HOLDER" 2>/dev/null

# A copy on a file system that gives no huge pages (tmpfs with shmem_enabled=never): the one
# attempt to read the block in again leaves the give-up marker, and the copy runs as before.
shmem=$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null)
if [ -w /dev/shm ] && [[ "$shmem" == *"[never]"* ]]; then
    BIN3=$(mktemp /dev/shm/autorun-test.XXXXXX)
    cp "$AUTORUN" "$BIN3" && chmod +x "$BIN3"
    ino=$(printf '%x' "$(stat -c %i "$BIN3")")
    OUT=$("$BIN3" run hello 2>"$T_TMP/stderr"); RC=$?
    t_expect_eq "no huge pages to be had: runs" "$RC $OUT" '0 "hello"'
    t_expect_eq "no huge pages to be had: a marker stops further attempts until the next boot" \
        "$(ls /dev/shm | grep -c "autorun-hugetext-.*-$ino-")" "1"
    OUT=$("$BIN3" run hello 2>"$T_TMP/stderr"); RC=$?
    t_expect_eq "no huge pages to be had: runs again" "$RC $OUT" '0 "hello"'
    rm -f "$BIN3" /dev/shm/autorun-hugetext-*-"$ino"-*
else
    echo "ok - skipped: the give-up path needs a tmpfs /dev/shm without huge pages"
fi

t_done
