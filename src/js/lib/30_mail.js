/*
 * mail.send(msg): the friendly side of src/js/js_mail.c. It checks the message's shape,
 * applies the configured sender, flattens headers and addresses into what C reads, and waits
 * for the delivery. Rendering, idempotency and the transports are in C.
 */
(function (global, native) {
    'use strict';

    var FIELDS = ['to', 'cc', 'bcc', 'from', 'replyTo', 'subject', 'text', 'html', 'headers',
                  'idempotencyKey'];
    var KEY_MAX = 512;

    function hidden(obj, name, value) {
        Object.defineProperty(obj, name, {
            value: value, writable: true, configurable: true, enumerable: false
        });
    }

    function absent(v) {
        return v === undefined || v === null;
    }

    /* A string holds one address or a comma-separated list; an array holds several. */
    function addresses(v, field) {
        if (absent(v) || v === '') {
            return [];
        }
        if (typeof v === 'string') {
            return [v];
        }
        if (Array.isArray(v)) {
            var out = [];
            for (var i = 0; i < v.length; i++) {
                if (typeof v[i] !== 'string') {
                    throw new TypeError('mail.send: ' + field + '[' + i + '] must be a string');
                }
                if (v[i] !== '') {
                    out.push(v[i]);
                }
            }
            return out;
        }
        throw new TypeError('mail.send: ' + field + ' must be an address or an array of them');
    }

    function text(v, field) {
        if (absent(v)) {
            return undefined;
        }
        if (typeof v !== 'string') {
            throw new TypeError('mail.send: ' + field + ' must be a string');
        }
        return v;
    }

    function send(msg) {
        if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
            throw new TypeError('mail.send(msg): msg must be an object');
        }
        for (var k in msg) {
            if (Object.prototype.hasOwnProperty.call(msg, k) && FIELDS.indexOf(k) < 0) {
                throw new TypeError('mail.send: unknown field \'' + k + '\' (known: ' +
                                    FIELDS.join(', ') + ')');
            }
        }
        var m = {
            from: text(msg.from, 'from') || native.mailDefaults().from,
            to: addresses(msg.to, 'to'),
            cc: addresses(msg.cc, 'cc'),
            bcc: addresses(msg.bcc, 'bcc'),
            replyTo: addresses(msg.replyTo, 'replyTo'),
            subject: text(msg.subject, 'subject'),
            text: text(msg.text, 'text'),
            html: text(msg.html, 'html'),
            headerNames: [],
            headerValues: [],
            key: undefined
        };
        if (!absent(msg.headers)) {
            if (typeof msg.headers !== 'object' || Array.isArray(msg.headers)) {
                throw new TypeError('mail.send: headers must be an object of name: value');
            }
            for (var h in msg.headers) {
                if (Object.prototype.hasOwnProperty.call(msg.headers, h)) {
                    var hv = msg.headers[h];
                    if (typeof hv === 'number') {
                        hv = String(hv);
                    }
                    if (typeof hv !== 'string') {
                        throw new TypeError('mail.send: headers.' + h + ' must be a string');
                    }
                    m.headerNames.push(h);
                    m.headerValues.push(hv);
                }
            }
        }
        var key = msg.idempotencyKey;
        if (!absent(key)) {
            if (typeof key === 'number' && isFinite(key)) {
                key = String(key);
            }
            if (typeof key !== 'string' || key === '' || key.length > KEY_MAX) {
                throw new TypeError('mail.send: idempotencyKey must be a non-empty string of ' +
                                    'at most ' + KEY_MAX + ' characters');
            }
            m.key = key;
        }
        var f = native.currentFiber('mail.send()');
        var r = native.mailSend(f.id, m);
        return r !== undefined ? r : native.suspend();
    }

    var mail = {};
    hidden(mail, 'send', send);
    /* The settings recipes may read: from (mail.from) and surveyUrl (survey.url). */
    Object.defineProperty(mail, 'defaults', {
        get: function () { return native.mailDefaults(); },
        enumerable: false, configurable: true
    });
    hidden(global, 'mail', mail);
})
