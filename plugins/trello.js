/*
 * Trello REST API for recipes: var trello = require('trello');
 *
 * Base URL: the api.trello setting or TRELLO_API_BASE, else https://api.trello.com/1.
 * Credentials: the secrets TRELLO_KEY and TRELLO_TOKEN, sent as the key and token query
 * parameters (as secrets they are redacted wherever a URL is recorded).
 * Trello allows 100 requests per 10 seconds per token; the plugin declares that limit for its
 * host when it loads, so bulk operations wait their turn instead of collecting 429s. The
 * http.limits setting, when it names the host, wins.
 */
var BASE = http.apiBase('trello', 'https://api.trello.com/1');
var PAGE = 1000; /* Trello's largest page for cards and actions */

http.limit(BASE, { rate: 100, per: '10s', concurrency: 10 });

function credentials() {
    return { key: secret('TRELLO_KEY'), token: secret('TRELLO_TOKEN') };
}

function enc(id, what) {
    if (typeof id !== 'string' || id === '') {
        throw new TypeError('trello: ' + what + ' must be a non-empty string');
    }
    return encodeURIComponent(id);
}

/* One API call; returns the parsed JSON. A 401 names the secrets to check. */
function call(method, path, opts) {
    opts = opts || {};
    var query = credentials();
    var extra = opts.query || {};
    Object.keys(extra).forEach(function (k) { query[k] = extra[k]; });
    try {
        return http.request({ method: method, url: BASE + path, query: query, json: opts.json,
                              timeout: opts.timeout }).json;
    } catch (e) {
        if (e instanceof HttpError && e.status === 401) {
            e.message += ' (Trello refused the credentials: check the secrets TRELLO_KEY and ' +
                         'TRELLO_TOKEN)';
        }
        throw e;
    }
}

function boardQuery(opts) {
    opts = opts || {};
    return { filter: opts.filter || 'open', fields: opts.fields || 'name,closed,url' };
}

/* Boards of an organization (its name or id); open ones unless opts.filter says otherwise
 * ('open', 'closed', 'all', ...). opts.fields: Trello's field list, e.g. 'name,memberships'. */
function orgBoards(org, opts) {
    return call('GET', '/organizations/' + enc(org, 'org') + '/boards',
                { query: boardQuery(opts) });
}

/* Boards of a member (id, username, or 'me'). */
function memberBoards(member, opts) {
    return call('GET', '/members/' + enc(member, 'member') + '/boards',
                { query: boardQuery(opts) });
}

/* boards({org: 'x'} | {member: 'me'}, opts) */
function boards(who, opts) {
    if (who && who.org) { return orgBoards(who.org, opts); }
    if (who && who.member) { return memberBoards(who.member, opts); }
    throw new TypeError('trello.boards(who): who must be {org: name} or {member: id}');
}

function boardMembers(boardId) {
    return call('GET', '/boards/' + enc(boardId, 'boardId') + '/members');
}

function boardMemberships(boardId) {
    return call('GET', '/boards/' + enc(boardId, 'boardId') + '/memberships');
}

var TYPES = { normal: true, admin: true, observer: true };

/* Adds a person to a board: addMember(boardId, {email, type, fullName}) invites by email;
 * addMember(boardId, {memberId, type}) adds an existing member. type: normal (default),
 * admin or observer. Adding someone who is already there changes nothing but the type. */
function addMember(boardId, who) {
    who = who || {};
    var type = who.type || 'normal';
    if (!TYPES[type]) {
        throw new TypeError('trello.addMember: type must be normal, admin or observer');
    }
    var path = '/boards/' + enc(boardId, 'boardId') + '/members';
    if (who.memberId) {
        return call('PUT', path + '/' + enc(who.memberId, 'memberId'), { query: { type: type } });
    }
    if (typeof who.email !== 'string' || who.email.indexOf('@') < 1) {
        throw new TypeError('trello.addMember(boardId, who): who needs an email or a memberId');
    }
    var q = { email: who.email, type: type };
    if (who.fullName) { q.fullName = who.fullName; }
    return call('PUT', path, { query: q });
}

/* The first member matching an email, username or name, or null. */
function findMember(query) {
    enc(query, 'query');
    var found = call('GET', '/search/members', { query: { query: query, limit: 1 } });
    return found && found.length ? found[0] : null;
}

/* Every card of a board, following Trello's pages (newest first, `before` the oldest seen). */
function cards(boardId, opts) {
    opts = opts || {};
    var path = '/boards/' + enc(boardId, 'boardId') + '/cards';
    var all = [], before;
    for (;;) {
        var q = { limit: PAGE };
        if (opts.fields) { q.fields = opts.fields; }
        if (before) { q.before = before; }
        var page = call('GET', path, { query: q }) || [];
        for (var i = 0; i < page.length; i++) {
            all.push(page[i]);
            if (before === undefined || page[i].id < before) { before = page[i].id; }
        }
        if (page.length < PAGE) { return all; }
    }
}

function listCards(listId) {
    return call('GET', '/lists/' + enc(listId, 'listId') + '/cards');
}

/* createCard({idList, name, desc, pos, due, idMembers, idLabels}) */
function createCard(card) {
    if (!card || typeof card.idList !== 'string') {
        throw new TypeError('trello.createCard(card): card.idList is required');
    }
    var q = {};
    Object.keys(card).forEach(function (k) {
        /* Trello takes lists such as idMembers comma separated. */
        q[k] = Array.isArray(card[k]) ? card[k].join(',') : card[k];
    });
    return call('POST', '/cards', { query: q });
}

exports.base = BASE;
exports.request = call;
exports.boards = boards;
exports.orgBoards = orgBoards;
exports.memberBoards = memberBoards;
exports.boardMembers = boardMembers;
exports.boardMemberships = boardMemberships;
exports.addMember = addMember;
exports.findMember = findMember;
exports.cards = cards;
exports.listCards = listCards;
exports.createCard = createCard;
