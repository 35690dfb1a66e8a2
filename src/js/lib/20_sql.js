/*
 * sql: recipes read and change their databases by name.
 *
 *   sql.query(db, text, params)   -> [ {column: value, ...}, ... ]
 *   sql.exec(db, text, params)    -> { changes, lastId }   (and rows for ... RETURNING)
 *   sql.transaction(db, fn)       -> what fn returned; fn(tx) runs inside BEGIN/COMMIT
 *                                    (ROLLBACK when it throws), tx.query/tx.exec are
 *                                    sql.query/sql.exec bound to db
 *
 * Parameters are always bound, never spliced into the text: '?' placeholders (also
 * for PostgreSQL, which also takes $1..$n). Values: numbers, strings, booleans (1/0
 * in SQLite, bool in PostgreSQL), null, Dates (bound as ISO 8601 text), arrays and
 * objects (bound as JSON text).
 *
 * Columns come back as: integers and reals -> numbers (integers beyond 2^53 -> decimal
 * strings, which keep every digit), text -> strings, NULL -> null, SQLite blobs and
 * PostgreSQL bytea -> lower-case hex strings; PostgreSQL by type: bool -> boolean,
 * numeric -> number when it has at most 15 significant digits (else a string),
 * json/jsonb -> parsed values, timestamp/timestamptz -> ISO 8601 UTC strings like
 * Date.toISOString() (milliseconds), date -> 'YYYY-MM-DD', anything else -> its text.
 *
 * A dry run executes only reads (SELECT, WITH ... SELECT, EXPLAIN, PRAGMA reads);
 * sql.exec of a write returns {changes: 0, lastId: null, dryRun: true} and sql.query
 * of one returns [].
 *
 * A transaction belongs to the fiber that opened it and to the fibers it starts
 * (parallel() inside fn): their calls on that database run in the transaction, on
 * its connection. A transaction inside a transaction on the same database is a
 * savepoint.
 */
(function (global, native) {
    'use strict';

    var hasOwn = Object.prototype.hasOwnProperty;
    var savepoints = 0;

    function checkDb(db, what) {
        if (typeof db !== 'string' || db === '') {
            throw new TypeError(what + ': db must be the name of a database (e.g. \'customers\')');
        }
    }

    function toParam(v, i, what) {
        if (v === null || typeof v === 'string' || typeof v === 'boolean') {
            return v;
        }
        if (typeof v === 'number') {
            if (!isFinite(v)) {
                throw new TypeError(what + ': parameter ' + (i + 1) + ' is ' + v +
                                    ', which no database can store');
            }
            return v;
        }
        if (v === undefined) {
            throw new TypeError(what + ': parameter ' + (i + 1) +
                                ' is undefined (use null for SQL NULL)');
        }
        if (v instanceof Date) {
            if (isNaN(v.getTime())) {
                throw new TypeError(what + ': parameter ' + (i + 1) + ' is an invalid Date');
            }
            return v.toISOString();
        }
        if (typeof v === 'object') {
            return JSON.stringify(v);
        }
        throw new TypeError(what + ': parameter ' + (i + 1) + ' (a ' + typeof v +
                            ') cannot be bound');
    }

    function toParams(params, what) {
        if (params === undefined || params === null) {
            return [];
        }
        if (!Array.isArray(params)) {
            throw new TypeError(what + ': params must be an array of values for the ? ' +
                                'placeholders');
        }
        var out = new Array(params.length);
        for (var i = 0; i < params.length; i++) {
            out[i] = toParam(params[i], i, what);
        }
        return out;
    }

    /* The transaction the fiber (or the fiber that started it) holds on db, or 0. */
    function txOf(fiber, key) {
        for (var f = fiber; f; f = f.parent) {
            if (f.sqlTx && hasOwn.call(f.sqlTx, key)) {
                return f.sqlTx[key];
            }
        }
        return 0;
    }

    /* Waits for the database. Its errors are made again here, inside the fiber, so
     * that their stack shows the recipe's line (an error made on the loop has none). */
    function wait() {
        var result;
        try {
            result = native.suspend();
        } catch (e) {
            if (e instanceof Error && e.name === 'SqlError') {
                var again = new Error(e.message);
                again.name = 'SqlError';
                if (e.db !== undefined) { again.db = e.db; }
                if (e.code !== undefined) { again.code = e.code; }
                throw again;
            }
            throw e;
        }
        return result;
    }

    /* No tail calls below: they would drop the caller's frame from error stacks. */
    function call(mode, db, text, params) {
        var what = 'sql.' + mode + '()';
        checkDb(db, what);
        if (typeof text !== 'string' || !/\S/.test(text)) {
            throw new TypeError(what + ': the statement must be a non-empty string');
        }
        var p = toParams(params, what);
        var f = native.currentFiber(what);
        native.sqlRun(f.id, db, txOf(f, db.toLowerCase()), text, p, mode);
        var result = wait();
        return result;
    }

    function query(db, text, params) {
        var rows = call('query', db, text, params);
        return rows;
    }

    function exec(db, text, params) {
        var result = call('exec', db, text, params);
        return result;
    }

    function transaction(db, fn) {
        var what = 'sql.transaction()';
        checkDb(db, what);
        if (typeof fn !== 'function') {
            throw new TypeError('sql.transaction(db, fn): fn must be a function');
        }
        var f = native.currentFiber(what);
        var key = db.toLowerCase();
        var handle = {
            db: db,
            query: function (text, params) { var r = call('query', db, text, params); return r; },
            exec: function (text, params) { var r = call('exec', db, text, params); return r; }
        };
        var result;
        if (txOf(f, key)) {
            var sp = 'autorun_sp_' + (++savepoints);
            call('exec', db, 'SAVEPOINT ' + sp);
            try {
                result = fn(handle);
            } catch (e) {
                try {
                    call('exec', db, 'ROLLBACK TO SAVEPOINT ' + sp);
                    call('exec', db, 'RELEASE SAVEPOINT ' + sp);
                } catch (ignored) {
                    /* The outer transaction reports what went wrong with it. */
                }
                throw e;
            }
            call('exec', db, 'RELEASE SAVEPOINT ' + sp);
            return result;
        }
        native.sqlBegin(f.id, db);
        var tx = wait();
        var saved = f.sqlTx, mine = {};
        for (var k in saved) {
            if (hasOwn.call(saved, k)) { mine[k] = saved[k]; }
        }
        mine[key] = tx;
        f.sqlTx = mine;
        try {
            result = fn(handle);
        } catch (e) {
            f.sqlTx = saved;
            try {
                native.sqlEnd(f.id, tx, false);
                native.suspend();
            } catch (ignored) {
                /* fn's error is the one that matters; the rollback happens regardless. */
            }
            throw e;
        }
        f.sqlTx = saved;
        native.sqlEnd(f.id, tx, true);
        wait();
        return result;
    }

    Object.defineProperty(global, 'sql', {
        value: { query: query, exec: exec, transaction: transaction },
        writable: true, configurable: true, enumerable: false
    });
})
