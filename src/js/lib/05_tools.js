/*
 * parallel, ParallelError, template and store. Like http, sql and mail, this file is loaded
 * the first time code reads one of its globals (src/js/vm.c, lazy_runtimes): a short run
 * that uses none of them does not pay for compiling them into the heap.
 */
(function (global, native) {
    'use strict';

    /* A name the recipe assigned to itself before reading it stays the recipe's. */
    function provide(name, value) {
        var d = Object.getOwnPropertyDescriptor(global, name);
        if (d && d.get) { native.hidden(global, name, value); }
    }

    function ParallelError(failures, results, total) {
        var idx = failures.map(function (f) { return f.index; });
        var first = failures[0].error;
        this.name = 'ParallelError';
        this.message = failures.length + ' of ' + total + ' failed (index' +
            (idx.length > 1 ? 'es ' : ' ') + idx.join(', ') + '); first: ' +
            (first && first.message !== undefined ? (first.name || 'Error') + ': ' + first.message
                                                  : String(first));
        this.failed = idx;
        this.errors = failures;
        this.results = results;
    }
    ParallelError.prototype = Object.create(Error.prototype);
    ParallelError.prototype.constructor = ParallelError;
    provide('ParallelError', ParallelError);

    provide('parallel', function parallel(items, fn, opts) {
        if (!items || typeof items.length !== 'number') {
            throw new TypeError('parallel(items, fn): items must be an array');
        }
        if (typeof fn !== 'function') {
            throw new TypeError('parallel(items, fn): fn must be a function');
        }
        var limit = (opts && opts.concurrency) || native.parallelDefault;
        if (typeof limit !== 'number' || limit < 1 || limit !== Math.floor(limit)) {
            throw new TypeError('parallel(): concurrency must be a positive integer');
        }
        var n = items.length, next = 0, running = 0, done = 0;
        var results = new Array(n), failures = [], indexOf = {};
        function start() {
            var i = next++;
            indexOf[native.spawn(fn, items[i], i)] = i;
            running++;
        }
        while (next < n && running < limit) { start(); }
        while (running > 0) {
            var r = native.waitChild();
            var i = indexOf[r.id];
            delete indexOf[r.id];
            running--;
            done++;
            if (r.ok) {
                results[i] = r.value;
            } else {
                failures.push({ index: i, error: r.value });
            }
            native.progress(done, n);
            if (next < n) { start(); }
        }
        if (failures.length > 0) {
            failures.sort(function (x, y) { return x.index - y.index; });
            throw new ParallelError(failures, results, n);
        }
        return results;
    });

    /* {{a.b}} tags are resolved here, in JS, so the C renderer only reads strings. */
    var TAG = /\{\{\{?\s*([^}!\s][^}]*?)\s*\}?\}\}/g;
    function lookupText(data, path) {
        var v = data, parts = path.split('.');
        for (var i = 0; i < parts.length; i++) {
            if (v === null || v === undefined) { return undefined; }
            v = v[parts[i]];
        }
        if (v === null || v === undefined) { return undefined; }
        if (typeof v === 'object') {
            try { return JSON.stringify(v); } catch (e) { return String(v); }
        }
        return String(v);
    }
    provide('template', function template(text, data, opts) {
        if (typeof text !== 'string') {
            throw new TypeError('template(text, data): text must be a string');
        }
        var values = {};
        text.replace(TAG, function (m, path) {
            var t = lookupText(data, path);
            if (t !== undefined) { values[path] = t; }
            return m;
        });
        return native.template(text, values, !!(opts && opts.html));
    });

    function storeKey(key) {
        if (typeof key !== 'string' || key === '') {
            throw new TypeError('store: key must be a non-empty string');
        }
        return key;
    }
    var store = {
        get: function (key, dflt) {
            var v = native.storeGet(storeKey(key));
            return v === undefined ? dflt : JSON.parse(v);
        },
        set: function (key, value, opts) {
            if (value === undefined) {
                throw new TypeError('store.set(key, value): value is undefined (use store.del)');
            }
            var ttl = opts && opts.ttl !== undefined ? native.duration(opts.ttl) : 0;
            native.storeSet(storeKey(key), JSON.stringify(value), ttl);
            return value;
        },
        del: function (key) {
            native.storeDel(storeKey(key));
        },
        incr: function (key, by, opts) {
            var v = store.get(key, 0);
            if (typeof v !== 'number') {
                throw new TypeError('store.incr: the value of "' + key + '" is not a number');
            }
            return store.set(key, v + (by === undefined ? 1 : by), opts);
        }
    };
    provide('store', store);
})
