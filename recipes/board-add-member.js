/*
 * Adds a person to every open board of a Trello organization.
 *
 *   autorun run board-add-member --input '{"org":"support-team","email":"sam@example.com"}'
 *   (optional "type": "normal" | "admin" | "observer"; default normal)
 *
 * Boards where the person already is a member are skipped, so running it again is harmless.
 * The boards are updated concurrently; the trello plugin keeps within Trello's rate limit.
 * One board failing does not stop the others: it is listed under "failed".
 * With --dry-run nothing changes: the result lists the boards it would add the person to.
 */
exports.description = 'Add a person to every open board of a Trello organization';
exports.secrets = ['TRELLO_KEY', 'TRELLO_TOKEN'];
exports.timeout = '1h'; /* thousands of boards at Trello's 10 requests a second take a while */

var TYPES = ['normal', 'admin', 'observer'];

function names(boards) {
    return boards.map(function (b) { return b.name; });
}

exports.run = function (input, ctx) {
    var trello = require('trello');
    if (!input || typeof input.org !== 'string' || typeof input.email !== 'string' ||
        input.email.indexOf('@') < 1) {
        throw new TypeError('input needs org and email, e.g. ' +
                            '{"org":"support-team","email":"sam@example.com"}');
    }
    var type = input.type || 'normal';
    if (TYPES.indexOf(type) < 0) {
        throw new TypeError('input.type must be one of ' + TYPES.join(', '));
    }

    var boards = trello.orgBoards(input.org, { filter: 'open', fields: 'name,memberships' });
    /* Trello's board memberships name members by id, not email: look the person up once. */
    var member = trello.findMember(input.email);
    var already = [], todo = [];
    boards.forEach(function (b) {
        var on = member !== null && (b.memberships || []).some(function (m) {
            return m.idMember === member.id;
        });
        (on ? already : todo).push(b);
    });

    var who = member ? { memberId: member.id, type: type } : { email: input.email, type: type };
    var outcomes = parallel(todo, function (b) {
        try {
            trello.addMember(b.id, who);
            return { ok: true };
        } catch (e) {
            log.warn('board "' + b.name + '": ' + e.message);
            return { ok: false, error: e.message };
        }
    }, { concurrency: 100 });

    var added = [], failed = [];
    outcomes.forEach(function (o, i) {
        if (o.ok) {
            added.push(todo[i].name);
        } else {
            failed.push({ board: todo[i].name, error: o.error });
        }
    });

    if (ctx.dryRun) {
        log.info('dry run: would add ' + input.email + ' (' + type + ') to ' + added.length +
                 ' of ' + boards.length + ' open boards of ' + input.org + '; already on ' +
                 already.length);
        return { dryRun: true, wouldAdd: added, already: names(already), failed: failed };
    }
    log.info('added ' + input.email + ' (' + type + ') to ' + added.length + ' of ' +
             boards.length + ' open boards of ' + input.org + '; already on ' + already.length +
             (failed.length ? '; ' + failed.length + ' failed' : ''));
    return { added: added, already: names(already), failed: failed };
};
