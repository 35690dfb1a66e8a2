/*
 * Emails a short research question to a segment of customers.
 *
 *   autorun run research-email --input '{"segment":"plan","params":["pro"],
 *       "question":"What almost stopped you from upgrading?"}'
 *   autorun run research-email --dry-run --input '{"segment":"detractors","question":"..."}'
 *
 * The segment is chosen from a fixed list (SEGMENTS below), by name or by its exact condition
 * text ("plan = ?"); params fill its ? placeholders and are always bound, never spliced into
 * the SQL, and no text from the input ever becomes SQL. Optional input: subject, replyTo,
 * campaign (the name that makes the idempotency keys; by default derived from the segment,
 * params and question, so running the same request again sends nothing new), limit (at most
 * this many recipients, default 500: a bigger segment is an error, not a mass mailing).
 */
exports.description = 'Email a short research question to a segment of customers';
exports.timeout = '30m';

var SEGMENTS = {
    'all': { where: '1 = 1', params: [], about: 'every customer' },
    'plan': { where: 'plan = ?', params: ['plan'], about: 'customers on a plan' },
    'country': { where: 'country = ?', params: ['country (ISO code)'],
                 about: 'customers in a country' },
    'plan-country': { where: 'plan = ? AND country = ?', params: ['plan', 'country'],
                      about: 'customers on a plan in a country' },
    'solved-since': { where: 'solved_at >= ?', params: ['days'],
                      about: 'customers whose ticket was solved in the last N days' },
    'promoters': { where: 'nps_score >= 9', params: [], about: 'NPS answer 9 or 10' },
    'passives': { where: 'nps_score BETWEEN 7 AND 8', params: [], about: 'NPS answer 7 or 8' },
    'detractors': { where: 'nps_score <= 6', params: [], about: 'NPS answer 0 to 6' }
};
var DEFAULT_LIMIT = 500;
var PLANS = ['free', 'starter', 'pro', 'enterprise'];

var TEXT = 'Hello {{name}},\n\n' +
           'we are trying to make our product better and would value your view on one ' +
           'question:\n\n' +
           '    {{question}}\n\n' +
           'Just reply to this message; a sentence or two is plenty.\n\n' +
           'Thank you!\nThe product team\n';

function segmentOf(name) {
    if (typeof name !== 'string') {
        return null;
    }
    if (Object.prototype.hasOwnProperty.call(SEGMENTS, name)) {
        return { name: name, def: SEGMENTS[name] };
    }
    /* The condition text itself names a segment too, but only one from the list. */
    for (var key in SEGMENTS) {
        if (SEGMENTS[key].where === name) {
            return { name: key, def: SEGMENTS[key] };
        }
    }
    return null;
}

function usage() {
    return Object.keys(SEGMENTS).map(function (k) {
        var s = SEGMENTS[k];
        return k + ' (' + s.where + (s.params.length ? '; params: ' + s.params.join(', ') : '') +
               ')';
    }).join('; ');
}

/* A short, stable name for a request: the same input gives the same idempotency keys. */
function digest(text) {
    var h1 = 5381, h2 = 52711;
    for (var i = 0; i < text.length; i++) {
        var c = text.charCodeAt(i);
        h1 = ((h1 << 5) + h1 + c) | 0;
        h2 = ((h2 << 5) + h2 + (c ^ 0x5f)) | 0;
    }
    return (h1 >>> 0).toString(36) + (h2 >>> 0).toString(36);
}

function mailbox(name, email) {
    if (!name) {
        return email;
    }
    return '"' + String(name).replace(/[\\"]/g, '\\$&') + '" <' + email + '>';
}

exports.run = function (input, ctx) {
    input = input || {};
    var seg = segmentOf(input.segment);
    if (seg === null) {
        throw new TypeError('input.segment must be one of: ' + usage());
    }
    var params = input.params === undefined ? [] : input.params;
    if (!Array.isArray(params) || params.length !== seg.def.params.length) {
        throw new TypeError('segment ' + seg.name + ' takes ' + seg.def.params.length +
                            ' param(s)' + (seg.def.params.length ? ': ' +
                            seg.def.params.join(', ') : '') + ', e.g. "params": [...]');
    }
    params = params.map(function (p, i) {
        var kind = seg.def.params[i];
        if (kind === 'days') {
            if (typeof p !== 'number' || !(p > 0)) {
                throw new TypeError('segment ' + seg.name + ': days must be a positive number');
            }
            return ctx.daysAgo(p);
        }
        if (typeof p !== 'string' || p === '') {
            throw new TypeError('segment ' + seg.name + ': ' + kind + ' must be a string');
        }
        if (kind === 'plan' && PLANS.indexOf(p) < 0) {
            throw new TypeError('unknown plan \'' + p + '\' (plans: ' + PLANS.join(', ') + ')');
        }
        return p;
    });
    var question = input.question;
    if (typeof question !== 'string' || question.trim() === '' || question.length > 1000) {
        throw new TypeError('input.question must be the question to ask (1 to 1000 characters)');
    }
    var limit = input.limit === undefined ? DEFAULT_LIMIT : input.limit;
    if (typeof limit !== 'number' || !(limit >= 1)) {
        throw new TypeError('input.limit must be a positive number');
    }
    var campaign = input.campaign ||
        digest(seg.name + '\u0000' + JSON.stringify(input.params || []) + '\u0000' + question);
    if (typeof campaign !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(campaign)) {
        throw new TypeError('input.campaign must be 1 to 64 letters, digits, ".", "_" or "-"');
    }

    /* The only SQL here is this fixed text plus a condition taken from SEGMENTS. */
    var people = sql.query('customers',
        'SELECT id, name, email FROM customers WHERE ' + seg.def.where + ' ORDER BY id', params);
    if (people.length > limit) {
        throw new RangeError('segment ' + seg.name + ' has ' + people.length +
                             ' customers, more than the limit of ' + limit +
                             ' (raise input.limit to send anyway)');
    }

    var statuses = parallel(people, function (c) {
        return mail.send({
            to: mailbox(c.name, c.email),
            replyTo: input.replyTo,
            subject: input.subject || 'A quick question',
            text: template(TEXT, { name: c.name, question: question.trim() }),
            headers: { 'X-Autorun-Campaign': campaign },
            idempotencyKey: 'research:' + campaign + ':' + c.id
        }).status;
    }, { concurrency: 8 });

    var count = function (s) {
        return statuses.filter(function (x) { return x === s; }).length;
    };
    var result = {
        segment: seg.name,
        campaign: campaign,
        recipients: people.length,
        sent: count('sent'),
        skipped: count('duplicate')
    };
    if (ctx.dryRun) {
        result.wouldSend = count('dry-run');
    }
    return result;
};
