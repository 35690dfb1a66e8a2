/*
 * http for recipes: http.request(opts), http.get/head/post/put/patch/del(url, opts),
 * http.limit(host, {rate, per, concurrency}), http.apiBase(name, fallback) and HttpError.
 *
 * This file turns option objects into a plain request spec; src/js/js_http.c sends it (per-host
 * limits, retries, redirects, dry runs, history steps) while the fiber is suspended, and hands
 * back a plain result that is finished here: JSON parsed, non-2xx turned into an HttpError.
 */
(function (global, native) {
    'use strict';

    function hidden(obj, name, value) {
        Object.defineProperty(obj, name, {
            value: value, writable: true, configurable: true, enumerable: false
        });
    }

    /* Errors are made by the Error constructor, so they carry a stack; they then point at the
     * recipe (or plugin) line that made the call, not at this file. */
    var FRAME = /\(([^()]*\.js):(\d+)\)/;
    function locate(e) {
        var lines = String(e.stack || '').split('\n');
        for (var i = 1; i < lines.length; i++) {
            var m = FRAME.exec(lines[i]);
            if (m) {
                e.fileName = m[1];
                e.lineNumber = Number(m[2]);
                return e;
            }
        }
        /* A tail call left no caller's frame: better no location than one in the runtime. */
        e.fileName = undefined;
        e.lineNumber = undefined;
        return e;
    }

    function HttpError(message, props) {
        var e = new Error(message);
        Object.setPrototypeOf(e, HttpError.prototype);
        if (props) {
            for (var k in props) {
                if (Object.prototype.hasOwnProperty.call(props, k)) { e[k] = props[k]; }
            }
        }
        return locate(e);
    }
    HttpError.prototype = Object.create(Error.prototype);
    HttpError.prototype.constructor = HttpError;
    HttpError.prototype.name = 'HttpError';
    hidden(global, 'HttpError', HttpError);

    function typeError(message) {
        return locate(new TypeError(message));
    }

    function encodeQuery(query) {
        var parts = [];
        Object.keys(query).forEach(function (k) {
            var v = query[k];
            var list = Array.isArray(v) ? v : [v];
            for (var i = 0; i < list.length; i++) {
                var x = list[i];
                if (x === undefined || x === null) { continue; }
                if (typeof x === 'object') { x = JSON.stringify(x); }
                parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(String(x)));
            }
        });
        return parts.join('&');
    }

    function withQuery(url, query) {
        if (query === undefined || query === null) { return url; }
        if (typeof query !== 'object') {
            throw typeError('http: query must be an object of names and values');
        }
        var q = encodeQuery(query);
        if (q === '') { return url; }
        var hash = url.indexOf('#');
        var frag = hash >= 0 ? url.slice(hash) : '';
        var base = hash >= 0 ? url.slice(0, hash) : url;
        var sep = base.indexOf('?') < 0 ? '?' : (/[?&]$/.test(base) ? '' : '&');
        return base + sep + q + frag;
    }

    function isJsonType(ct) {
        return typeof ct === 'string' && /\bjson\b|\+json/i.test(ct);
    }

    /* The recipe's exports.allowHosts, checked before any I/O (and on redirects). */
    function allowHosts() {
        var name = native.httpRecipe();
        if (name === undefined) { return null; }
        var ex = native.recipeExports(name);
        var list = ex && ex.allowHosts;
        if (list === undefined || list === null) { return null; }
        if (!Array.isArray(list) || !list.every(function (h) { return typeof h === 'string'; })) {
            throw typeError('exports.allowHosts must be an array of host names');
        }
        return list;
    }

    var METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

    function request(opts) {
        if (opts === null || typeof opts !== 'object') {
            throw typeError('http.request(opts): opts must be an object with at least a url');
        }
        var method = String(opts.method || 'GET').toUpperCase();
        if (METHODS.indexOf(method) < 0 && !/^[A-Z]{1,16}$/.test(method)) {
            throw typeError('http: "' + opts.method + '" is not an HTTP method');
        }
        if (typeof opts.url !== 'string' || opts.url === '') {
            throw typeError('http: url must be a string such as "https://api.example.com/x"');
        }
        var url = withQuery(opts.url, opts.query);
        var headers = [], names = {};
        if (opts.headers !== undefined && opts.headers !== null) {
            if (typeof opts.headers !== 'object') {
                throw typeError('http: headers must be an object of names and values');
            }
            Object.keys(opts.headers).forEach(function (k) {
                var v = opts.headers[k];
                if (v === undefined || v === null) { return; }
                v = String(v);
                if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || /[\r\n\0]/.test(v)) {
                    throw typeError('http: header "' + k + '" has a bad name or a line break');
                }
                names[k.toLowerCase()] = true;
                headers.push(k + ': ' + v);
            });
        }
        var body;
        if (opts.json !== undefined) {
            body = JSON.stringify(opts.json);
            if (!names['content-type']) { headers.push('Content-Type: application/json'); }
        } else if (opts.body !== undefined && opts.body !== null) {
            if (typeof opts.body !== 'string') {
                throw typeError('http: body must be a string (use json: for objects)');
            }
            body = opts.body;
            if (!names['content-type']) { headers.push('Content-Type: text/plain;charset=UTF-8'); }
        }
        if (!names.accept && (opts.json !== undefined || method === 'GET')) {
            headers.push('Accept: application/json, text/plain, */*');
        }
        var spec = {
            method: method, url: url, headers: headers, body: body,
            throwOnError: opts.throwOnError !== false,
            follow: opts.followRedirects !== false,
            allowHosts: allowHosts()
        };
        var auth = opts.auth;
        if (auth !== undefined && auth !== null) {
            if (typeof auth.bearer === 'string') {
                if (names.authorization) {
                    throw typeError('http: give auth or an Authorization header, not both');
                }
                if (/[\r\n]/.test(auth.bearer)) { throw typeError('http: bad bearer token'); }
                headers.push('Authorization: Bearer ' + auth.bearer);
            } else if (typeof auth.user === 'string') {
                spec.user = auth.user;
                spec.pass = auth.pass === undefined ? '' : String(auth.pass);
            } else {
                throw typeError('http: auth must be {bearer: token} or {user, pass}');
            }
        }
        if (opts.timeout !== undefined) { spec.timeoutMs = native.duration(opts.timeout); }
        if (opts.attempts !== undefined) {
            spec.attempts = opts.attempts;
        } else if (opts.retries !== undefined) {
            spec.attempts = typeof opts.retries === 'number' ? opts.retries + 1 : opts.retries;
        }
        if (spec.attempts !== undefined &&
            (typeof spec.attempts !== 'number' || spec.attempts < 1 || spec.attempts % 1 !== 0)) {
            throw typeError('http: attempts must be a positive integer (retries: 0 or more)');
        }

        var fiber = native.currentFiber('http.' + method.toLowerCase() + '()');
        var r = native.httpStart(fiber.id, spec);
        if (r === true) {
            return { status: 0, dryRun: true, body: '', json: null, headers: {} };
        }
        if (r === undefined) {
            r = native.suspend();
        }
        if (r.error !== undefined && r.headers === undefined) {
            /* Refused before any I/O (allowHosts, settings). */
            throw new HttpError(r.error, { status: 0, statusText: '', headers: {}, body: '',
                                           json: null, method: method, url: url, attempts: 0 });
        }
        /* JSON when the server says so (or says nothing and it looks like JSON). A body that
         * is not valid JSON leaves json null and keeps the text in body; no error is thrown. */
        var json = null, ct = r.headers['content-type'];
        if (r.body !== '' && (isJsonType(ct) || (ct === undefined && /^\s*[\[{]/.test(r.body)))) {
            try { json = JSON.parse(r.body); } catch (e) { json = null; }
        }
        if (r.error !== undefined) {
            throw new HttpError(r.error, {
                status: r.status || 0, statusText: r.statusText || '', headers: r.headers || {},
                body: r.body || '', json: json, method: r.method || method, url: r.url || url,
                host: r.host, attempts: r.attempts || 0
            });
        }
        return { status: r.status, statusText: r.statusText, headers: r.headers, body: r.body,
                 json: json, url: r.url, attempts: r.attempts };
    }

    function shorthand(method) {
        return function (url, opts) {
            var o = {};
            if (opts !== undefined && opts !== null) {
                if (typeof opts !== 'object') {
                    throw typeError('http.' + method.toLowerCase() +
                                    '(url, opts): opts must be an object');
                }
                for (var k in opts) {
                    if (Object.prototype.hasOwnProperty.call(opts, k)) { o[k] = opts[k]; }
                }
            }
            o.method = method;
            o.url = url;
            return request(o);
        };
    }

    var http = {};
    hidden(http, 'request', request);
    hidden(http, 'get', shorthand('GET'));
    hidden(http, 'head', shorthand('HEAD'));
    hidden(http, 'post', shorthand('POST'));
    hidden(http, 'put', shorthand('PUT'));
    hidden(http, 'patch', shorthand('PATCH'));
    hidden(http, 'del', shorthand('DELETE'));
    hidden(http, 'delete', http.del);

    /* Limits for a host (or a URL's host): {rate: N, per: '10s', concurrency: N}. Plugins call
     * it when they load; the http.limits setting, when it names the host, wins. */
    hidden(http, 'limit', function limit(host, opts) {
        if (typeof host !== 'string' || host === '') {
            throw typeError('http.limit(host, opts): host must be a host name or URL');
        }
        opts = opts || {};
        var rate = opts.rate === undefined ? 0 : opts.rate;
        var per = 0;
        if (rate) {
            if (opts.per === undefined) {
                throw typeError('http.limit: give per with rate, e.g. {rate: 100, per: "10s"}');
            }
            per = native.duration(opts.per);
        }
        var conc = opts.concurrency === undefined ? -1 : opts.concurrency;
        if (typeof rate !== 'number' || typeof conc !== 'number') {
            throw typeError('http.limit: rate and concurrency must be numbers');
        }
        return native.httpLimit(host, rate, per, conc);
    });

    /* An API's base URL: the api.NAME setting (or NAME_API_BASE) if there is one, else the
     * fallback, without a trailing slash. */
    hidden(http, 'apiBase', function apiBase(name, fallback) {
        if (typeof name !== 'string' || name === '') {
            throw typeError('http.apiBase(name, fallback): name must be a string');
        }
        var base = native.apiBase(name);
        if (base === undefined) { base = fallback; }
        return typeof base === 'string' ? base.replace(/\/+$/, '') : base;
    });

    hidden(global, 'http', http);
})
