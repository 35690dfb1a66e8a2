/*
 * Zendesk Support API for recipes and poll triggers: var zendesk = require('zendesk');
 *
 * Base URL: the api.zendesk setting or ZENDESK_API_BASE, else
 * https://{ZENDESK_SUBDOMAIN}.zendesk.com (ZENDESK_SUBDOMAIN is read like a secret: from the
 * environment or the secrets file). Credentials: the secrets ZENDESK_EMAIL and ZENDESK_TOKEN,
 * sent as basic auth "email/token:apitoken" (Zendesk's API token scheme). A 429 is waited out
 * by http itself (Retry-After), like any 5xx.
 *
 *   newTickets(options, state)   poll function: {poll: 'zendesk.newTickets', every: '1m'}
 *   ticket(id)                   one ticket
 *   updateTicket(id, fields)     PUT /api/v2/tickets/{id}.json
 *
 * Webhooks: Zendesk signs each delivery with HMAC-SHA256 over timestamp + body (base64) in
 * X-Zendesk-Webhook-Signature and X-Zendesk-Webhook-Signature-Timestamp; the service checks it
 * with the built-in scheme, nothing to do here:
 *   exports.triggers = [{ webhook: '/hooks/zendesk',
 *                         verify: { scheme: 'zendesk', secret: 'ZENDESK_WEBHOOK_SECRET' } }];
 * Deliveries older than 5 minutes are refused, and a repeated X-Zendesk-Webhook-Invocation-Id
 * runs nothing twice.
 */

/* How far behind the newest update a ticket may be created and still be reported: Zendesk's
 * export lags a little, and the seen-id set of the trigger covers the overlap. */
var SLACK_S = 3600;
var DEFAULT_START = '1h';
var MAX_PAGES = 10;

function base() {
    var b = http.apiBase('zendesk', null);
    if (typeof b === 'string' && b !== '') { return b; }
    return 'https://' + secret('ZENDESK_SUBDOMAIN') + '.zendesk.com';
}

function auth() {
    return { user: secret('ZENDESK_EMAIL') + '/token', pass: secret('ZENDESK_TOKEN') };
}

/* One API call; returns the parsed JSON. A 401 names the secrets to check. */
function call(method, path, opts) {
    opts = opts || {};
    try {
        return http.request({ method: method, url: base() + path, query: opts.query,
                              json: opts.json, auth: auth(), timeout: opts.timeout }).json;
    } catch (e) {
        if (e instanceof HttpError && e.status === 401) {
            e.message += ' (Zendesk refused the credentials: check the secrets ZENDESK_EMAIL ' +
                         'and ZENDESK_TOKEN)';
        }
        throw e;
    }
}

function enc(id) {
    if ((typeof id !== 'number' && typeof id !== 'string') || id === '') {
        throw new TypeError('zendesk: a ticket id must be a number or a string');
    }
    return encodeURIComponent(String(id));
}

/* '7d' (that long ago), an ISO 8601 time, or unix seconds -> unix seconds. */
function unixTime(v) {
    var now = Math.floor(Date.now() / 1000);
    if (typeof v === 'number') { return Math.floor(v); }
    var m = /^(\d+)\s*(s|m|h|d)$/.exec(String(v));
    if (m) {
        return now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]];
    }
    var t = Date.parse(String(v));
    if (isNaN(t)) {
        throw new TypeError("zendesk.newTickets: startTime '" + v + "' is not a duration " +
                            "(e.g. '7d'), an ISO 8601 time or unix seconds");
    }
    return Math.floor(t / 1000);
}

function seconds(iso) {
    var t = Date.parse(iso);
    return isNaN(t) ? 0 : Math.floor(t / 1000);
}

/*
 * Poll function: tickets created since the last poll, through the cursor-based incremental
 * export (GET /api/v2/incremental/tickets/cursor.json, start_time then cursor=after_cursor until
 * end_of_stream). The export lists tickets by update, so tickets created before the trigger's
 * start that are merely updated are left out. options: startTime (where the first poll starts:
 * '1h' ago by default; with backfill: true what it finds fires), perPage, maxPages (pages per
 * poll, 10; the rest is fetched by the next poll at once). The cursor is {after, since}.
 */
function newTickets(options, state) {
    options = options || {};
    state = state || {};
    var cur = state.cursor && typeof state.cursor === 'object' ? state.cursor : null;
    var since, after = null, query;
    if (cur && cur.after) {
        since = cur.since || 0;
        after = cur.after;
        query = { cursor: after };
    } else {
        since = unixTime(options.startTime === undefined ? DEFAULT_START : options.startTime);
        /* The export refuses a start within the last minute. */
        query = { start_time: Math.min(since, Math.floor(Date.now() / 1000) - 60) };
    }
    var maxPages = options.maxPages || MAX_PAGES, items = [], newest = 0, pages = 0, body;
    do {
        if (options.perPage) { query.per_page = options.perPage; }
        body = call('GET', '/api/v2/incremental/tickets/cursor.json', { query: query }) || {};
        (body.tickets || []).forEach(function (t) {
            newest = Math.max(newest, seconds(t.updated_at));
            if (t.status !== 'deleted' && seconds(t.created_at) >= since) {
                items.push(t);
            }
        });
        if (body.after_cursor) { after = body.after_cursor; }
        query = { cursor: after };
        pages++;
    } while (!body.end_of_stream && body.after_cursor && pages < maxPages);
    return {
        items: items,
        cursor: { after: after, since: Math.max(since, newest - SLACK_S) },
        more: !body.end_of_stream && !!body.after_cursor
    };
}

function ticket(id) {
    return call('GET', '/api/v2/tickets/' + enc(id) + '.json').ticket;
}

/*
 * Updates a ticket: fields are Zendesk's ticket fields (status, priority, assignee_id,
 * comment: {body, public}, ...) with three conveniences for tags, which never overwrite tags
 * someone else set meanwhile: tags: [...] adds them (additional_tags), removeTags: [...] removes
 * them (remove_tags), replaceTags: [...] sets the whole list. Returns the updated ticket (or
 * {dryRun: true, ...} in a dry run).
 */
function updateTicket(id, fields) {
    if (fields === null || typeof fields !== 'object') {
        throw new TypeError('zendesk.updateTicket(id, fields): fields must be an object');
    }
    var t = {};
    Object.keys(fields).forEach(function (k) {
        if (k === 'tags') {
            t.additional_tags = fields.tags;
        } else if (k === 'removeTags') {
            t.remove_tags = fields.removeTags;
        } else if (k === 'replaceTags') {
            t.tags = fields.replaceTags;
        } else {
            t[k] = fields[k];
        }
    });
    var r = call('PUT', '/api/v2/tickets/' + enc(id) + '.json', { json: { ticket: t } });
    return r && r.ticket ? r.ticket : r;
}

exports.newTickets = newTickets;
exports.ticket = ticket;
exports.updateTicket = updateTicket;
