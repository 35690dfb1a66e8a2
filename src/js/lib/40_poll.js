/*
 * The internal runs of poll and newRow triggers (src/trigger/poller.c).
 *
 * The poller starts a run of the recipe with the trigger 'poll-check' and the event
 *   { call: 'zendesk.newTickets' | 'newRow', options: {...}, state: {cursor, first, backfill} }
 * and the prelude hands it to pollCheck() instead of the recipe's run. The result goes back to
 * C, which keeps the cursor and the seen ids and queues one run per new item:
 *   [item, ...]  or  { items: [...], cursor: <any JSON>, more: <bool>, idKey: 'id' }
 * Every item needs an id (item[idKey], a string or a number). `more` asks for the next poll at
 * once (a page was full). Because this is a run, the poll function may use http and sql and
 * wait, and its failures are recorded like any run's.
 */
(function (global, native) {
    'use strict';

    var IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

    /* An identifier (or schema.table) checked and double-quoted: identifiers cannot be bound
     * as parameters, so they are never spliced in unchecked. */
    function ident(name, what, dotted) {
        if (typeof name !== 'string') {
            throw new TypeError('newRow.' + what + ' must be a string');
        }
        var parts = dotted ? name.split('.') : [name];
        if (parts.length > 2 || !parts.every(function (p) { return IDENT.test(p); })) {
            throw new TypeError('newRow.' + what + ": '" + name + "' is not a plain SQL " +
                                'identifier (letters, digits and _' +
                                (dotted ? ', optionally schema.table)' : ')'));
        }
        return parts.map(function (p) { return '"' + p + '"'; }).join('.');
    }

    /* Rows whose key is above the cursor, oldest first, a page at a time. The first poll
     * without backfill reads only the newest row: the baseline is where the table ends now. */
    function newRows(o, state) {
        var table = ident(o.table, 'table', true), key = ident(o.key, 'key', false);
        var limit = o.limit;
        if (typeof limit !== 'number' || limit < 1 || limit !== Math.floor(limit)) {
            throw new TypeError('newRow: limit must be a positive integer');
        }
        var rows;
        if (state.first && !state.backfill) {
            rows = global.sql.query(o.db, 'SELECT * FROM ' + table + ' ORDER BY ' + key +
                                    ' DESC LIMIT 1', []);
        } else if (state.cursor === null || state.cursor === undefined) {
            rows = global.sql.query(o.db, 'SELECT * FROM ' + table + ' ORDER BY ' + key +
                                    ' LIMIT ' + limit, []);
        } else {
            rows = global.sql.query(o.db, 'SELECT * FROM ' + table + ' WHERE ' + key +
                                    ' > ? ORDER BY ' + key + ' LIMIT ' + limit, [state.cursor]);
        }
        var last = rows.length ? rows[rows.length - 1][o.key] : undefined;
        return {
            items: rows,
            idKey: o.key,
            cursor: last === undefined || last === null ? state.cursor : last,
            more: rows.length === limit && !(state.first && !state.backfill)
        };
    }

    native.pollCheck = function pollCheck(ev, ctx, require) {
        var state = ev.state || {};
        if (ev.call === 'newRow') {
            return newRows(ev.options || {}, state);
        }
        var dot = typeof ev.call === 'string' ? ev.call.lastIndexOf('.') : -1;
        if (dot <= 0) {
            throw new TypeError("poll: '" + ev.call + "' does not name 'plugin.function'");
        }
        var plugin = require(ev.call.slice(0, dot));
        var fn = plugin && plugin[ev.call.slice(dot + 1)];
        if (typeof fn !== 'function') {
            throw new TypeError("poll: the plugin '" + ev.call.slice(0, dot) +
                                "' exports no function '" + ev.call.slice(dot + 1) + "'");
        }
        return fn(ev.options || {}, state, ctx);
    };
})
