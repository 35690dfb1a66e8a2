#!/bin/bash
# The trello plugin and recipes/board-add-member.js against tests/servers/fake_trello.py:
# adding a person to every open board, re-runs, a failing board, wrong credentials, dry runs,
# Trello's rate limit kept by default, the plugin's other calls, and no token in history.
. "$(dirname "$0")/lib.sh"

FAKE="$AR_SOURCE_DIR/tests/servers/fake_trello.py"
export AUTORUN_HTTP_BACKOFF=20ms
export TRELLO_KEY=k3y-for-tests
export TRELLO_TOKEN=t0ken-that-must-never-be-stored-0042
cp "$AR_SOURCE_DIR/recipes/board-add-member.js" "$AUTORUN_RECIPES/"

start_fake() {
    PORT=$(t_free_port)
    /usr/bin/python3 "$FAKE" "$PORT" --lifetime 280 --key "$TRELLO_KEY" --token "$TRELLO_TOKEN" \
        "$@" >"$T_TMP/fake-$PORT.log" 2>&1 &
    t_track $!
    t_wait_port "$PORT" || echo "fake server did not start: $(cat "$T_TMP/fake-$PORT.log")"
    BASE="http://127.0.0.1:$PORT"
    export TRELLO_API_BASE="$BASE/1"
}

stats() {
    /usr/bin/python3 -c "import json, urllib.request, sys
d = json.load(urllib.request.urlopen('$BASE/__stats'))
print(eval(sys.argv[1]))" "$1"
}

last_run() { t_sql "SELECT max(id) FROM runs"; }

# 20 boards, every 10th closed (18 open); sam is already on the first 3 open ones.
start_fake --boards 20 --closed-every 10 --member-on sam@example.com=3 --fail-board "Board 007"

# ---- A person is added to every open board; one board fails, the others carry on ----
t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_rc "add member: run succeeds" 0
CHECK=$(t_py '
assert doc["already"] == ["Board 001", "Board 002", "Board 003"], doc
added = ["Board %03d" % i for i in range(4, 20) if i not in (7, 10)]
assert doc["added"] == added, doc["added"]
assert len(doc["failed"]) == 1 and doc["failed"][0]["board"] == "Board 007", doc["failed"]
e = doc["failed"][0]["error"]
assert e.startswith("500 Internal Server Error from 127.0.0.1:") and "after 4 attempts" in e, e
print("ok")' 2>&1)
t_expect_eq "add member: added, already and failed boards" "$CHECK" "ok"
CHECK=$(stats '[b for b, m in sorted(d["members"].items()) if "sam" in m]')
t_expect_eq "add member: the server has sam on every open board but the failing one" "$CHECK" \
    "$(/usr/bin/python3 -c 'print(["Board %03d" % i for i in range(1, 20) if i not in (7, 10)])')"
t_expect_eq "add member: closed boards untouched" "$(stats 'd["members"]["Board 020"]')" "['alice']"
t_expect_contains "add member: the failure is logged" "$ERR" 'warn: board "Board 007": 500 Internal Server Error'
RUN=$(last_run)
t_expect_eq "add member: steps in history (2 reads, 14 adds, 1 failed add)" \
    "$(t_sql "SELECT count(*), sum(status='200'), sum(status='500'), sum(attempts) FROM steps WHERE run_id=$RUN AND kind='http'")" \
    "17|16|1|20"
t_expect_contains "add member: the step names the board and the member" \
    "$(t_sql "SELECT name FROM steps WHERE run_id=$RUN AND name LIKE 'PUT %' LIMIT 1")" \
    "PUT $BASE/1/boards/b0"
PUTS=$(stats 'd["puts"]')

# ---- A re-run is harmless: nothing to add ----
t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_rc "re-run: run succeeds" 0
t_expect_eq "re-run: only the failed board is tried again" \
    "$(t_py 'print(len(doc["added"]), len(doc["already"]), [f["board"] for f in doc["failed"]])')" \
    "0 17 ['Board 007']"
t_expect_eq "re-run: one PUT (4 attempts) for the failing board only" "$(stats 'd["puts"]')" "$((PUTS + 4))"

# ---- Dry run: says what it would do, sends no PUT ----
PUTS=$(stats 'd["puts"]')
t_run run board-add-member --dry-run --input '{"org":"support-team","email":"new.person@example.com","type":"observer"}'
t_expect_rc "dry run: run succeeds" 0
t_expect_eq "dry run: would add to all 18 open boards" \
    "$(t_py 'print(doc["dryRun"], len(doc["wouldAdd"]), doc["already"], doc["failed"])')" "True 18 [] []"
t_expect_eq "dry run: no PUT reached the server" "$(stats 'd["puts"]')" "$PUTS"
t_expect_contains "dry run: says so in the log" "$ERR" "dry run: would add new.person@example.com (observer) to 18"
RUN=$(last_run)
t_expect_eq "dry run: each add is a dry-run step" \
    "$(t_sql "SELECT count(*) FROM steps WHERE run_id=$RUN AND status='dry-run' AND name LIKE 'PUT %email=new.person%40example.com&type=observer'")" "18"

# ---- Someone without a Trello account is invited by email ----
t_run run board-add-member --input '{"org":"support-team","email":"new.person@example.com","type":"admin"}'
t_expect_eq "invite by email: added to all open boards but the failing one" \
    "$(t_py 'print(len(doc["added"]), len(doc["already"]), len(doc["failed"]))')" "17 0 1"
t_run run board-add-member --input '{"org":"support-team","email":"new.person@example.com","type":"admin"}'
t_expect_eq "invite by email: the re-run finds them" \
    "$(t_py 'print(len(doc["added"]), len(doc["already"]))')" "0 17"

# ---- Bad input and wrong credentials: clear errors ----
t_run run board-add-member --input '{"org":"support-team"}'
t_expect_rc "bad input: run fails" 1
t_expect_contains "bad input: says what is needed" "$ERR" "TypeError: input needs org and email"
TRELLO_TOKEN=wrong-token t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_rc "wrong token: run fails" 1
t_expect_contains "wrong token: clear error" "$ERR" "HttpError: 401 Unauthorized from 127.0.0.1:$PORT (GET /1/organizations/support-team/boards): invalid token (Trello refused the credentials: check the secrets TRELLO_KEY and TRELLO_TOKEN)"
TRELLO_KEY=wrong-key t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_contains "wrong key: clear error" "$ERR" ": invalid key (Trello refused the credentials"
t_run run board-add-member --input '{"org":"no-such-team","email":"sam@example.com"}'
t_expect_contains "unknown organization: clear error" "$ERR" "HttpError: 404 Not Found from 127.0.0.1:$PORT (GET /1/organizations/no-such-team/boards): model not found"
env -u TRELLO_TOKEN "$AUTORUN" run board-add-member --input '{"org":"support-team","email":"sam@example.com"}' >/dev/null 2>"$T_TMP/err"
t_expect_contains "missing secret: clear error" "$(cat "$T_TMP/err")" "secret 'TRELLO_TOKEN' is not set"

# ---- The token never reaches history ----
sqlite3 "$AUTORUN_HOME/history.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
t_expect_eq "secrets: no token or key in history.db" \
    "$(cat "$AUTORUN_HOME"/history.db* | grep -a -c -e "$TRELLO_TOKEN" -e "$TRELLO_KEY")" "0"
t_expect_contains "secrets: URLs in history show *** instead" \
    "$(t_sql "SELECT name FROM steps WHERE name LIKE '%/search/members%' LIMIT 1")" "key=***&token=***"

# ---- The plugin's other calls ----
start_fake --boards 3 --cards 2345 --member-on pat@example.com=2
t_recipe trello_misc <<'JS'
exports.run = function () {
    var trello = require('trello');
    var out = {};
    var boards = trello.boards({ org: 'support-team' });
    out.boards = boards.map(function (b) { return b.name; });
    out.fields = Object.keys(boards[0]).sort();
    out.mine = trello.memberBoards('pat').map(function (b) { return b.name; });
    out.me = trello.boards({ member: 'me' }).length;
    out.members = trello.boardMembers(boards[0].id).map(function (m) { return m.username; }).sort();
    out.memberships = trello.boardMemberships(boards[0].id).length;
    var cards = trello.cards(boards[0].id);
    var ids = {};
    cards.forEach(function (c) { ids[c.id] = true; });
    out.cards = [cards.length, Object.keys(ids).length];
    var list = trello.request('GET', '/boards/' + boards[1].id, { query: { fields: 'all' } });
    out.base = trello.base;
    var card = trello.createCard({ idList: '10' + new Array(21).join('0') + '02', name: 'Follow up',
                                   desc: 'from autorun' });
    out.card = [card.name, card.desc, card.idBoard === boards[1].id, list.name];
    out.listCards = trello.listCards(card.idList).map(function (c) { return c.name; });
    var pat = trello.findMember('pat@example.com');
    out.pat = pat.username;
    out.nobody = trello.findMember('nobody@example.com');
    trello.addMember(boards[2].id, { memberId: pat.id, type: 'observer' });
    out.added = trello.boardMembers(boards[2].id).map(function (m) { return m.username; }).sort();
    try { trello.addMember(boards[2].id, { type: 'owner', email: 'x@example.com' }); }
    catch (e) { out.badType = e.message; }
    return out;
};
JS
t_run run trello_misc
t_expect_rc "plugin calls: run succeeds" 0
CHECK=$(t_py '
r = doc
assert r["boards"] == ["Board 001", "Board 002", "Board 003"], r
assert r["fields"] == ["closed", "id", "name", "url"], r["fields"]
assert r["mine"] == ["Board 001", "Board 002"] and r["me"] == 3, r
assert r["members"] == ["alice", "pat"] and r["memberships"] == 2, r
assert r["cards"] == [2345, 2345], r["cards"]
assert r["base"].endswith("/1"), r["base"]
assert r["card"] == ["Follow up", "from autorun", True, "Board 002"], r["card"]
assert r["listCards"] == ["Follow up"], r["listCards"]
assert r["pat"] == "pat" and r["nobody"] is None, r
assert r["added"] == ["alice", "pat"], r["added"]
assert "normal, admin or observer" in r["badType"], r["badType"]
print("ok")' 2>&1)
t_expect_eq "plugin calls: boards, members, paged cards, cards, search, add by id" "$CHECK" "ok"
RUN=$(last_run)
t_expect_eq "plugin calls: cards came in 3 pages" \
    "$(t_sql "SELECT count(*) FROM steps WHERE run_id=$RUN AND name LIKE '%/cards?%limit=1000%'")" "3"

# ---- Trello's rate limit (100 per 10 s per token) is kept by default ----
# 110 open boards need 112 calls: the plugin's limit must hold the last ones back rather than
# let the server answer 429 (the fake enforces the limit over a sliding window, as Trello does).
start_fake --boards 110 --latency-ms 20 --rate 100 --per 10
t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_rc "rate limit: run succeeds" 0
t_expect_eq "rate limit: all 110 added" "$(t_py 'print(len(doc["added"]), len(doc["failed"]))')" "110 0"
t_expect_eq "rate limit: the server never answered 429" "$(stats 'd["sent_429"]')" "0"
t_expect_eq "rate limit: no 10 s window held more than 100 calls" \
    "$(stats 'len(d["arrivals"]) == 112 and all(d["arrivals"][i + 100] - d["arrivals"][i] >= 10 for i in range(12))')" "True"
t_expect_eq "rate limit: at most 10 calls at once" "$(stats 'd["max_concurrency"] <= 10')" "True"

# ---- ... and without the limit the same run would have tripped it (the test can fail) ----
start_fake --boards 110 --latency-ms 20 --rate 100 --per 10
AUTORUN_HTTP_LIMITS="127.0.0.1:$PORT concurrency=10" AUTORUN_HTTP_ATTEMPTS=1 \
    t_run run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
t_expect_eq "no rate limit: the server answers 429" "$(stats 'd["sent_429"] > 0')" "True"

t_done
