/*
 * The recipe runtime, evaluated once per engine before any recipe is loaded.
 *
 * Each run is a tree of fibers (Duktape threads sharing the one global
 * environment). A call that waits (sleep, http, sql, mail) asks C to start the
 * I/O for the current fiber and then yields; C resumes the fiber from the loop
 * with the result. Duktape cannot yield across a native call on the fiber's
 * stack, so the array methods whose callbacks may wait are redefined here in
 * ECMAScript, and parallel() is built from fibers rather than from callbacks.
 *
 * This function receives the native bindings and returns the entry points C
 * calls; nothing here is reachable by recipes except the globals it defines.
 */
(function (global, native) {
    'use strict';

    var Thread = Duktape.Thread;
    var YIELD = {};            /* what a suspended fiber yields; recipes never see it */
    var runs = {};             /* run id -> { id, fibers: {fiber id: fiber}, root } */
    var current = null;        /* the fiber executing now */
    var ready = [];            /* fibers to resume in this turn: children of one run */
    var nextFiberId = 1;

    /* The first resume passes the fiber itself to its thread's initial function. */
    function trampoline(f) {
        return f.fn(f.a, f.b);
    }

    function Fiber(run, parent, fn, a, b) {
        this.id = nextFiberId++;
        this.run = run;
        this.parent = parent;
        this.fn = fn;
        this.a = a;
        this.b = b;
        this.thread = new Thread(trampoline);
        this.started = false;
        this.waiting = false;     /* suspended in waitChild() */
        this.finished = [];       /* finished children not yet collected */
        this.children = 0;
        run.fibers[this.id] = this;
    }

    function finish(f, ok, value) {
        var run = f.run;
        delete run.fibers[f.id];
        var p = f.parent;
        if (p === null) {
            delete runs[run.id];
            native.done(run.id, ok, value);
            return;
        }
        p.children--;
        p.finished.push({ id: f.id, ok: ok, value: value });
        if (p.waiting) {
            p.waiting = false;
            ready.push(p);
        }
    }

    function step(f, value, isError) {
        var arg = value, r, ok = true;
        if (!f.started) {
            f.started = true;
            arg = f;
        }
        current = f;
        try {
            r = Thread.resume(f.thread, arg, !!isError);
        } catch (e) {
            ok = false;
            r = e;
        }
        current = null;
        if (ok && r === YIELD) {
            return;
        }
        finish(f, ok, r);
    }

    function drain() {
        for (var i = 0; i < ready.length; i++) {
            var f = ready[i];
            if (f.run.fibers[f.id] === f) {
                step(f, undefined, false);
            }
        }
        ready.length = 0;
    }

    /* Suspends the current fiber; C resumes it with a value or an error. */
    function suspend() {
        return Thread.yield(YIELD);
    }

    function currentFiber(what) {
        if (current === null) {
            throw new Error(what + ' can only be called while a recipe runs, not while it loads');
        }
        return current;
    }

    function spawn(fn, a, b) {
        var parent = currentFiber('parallel()');
        var f = new Fiber(parent.run, parent, fn, a, b);
        parent.children++;
        ready.push(f);
        return f.id;
    }

    function waitChild() {
        var self = currentFiber('parallel()');
        while (self.finished.length === 0) {
            self.waiting = true;
            suspend();
        }
        return self.finished.shift();
    }

    /* ---- Array methods whose callbacks may wait (ES5.1 15.4.4.16-22) ---- */

    function toObject(thisArg, name) {
        if (thisArg === null || thisArg === undefined) {
            throw new TypeError('Array.prototype.' + name + ' called on null or undefined');
        }
        return Object(thisArg);
    }

    function callable(fn, name) {
        if (typeof fn !== 'function') {
            throw new TypeError('Array.prototype.' + name + ': callback is not a function');
        }
    }

    var arrayMethods = {
        forEach: function (fn, thisArg) {
            var O = toObject(this, 'forEach'), len = O.length >>> 0;
            callable(fn, 'forEach');
            for (var k = 0; k < len; k++) {
                if (k in O) { fn.call(thisArg, O[k], k, O); }
            }
        },
        map: function (fn, thisArg) {
            var O = toObject(this, 'map'), len = O.length >>> 0, A = new Array(len);
            callable(fn, 'map');
            for (var k = 0; k < len; k++) {
                if (k in O) { A[k] = fn.call(thisArg, O[k], k, O); }
            }
            return A;
        },
        filter: function (fn, thisArg) {
            var O = toObject(this, 'filter'), len = O.length >>> 0, A = [];
            callable(fn, 'filter');
            for (var k = 0; k < len; k++) {
                if (k in O) {
                    var v = O[k];
                    if (fn.call(thisArg, v, k, O)) { A.push(v); }
                }
            }
            return A;
        },
        some: function (fn, thisArg) {
            var O = toObject(this, 'some'), len = O.length >>> 0;
            callable(fn, 'some');
            for (var k = 0; k < len; k++) {
                if (k in O && fn.call(thisArg, O[k], k, O)) { return true; }
            }
            return false;
        },
        every: function (fn, thisArg) {
            var O = toObject(this, 'every'), len = O.length >>> 0;
            callable(fn, 'every');
            for (var k = 0; k < len; k++) {
                if (k in O && !fn.call(thisArg, O[k], k, O)) { return false; }
            }
            return true;
        },
        reduce: function (fn) {
            var O = toObject(this, 'reduce'), len = O.length >>> 0, k = 0, acc;
            callable(fn, 'reduce');
            if (arguments.length >= 2) {
                acc = arguments[1];
            } else {
                while (k < len && !(k in O)) { k++; }
                if (k >= len) { throw new TypeError('reduce of empty array with no initial value'); }
                acc = O[k++];
            }
            for (; k < len; k++) {
                if (k in O) { acc = fn(acc, O[k], k, O); }
            }
            return acc;
        },
        reduceRight: function (fn) {
            var O = toObject(this, 'reduceRight'), k = (O.length >>> 0) - 1, acc;
            callable(fn, 'reduceRight');
            if (arguments.length >= 2) {
                acc = arguments[1];
            } else {
                while (k >= 0 && !(k in O)) { k--; }
                if (k < 0) { throw new TypeError('reduceRight of empty array with no initial value'); }
                acc = O[k--];
            }
            for (; k >= 0; k--) {
                if (k in O) { acc = fn(acc, O[k], k, O); }
            }
            return acc;
        }
    };
    Object.keys(arrayMethods).forEach(function (name) {
        Object.defineProperty(Array.prototype, name, {
            value: arrayMethods[name], writable: true, configurable: true, enumerable: false
        });
    });

    /* ---- Globals for recipes ---- */

    function hidden(obj, name, value) {
        Object.defineProperty(obj, name, {
            value: value, writable: true, configurable: true, enumerable: false
        });
    }

    function format(args) {
        var parts = [];
        for (var i = 0; i < args.length; i++) {
            var a = args[i];
            if (typeof a === 'string') {
                parts.push(a);
            } else if (a instanceof Error) {
                parts.push(a.stack || String(a));
            } else if (a === undefined || typeof a === 'function') {
                parts.push(String(a));
            } else {
                try { parts.push(JSON.stringify(a)); } catch (e) { parts.push(String(a)); }
            }
        }
        return parts.join(' ');
    }

    var log = {
        info: function () { native.log('info', format(arguments)); },
        warn: function () { native.log('warn', format(arguments)); },
        error: function () { native.log('error', format(arguments)); },
        debug: function () { native.log('debug', format(arguments)); }
    };
    hidden(global, 'log', log);
    hidden(global, 'console', {
        log: log.info, info: log.info, warn: log.warn, error: log.error, debug: log.debug
    });

    hidden(global, 'sleep', function sleep(ms) {
        if (typeof ms !== 'number' || !(ms >= 0)) {
            throw new TypeError('sleep(ms): ms must be a non-negative number');
        }
        native.sleep(currentFiber('sleep()').id, ms);
        suspend();
    });

    hidden(global, 'secret', function secret(name) {
        if (typeof name !== 'string' || name === '') {
            throw new TypeError('secret(name): name must be a non-empty string');
        }
        return native.secret(name);
    });

    /* ctx: one small object per run; the methods live on the shared prototype. */
    function Ctx(runId, recipe, trigger, dryRun, attempt) {
        this.runId = runId;
        this.recipe = recipe;
        this.trigger = trigger;
        this.dryRun = dryRun;
        this.attempt = attempt;
    }
    Ctx.prototype.now = function () { return new Date().toISOString(); };
    Ctx.prototype.daysAgo = function (n) {
        if (typeof n !== 'number') { throw new TypeError('ctx.daysAgo(n): n must be a number'); }
        return new Date(Date.now() - n * 86400000).toISOString();
    };
    Ctx.prototype.file = function (rel) {
        if (typeof rel !== 'string') { throw new TypeError('ctx.file(path): path must be a string'); }
        return native.readFile(recipes[this.recipe].dir, rel);
    };

    /* ---- CommonJS modules ---- */

    var modules = {};          /* resolved path -> module */
    var recipes = {};          /* recipe name -> { exports, dir } */

    function loadModule(path) {
        var cached = modules[path];
        if (cached) { return cached; }
        /* Compiled before it is cached: a file with a syntax error must fail every load
         * with that error, not leave an empty module behind. */
        var fn = native.compile(path);
        var m = { exports: {}, id: path, loaded: false };
        modules[path] = m;
        var dir = path.replace(/\/[^\/]*$/, '');
        try {
            fn.call(m.exports, m.exports, makeRequire(dir), m, path, dir);
        } catch (e) {
            delete modules[path];
            throw e;
        }
        m.loaded = true;
        return m;
    }

    /* Native plugins (plugins/NAME.so, see src/plugin/): each function is wrapped so that
     * a call the plugin suspended makes the calling fiber wait for its result. */
    var SUSPENDED = {};
    var nativePlugins = {};    /* plugin name -> its module's exports, once loaded here */

    function nativeFunction(id) {
        return function () {
            var r = native.pluginCall(id, current === null ? 0 : current.id, arguments,
                                      SUSPENDED);
            return r === SUSPENDED ? suspend() : r;
        };
    }

    /* The exports of native plugin NAME, or undefined when there is no NAME.so. Its globals
     * are defined first. A refused plugin throws its one-line PluginError. */
    function loadNative(name) {
        if (Object.prototype.hasOwnProperty.call(nativePlugins, name)) {
            return nativePlugins[name];
        }
        var d = native.pluginLoad(name);
        if (d === undefined) { return undefined; }
        var exports = {};
        d.objects.forEach(function (o) {
            var raw = {}, target = raw;
            o.fns.forEach(function (f) { raw[f[0]] = nativeFunction(f[1]); });
            if (o.js) {
                target = {};
                o.js(target, raw);
            }
            if (o.global === undefined) {
                exports = target;
            } else if (!(o.global in global)) {
                hidden(global, o.global, target);
            } else if (global[o.global] !== target) {
                throw new Error('plugin ' + name + ': the global ' + o.global +
                                ' already exists');
            }
        });
        /* Its poll sources, callable as poll functions: fn(options, state) -> {items, cursor}
         * (the cursor a native source returns is a string; none keeps the previous one). */
        d.polls.forEach(function (p) {
            if (typeof exports[p] === 'function') { return; }
            var source = name + '.' + p;
            exports[p] = function (options, state) {
                var c = state && state.cursor;
                c = c === null || c === undefined ? undefined
                    : typeof c === 'string' ? c : JSON.stringify(c);
                var r = native.pluginPoll(source, current === null ? 0 : current.id,
                                          JSON.stringify(options || {}), c, SUSPENDED);
                if (r === SUSPENDED) { r = suspend(); }
                return { items: r.items, cursor: r.cursor !== undefined ? r.cursor
                                                 : state && state.cursor !== undefined
                                                 ? state.cursor : null };
            };
        });
        nativePlugins[name] = exports;
        return exports;
    }

    function makeRequire(dir) {
        return function require(name) {
            if (typeof name !== 'string' || name === '') {
                throw new TypeError('require(name): name must be a non-empty string');
            }
            if (Object.prototype.hasOwnProperty.call(nativePlugins, name)) {
                return nativePlugins[name];
            }
            var path;
            try {
                path = native.resolve(dir, name);
            } catch (e) {
                /* No NAME.js: a bare name may still be a native plugin, NAME.so. */
                var m = name.charAt(0) === '.' ? undefined : loadNative(name);
                if (m !== undefined) { return m; }
                if (e instanceof Error && /^require\('[^']*'\): no plugin /.test(e.message)) {
                    e.message = e.message.replace(/^(require\('[^']*'\): no plugin \S+)\.js/,
                                                  '$1.js or ' + name + '.so');
                }
                throw e;
            }
            return loadModule(path).exports;
        };
    }

    /* For the other bundled files (http, sql, mail, tools): how to wait and start fibers. */
    native.suspend = suspend;
    native.currentFiber = currentFiber;
    native.spawn = spawn;
    native.waitChild = waitChild;
    native.hidden = hidden;
    native.recipeExports = function (name) { return recipes[name] && recipes[name].exports; };

    delete global.Duktape;

    return {
        loadRecipe: function (name, path, dir) {
            var m = loadModule(path);
            recipes[name] = { exports: m.exports, dir: dir };
            return m.exports;
        },
        start: function (runId, recipe, input, trigger, dryRun, attempt) {
            var r = recipes[recipe];
            var run = { id: runId, fibers: {} };
            runs[runId] = run;
            var event = input === '' ? {} : JSON.parse(input);
            var ctx = new Ctx(runId, recipe, trigger, dryRun, attempt);
            /* The internal runs of poll and newRow triggers (src/trigger/poller.c) call a poll
             * function (lib/40_poll.js) instead of the recipe's run. */
            var body = trigger === 'poll-check'
                ? function (ev, c) {
                    if (!native.pollCheck) { native.loadRuntime('40_poll'); }
                    return native.pollCheck(ev, c, makeRequire(r.dir));
                }
                : function (ev, c) { return r.exports.run(ev, c); };
            var root = new Fiber(run, null, body, event, ctx);
            step(root, undefined, false);
            drain();
        },
        resume: function (runId, fiberId, value, isError) {
            var run = runs[runId];
            var f = run && run.fibers[fiberId];
            if (!f) { return; }
            step(f, value, isError);
            drain();
        },
        kill: function (runId) {
            delete runs[runId];
            ready.length = 0;
            current = null;
        },
        suspended: function () { return Object.keys(runs).length; }
    };
})
