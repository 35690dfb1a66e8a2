/*
 * Emails a one-question NPS survey to customers whose support ticket was solved a week ago.
 *
 *   autorun run nps-survey                 (works out of the box: sample database, file outbox)
 *   autorun run nps-survey --dry-run       (lists who would get it; sends and changes nothing)
 *   autorun run nps-survey --input '{"surveyUrl":"https://survey.example.org/nps"}'
 *
 * Who: customers whose last ticket was solved 7 to 14 days ago and who were not surveyed in
 * the last 90 days. Each gets nps.txt and nps.html (beside this file) with eleven links, one
 * per score 0-10; a link carries the customer's id and the score. The survey's base URL is
 * input.surveyUrl, else the survey.url setting (AUTORUN_SURVEY_URL).
 *
 * Running it twice sends nothing new: a customer is marked (nps_sent_at) after the message
 * went out, and each message has an idempotency key per customer and solved ticket, so even a
 * crash between sending and marking never sends a customer the same survey twice.
 */
exports.description = 'Email an NPS survey to customers whose ticket was solved a week ago';
exports.triggers = [{ cron: '0 9 * * MON-FRI', tz: 'Europe/Berlin' }];
exports.timeout = '10m';

var MIN_DAYS = 7;       /* solved at least a week ago... */
var MAX_DAYS = 14;      /* ...but not so long ago that the ticket is forgotten */
var QUIET_DAYS = 90;    /* at most one survey per customer in this many days */

/* "Name <addr>" with the name quoted, so commas and quotes in names stay names. */
function mailbox(name, email) {
    if (!name) {
        return email;
    }
    return '"' + String(name).replace(/[\\"]/g, '\\$&') + '" <' + email + '>';
}

function scoreLinks(base, id) {
    var sep = base.indexOf('?') < 0 ? '?' : '&';
    var links = [];
    for (var score = 0; score <= 10; score++) {
        links.push(base + sep + 'customer=' + encodeURIComponent(id) + '&score=' + score);
    }
    return links;
}

exports.run = function (event, ctx) {
    var base = (event && event.surveyUrl) || mail.defaults.surveyUrl;
    if (typeof base !== 'string' || !/^https?:\/\/[^\s]+$/.test(base)) {
        throw new TypeError('the survey URL must be an http(s) URL, got: ' + base);
    }
    var people = sql.query('customers',
        'SELECT id, name, email, solved_at FROM customers ' +
        'WHERE solved_at <= ? AND solved_at > ? ' +
        'AND (nps_sent_at IS NULL OR nps_sent_at < ?) ORDER BY id',
        [ctx.daysAgo(MIN_DAYS), ctx.daysAgo(MAX_DAYS), ctx.daysAgo(QUIET_DAYS)]);
    var text = ctx.file('nps.txt');
    var html = ctx.file('nps.html');

    var statuses = parallel(people, function (c) {
        var data = { id: c.id, name: c.name, links: scoreLinks(base, c.id) };
        var r = mail.send({
            to: mailbox(c.name, c.email),
            subject: 'How did we do? One quick question',
            text: template(text, data),
            html: template(html, data, { html: true }),
            headers: { 'X-Autorun-Survey': 'nps' },
            /* One survey per customer and solved ticket (its day). */
            idempotencyKey: 'nps:' + c.id + ':' + String(c.solved_at).slice(0, 10)
        });
        /* Also after a duplicate: the message went out before, only the mark was missing. */
        sql.exec('customers', 'UPDATE customers SET nps_sent_at = ? WHERE id = ?',
                 [ctx.now(), c.id]);
        return r.status;
    }, { concurrency: 8 });

    var count = function (s) {
        return statuses.filter(function (x) { return x === s; }).length;
    };
    var result = { sent: count('sent'), skipped: count('duplicate') };
    if (ctx.dryRun) {
        result.wouldSend = count('dry-run');
        result.recipients = people.map(function (c) { return c.email; });
    }
    log.info('NPS survey: ' + result.sent + ' sent, ' + result.skipped + ' already sent before' +
             (ctx.dryRun ? ', ' + result.wouldSend + ' would be sent (dry run)' : ''));
    return result;
};
