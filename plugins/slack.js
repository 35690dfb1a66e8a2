/*
 * Slack incoming webhooks for recipes: var slack = require('slack');
 *
 *   slack.post('Deploy done')                              text
 *   slack.post({ text: 'fallback', blocks: [...] })        Block Kit
 *   slack.post('x', { url: secret('OTHER_WEBHOOK') })      another channel's webhook
 *
 * The webhook URL is the secret SLACK_WEBHOOK_URL unless opts.url names one (it is a
 * credential: as a secret it is redacted in history and logs). Returns {ok: true}, or
 * {dryRun: true, ...} in a dry run, when nothing is posted.
 */
function post(msg, opts) {
    opts = opts || {};
    var body;
    if (typeof msg === 'string') {
        body = { text: msg };
    } else if (msg !== null && typeof msg === 'object' &&
               (typeof msg.text === 'string' || Array.isArray(msg.blocks))) {
        body = msg;
    } else {
        throw new TypeError('slack.post(msg): msg must be a string or {text, blocks}');
    }
    var url = opts.url || secret('SLACK_WEBHOOK_URL');
    var r = http.post(url, { json: body, timeout: opts.timeout });
    if (r && r.dryRun) { return r; }
    return { ok: true };
}

exports.post = post;
