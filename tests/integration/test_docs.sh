#!/bin/bash
# The documentation does what it says: every runnable example in docs/*.md is run, the man page
# lists the same commands and options as `autorun help`, every setting of src/core/config.c is
# in docs/operations.md and the man page, and the bash completion completes.
#
# Marks in docs/*.md, on the lines right before a fenced block (several may be stacked):
#   <!-- example: NAME.js -->        ```js block saved as recipes/NAME.js, `autorun run NAME`
#                                    must exit 0
#   <!-- example-check: NAME.js -->  saved the same way, only `autorun check NAME` must pass
#   <!-- file: PATH -->              the block is saved as recipes/PATH (templates, modules)
#   <!-- input: {...} -->            the --input of the run
#   <!-- args: --dry-run -->         more arguments for autorun run
#   <!-- expect: TEXT -->            stdout of the run must contain TEXT
#   <!-- env: NAME=value -->         environment of that run or check
#   <!-- example-sh -->              ```sh block run with bash -e in a working directory that
#                                    holds a copy of recipes/ and plugins/ (one per document)
# Examples reach HTTP through http.apiBase('example', ...); EXAMPLE_API_BASE points at
# tests/servers/example_api.py, started here.
. "$(dirname "$0")/lib.sh"

DOCS="$AR_SOURCE_DIR/docs"
export AUTORUN_HTTP_BACKOFF=20ms

# ---- A local API for the http examples ----
PORT=$(t_free_port)
/usr/bin/python3 "$AR_SOURCE_DIR/tests/servers/example_api.py" "$PORT" --lifetime 250 \
    >"$T_TMP/example_api.log" 2>&1 &
t_track $!
t_wait_port "$PORT" || echo "example API did not start: $(cat "$T_TMP/example_api.log")"
export EXAMPLE_API_BASE="http://127.0.0.1:$PORT"

# ---- Extract the examples: one action per line (fields split by \x1f), bodies in files ----
mkdir -p "$T_TMP/blocks"
/usr/bin/python3 - "$T_TMP/blocks" "$DOCS"/*.md >"$T_TMP/actions" <<'PY'
import re, sys, os
out_dir, docs = sys.argv[1], sys.argv[2:]
mark = re.compile(r'^<!--\s*(example|example-check|example-sh|file|input|args|expect|env)'
                  r'(?::\s*(.*?))?\s*-->\s*$')
SEP = '\x1f'   # not whitespace, so that read keeps empty fields
n = 0
for doc in docs:
    lines = open(doc, encoding='utf-8').read().split('\n')
    pending, i = [], 0
    while i < len(lines):
        line = lines[i]
        m = mark.match(line.strip())
        if m:
            pending.append((m.group(1), (m.group(2) or '').strip()))
            i += 1
            continue
        fence = re.match(r'^(```+)\s*(\w*)\s*$', line)
        if fence:
            j = i + 1
            while j < len(lines) and lines[j].rstrip() != fence.group(1):
                j += 1
            body = '\n'.join(lines[i + 1:j]) + '\n'
            if pending:
                n += 1
                path = os.path.join(out_dir, '%04d' % n)
                open(path, 'w', encoding='utf-8').write(body)
                kind, name, opt = None, '', {'input': '', 'args': '', 'expect': '', 'env': []}
                for k, v in pending:
                    if k in ('example', 'example-check', 'example-sh', 'file'):
                        kind, name = k, v
                    elif k == 'env':
                        opt['env'].append(v)
                    else:
                        opt[k] = v
                where = '%s:%d' % (os.path.basename(doc), i + 1)
                if kind is None:
                    print(SEP.join(['bad', path, '', '', '', '', '', '', where]))
                else:
                    print(SEP.join([kind, path, name, opt['input'], opt['args'], opt['expect'],
                                     ' '.join(opt['env']), fence.group(2), where]))
            pending = []
            i = j + 1
            continue
        if line.strip() and pending:
            # A mark must sit right before its block; anything else in between is a mistake.
            print(SEP.join(['bad', '', '', '', '', '', '', '', '%s:%d (mark not followed by a '
                            'fenced block)' % (os.path.basename(doc), i + 1)]))
            pending = []
        i += 1
PY

n_js=0
n_sh=0
while IFS=$'\x1f' read -r kind block name input args expect envs lang where; do
    case $kind in
        bad)
            t_fail "$where: a mark without a fenced block, or a block without example/file"
            ;;
        file)
            mkdir -p "$(dirname "$AUTORUN_RECIPES/$name")"
            cp "$block" "$AUTORUN_RECIPES/$name"
            ;;
        example | example-check)
            recipe=${name%.js}
            if [ "$lang" != js ] || [ "$recipe" = "$name" ]; then
                t_fail "$where: $kind needs a \`\`\`js block and a NAME.js"
                continue
            fi
            cp "$block" "$AUTORUN_RECIPES/$name"
            n_js=$((n_js + 1))
            env_args=()
            [ -n "$envs" ] && read -r -a env_args <<<"$envs"
            if [ "$kind" = example-check ]; then
                OUT=$(env "${env_args[@]}" "$AUTORUN" check "$recipe" 2>"$T_TMP/stderr")
                RC=$?
                ERR=$(cat "$T_TMP/stderr")
                t_expect_rc "$where: autorun check $recipe" 0
                continue
            fi
            run_args=(run "$recipe")
            [ -n "$input" ] && run_args+=(--input "$input")
            # shellcheck disable=SC2206
            [ -n "$args" ] && run_args+=($args)
            OUT=$(env "${env_args[@]}" "$AUTORUN" "${run_args[@]}" 2>"$T_TMP/stderr")
            RC=$?
            ERR=$(cat "$T_TMP/stderr")
            t_expect_rc "$where: autorun ${run_args[*]}" 0
            if [ -n "$expect" ]; then
                t_expect_contains "$where: the result holds $expect" "$OUT" "$expect"
            fi
            ;;
        example-sh)
            doc=${where%%:*}
            work="$T_TMP/work-${doc%.md}"
            if [ ! -d "$work" ]; then
                mkdir -p "$work"
                cp -r "$AR_SOURCE_DIR/recipes" "$AR_SOURCE_DIR/plugins" "$work/"
            fi
            n_sh=$((n_sh + 1))
            out=$(cd "$work" && env -u AUTORUN_HOME -u AUTORUN_RECIPES -u AUTORUN_PLUGINS \
                PATH="$(dirname "$AUTORUN"):$PATH" bash -e -o pipefail "$block" 2>&1)
            RC=$?
            OUT=$out
            ERR=""
            t_expect_rc "$where: the shell example runs" 0
            ;;
    esac
done <"$T_TMP/actions"
if [ "$n_js" -ge 10 ] && [ "$n_sh" -ge 1 ]; then
    t_pass "the docs hold $n_js recipe examples and $n_sh shell examples"
else
    t_fail "too few examples found ($n_js recipes, $n_sh shell): are the marks right?"
fi

# ---- The man page and `autorun help` list the same commands and options ----
MAN="$DOCS/autorun.1"
# Commands from `autorun --help`: the word after "autorun" in each usage line.
help_cmds=$("$AUTORUN" --help | awk '/^  autorun [a-z]/ { print $2 }' | sort -u)
man_cmds=$(awk '/^\.SH COMMANDS/ { on = 1; next } /^\.SH / { on = 0 } on && /^\.SS / { print $2 }' \
    "$MAN" | grep -vx help | sort -u)
t_expect_eq "the man page has a section for each command of autorun --help" \
    "$(echo $man_cmds)" "$(echo $help_cmds)"
for cmd in $help_cmds; do
    help_opts=$("$AUTORUN" help "$cmd" | grep -oE '^  --[a-z-]+' | tr -d ' ' | sort -u)
    man_opts=$(awk -v c="$cmd" '
        /^\.SS / { on = ($2 == c); next } /^\.SH / { on = 0 }
        on && prev == ".TP" { print } { prev = $0 }' "$MAN" |
        sed 's/\\-/-/g' | grep -oE -- '--[a-z-]+' | sort -u)
    t_expect_eq "man page options of $cmd match autorun help $cmd" \
        "$(echo $man_opts)" "$(echo $help_opts)"
    # Every option in the usage line is explained under it, too.
    usage_opts=$("$AUTORUN" help "$cmd" | head -1 | grep -oE -- '--[a-z-]+' | sort -u)
    t_expect_eq "autorun help $cmd explains each option of its usage line" \
        "$(echo $usage_opts)" "$(echo $help_opts)"
done
global_help=$("$AUTORUN" --help | awk '/^Global options/ { on = 1; next } /^$/ { on = 0 }
    on' | grep -oE '^  --[a-z-]+' | tr -d ' ' | sort -u)
global_man=$(awk '/^\.SH GLOBAL OPTIONS/ { on = 1; next } /^\.SH / { on = 0 }
    on && prev == ".TP" { print } { prev = $0 }' "$MAN" | sed 's/\\-/-/g' |
    grep -oE -- '--[a-z-]+' | sort -u)
t_expect_eq "the man page's global options match autorun --help" \
    "$(echo $global_man)" "$(echo $global_help)"
man_version=$(awk '/^\.TH / { print $6 }' "$MAN" | tr -d '"')
t_expect_eq "the man page is for this version" "$man_version" \
    "$("$AUTORUN" --version | awk '{ print $2 }')"
if command -v groff >/dev/null; then
    warn=$(groff -man -ww -z "$MAN" 2>&1)
    t_expect_eq "groff formats the man page without warnings" "$warn" ""
else
    echo "ok - skipped: groff is not installed, the man page is not formatted"
fi

# ---- Every setting is documented: operations.md, the man page, autorun help config ----
settings=$(grep -oE '^\s*\{SET_[A-Z]+, "[a-z_.]+", "[A-Z_]+"' "$AR_SOURCE_DIR/src/core/config.c" |
    sed -E 's/.*"([a-z_.]+)", "([A-Z_]+)"/\1 \2/')
n_settings=$(printf '%s\n' "$settings" | grep -c .)
[ "$n_settings" -ge 10 ] && t_pass "found $n_settings settings in config.c" ||
    t_fail "found only $n_settings settings in config.c: did the table's format change?"
help_config=$("$AUTORUN" help config)
missing_ops=""
missing_man=""
missing_help=""
while read -r key env; do
    grep -qF "\`$key\`" "$DOCS/operations.md" && grep -qF "\`$env\`" "$DOCS/operations.md" ||
        missing_ops="$missing_ops $key"
    sed 's/\\-/-/g' "$MAN" | grep -qF "$env" || missing_man="$missing_man $env"
    case $help_config in *"$key"*"$env"*) ;; *) missing_help="$missing_help $key" ;; esac
done <<<"$settings"
t_expect_eq "docs/operations.md documents every setting (key and variable)" "$missing_ops" ""
t_expect_eq "the man page documents every setting's variable" "$missing_man" ""
t_expect_eq "autorun help config lists every setting" "$missing_help" ""
for m in $(grep -oE '"autorun_[a-z_]+' "$AR_SOURCE_DIR/src/core/metrics.c" | tr -d '"' |
    sed -E 's/_(bucket|sum|count)$//' | sort -u); do
    grep -qF "$m" "$DOCS/operations.md" || missing_metrics="${missing_metrics:-} $m"
done
t_expect_eq "docs/operations.md names every metric" "${missing_metrics:-}" ""

# ---- The bash completion completes ----
complete_words() { # WORDS... -> COMPREPLY, one line
    bash -c '
        source "$1/contrib/bash-completion/autorun"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _autorun
        echo "${COMPREPLY[*]}"' _ "$AR_SOURCE_DIR" "$@"
}
for cmd in $help_cmds; do
    case " $(complete_words autorun '') " in
        *" $cmd "*) ;;
        *) missing_comp="${missing_comp:-} $cmd" ;;
    esac
    help_opts=$("$AUTORUN" help "$cmd" | grep -oE '^  --[a-z-]+' | tr -d ' ' | sort -u)
    comp_opts=$(complete_words autorun "$cmd" -- | tr ' ' '\n' | sort -u)
    for o in $help_opts; do
        printf '%s\n' "$comp_opts" | grep -qx -- "$o" || missing_comp="${missing_comp:-} $cmd$o"
    done
done
t_expect_eq "bash completion offers every command and option" "${missing_comp:-}" ""
t_expect_eq "bash completion offers statuses" "$(complete_words autorun history --status f)" \
    "failed"
t_recipe comp-one <<'JS'
exports.run = function () { return 1; };
JS
t_expect_contains "bash completion offers recipe names" \
    "$(complete_words autorun run comp-)" "comp-one"

t_done
