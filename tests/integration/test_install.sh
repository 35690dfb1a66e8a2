#!/bin/bash
# The installed layout works on its own: `cmake --install` into a DESTDIR and the Debian package
# from cpack, each run from an empty directory with a private state directory and no recipes or
# plugins settings, must find the shipped examples and plugins beside the executable.
. "$(dirname "$0")/lib.sh"

: "${AR_BUILD_DIR:?AR_BUILD_DIR must point at the build directory}"
VERSION=$("$AUTORUN" --version | awk '{ print $2 }')

# Runs an installed autorun ($1) from an empty directory, as someone who just installed it.
# Sets OUT, ERR and RC like t_run.
run_installed() {
    local bin=$1
    shift
    local cwd
    cwd=$(mktemp -d "$T_TMP/cwd.XXXXXX")
    OUT=$(cd "$cwd" && env -u AUTORUN_RECIPES -u AUTORUN_PLUGINS AUTORUN_HOME="$T_TMP/home-$1" \
        "$bin" "$@" 2>"$T_TMP/stderr")
    RC=$?
    ERR=$(cat "$T_TMP/stderr")
}

# The checks both installations must pass. $1: the installed binary, $2: its prefix, $3: a label.
check_installation() {
    local bin=$1 prefix=$2 what=$3
    [ -x "$bin" ] && t_pass "$what: bin/autorun is installed" || t_fail "$what: no $bin"
    for f in share/autorun/recipes/nps-survey.js share/autorun/recipes/nps.txt \
        share/autorun/recipes/nps.html share/autorun/recipes/data/customers.sql \
        share/autorun/plugins/trello.js share/man/man1/autorun.1.gz \
        share/bash-completion/completions/autorun share/doc/autorun/recipes.md \
        share/doc/autorun/operations.md; do
        [ -f "$prefix/$f" ] && t_pass "$what: $f is installed" || t_fail "$what: $f is missing"
    done
    if [ -f "$AR_SOURCE_DIR/contrib/systemd/autorun.service" ]; then
        [ -f "$prefix/lib/systemd/system/autorun.service" ] &&
            t_pass "$what: the systemd unit is installed" ||
            t_fail "$what: lib/systemd/system/autorun.service is missing"
    fi
    if [ -n "$(find "$prefix/share/autorun/plugins" -name '*.c' -o -name CMakeLists.txt)" ]; then
        t_fail "$what: plugin sources were installed" "$(find "$prefix/share/autorun/plugins")"
    else
        t_pass "$what: no plugin sources are installed"
    fi
    gzip -dc "$prefix/share/man/man1/autorun.1.gz" | grep -q '^\.SH COMMANDS' &&
        t_pass "$what: the man page is a compressed man page" ||
        t_fail "$what: the man page does not decompress to the roff source"

    run_installed "$bin" --version
    t_expect_eq "$what: autorun --version" "$OUT" "autorun $VERSION"

    run_installed "$bin" run nps-survey
    t_expect_rc "$what: autorun run nps-survey from an empty directory" 0
    t_expect_contains "$what: the survey went to the sample customers" "$OUT" '"sent":6'
    t_expect_contains "$what: it says it used the installed examples" "$ERR" \
        "using the example recipes in $prefix/share/autorun/recipes"
    local n
    n=$(find "$T_TMP/home-run/outbox" -name '*.eml' 2>/dev/null | wc -l)
    t_expect_eq "$what: six messages are in the outbox" "$n" 6
    rm -rf "$T_TMP/home-run"

    run_installed "$bin" list --json
    t_expect_contains "$what: autorun list shows the examples" "$OUT" '"name":"board-add-member"'

    # A recipe of one's own that uses a shipped plugin, with no ./plugins directory.
    local cwd
    cwd=$(mktemp -d "$T_TMP/own.XXXXXX")
    mkdir "$cwd/recipes"
    cat >"$cwd/recipes/uses-trello.js" <<'JS'
var trello = require('trello');
exports.run = function () { return { boards: typeof trello.boards }; };
JS
    OUT=$(cd "$cwd" && env -u AUTORUN_RECIPES -u AUTORUN_PLUGINS AUTORUN_HOME="$cwd/state" \
        "$bin" run uses-trello 2>"$T_TMP/stderr")
    RC=$?
    ERR=$(cat "$T_TMP/stderr")
    t_expect_rc "$what: require('trello') finds the installed plugin" 0
    t_expect_contains "$what: the plugin loaded" "$OUT" '"boards":"function"'
    t_expect_not_contains "$what: ./recipes, when it exists, is used as is" "$ERR" "example recipes"

    # A recipes directory one names is never replaced by the examples.
    run_installed "$bin" --recipes "$T_TMP/no-such-dir" run nps-survey
    t_expect_rc "$what: a missing --recipes directory is an error, not the examples" 2
}

if [ -e /usr/local/share/autorun ] || [ -e /usr/share/autorun ]; then
    echo "# note: an autorun is installed on this machine; the compiled-in share directory" \
        "may also find examples"
fi

# ---- cmake --install into a DESTDIR ----
DEST="$T_TMP/destdir"
if DESTDIR="$DEST" cmake --install "$AR_BUILD_DIR" --prefix /usr >"$T_TMP/install.log" 2>&1; then
    t_pass "cmake --install into a DESTDIR"
else
    t_fail "cmake --install into a DESTDIR" "$(tail -5 "$T_TMP/install.log")"
fi
check_installation "$DEST/usr/bin/autorun" "$DEST/usr" "DESTDIR install"

# ---- The Debian package ----
if ! command -v dpkg-deb >/dev/null || ! command -v dpkg-shlibdeps >/dev/null; then
    echo "ok - skipped: dpkg-deb or dpkg-shlibdeps is missing, no .deb is built"
    t_done
    exit $?
fi
PKG="$T_TMP/pkg"
mkdir -p "$PKG"
if (cd "$PKG" && cpack -G DEB -B "$PKG" --config "$AR_BUILD_DIR/CPackConfig.cmake") \
    >"$T_TMP/cpack.log" 2>&1; then
    t_pass "cpack -G DEB"
else
    t_fail "cpack -G DEB" "$(tail -15 "$T_TMP/cpack.log")"
fi
ARCH=$(dpkg --print-architecture)
DEB="$PKG/autorun_${VERSION}_${ARCH}.deb"
[ -f "$DEB" ] && t_pass "the package is named autorun_${VERSION}_${ARCH}.deb" ||
    t_fail "no $DEB" "$(ls "$PKG")"
INFO=$(dpkg-deb -I "$DEB" 2>&1)
DEPENDS=$(printf '%s\n' "$INFO" | sed -n 's/^ Depends: //p')
# libuv, SQLite and http-parser are linked statically by default (AR_STATIC_DEPS); a shared
# build depends on their packages instead, which ldd tells.
deps="libc6 libcurl4 libssl3 libpq5"
if ldd "$AUTORUN" | grep -q libuv; then deps="$deps libuv1 libsqlite3-0 libhttp-parser2.9"; fi
for dep in $deps; do
    case ", $DEPENDS" in
        *", $dep"[\ ,]* | *", $dep") t_pass "the package depends on $dep" ;;
        *) t_fail "the package depends on $dep" "Depends: $DEPENDS" ;;
    esac
done
t_expect_not_contains "duktape is compiled in, not a dependency" "$DEPENDS" "duktape"
ROOT="$T_TMP/debroot"
dpkg-deb -x "$DEB" "$ROOT" && t_pass "dpkg-deb -x" || t_fail "dpkg-deb -x"
LISTING=$(dpkg-deb -c "$DEB")
t_expect_contains "the package installs under /usr" "$LISTING" "./usr/bin/autorun"
check_installation "$ROOT/usr/bin/autorun" "$ROOT/usr" "the .deb"

t_done
