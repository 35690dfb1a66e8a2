/*
 * Tags urgent new Zendesk tickets and posts them to Slack.
 *
 *   autorun serve                    (polls Zendesk every minute; one run per new ticket)
 *   autorun run new-ticket-triage --input '{"id": 42, "subject": "Site down", "priority": "high"}'
 *   autorun run new-ticket-triage --dry-run --input-file ticket.json   (changes and posts nothing)
 *
 * The first poll only records the tickets that exist (nothing fires for them); from then on
 * each new ticket fires exactly one run, also across restarts. A ticket is urgent when its
 * priority is urgent or high, or when its subject or description mentions an outage, a site
 * that is down, or a refund. An urgent ticket gets the tag 'urgent' (added, so tags others set
 * stay) and a message in the Slack channel of the incoming webhook SLACK_WEBHOOK_URL.
 *
 * Needs: ZENDESK_API_BASE (or the secret ZENDESK_SUBDOMAIN), the secrets ZENDESK_EMAIL,
 * ZENDESK_TOKEN and SLACK_WEBHOOK_URL.
 */
exports.description = 'Tag urgent new Zendesk tickets and post them to Slack';
exports.triggers = [{ poll: 'zendesk.newTickets', every: '1m' }];
exports.secrets = ['ZENDESK_EMAIL', 'ZENDESK_TOKEN', 'SLACK_WEBHOOK_URL'];
exports.retries = { max: 3, backoff: '30s' };

var zendesk = require('zendesk');
var slack = require('slack');

var URGENT_PRIORITIES = { urgent: true, high: true };
var URGENT_WORDS = /\b(down|outage|refunds?|data loss|security breach)\b/i;

/* Why the ticket is urgent, or null when it is not. */
function urgency(t) {
    if (t.priority && URGENT_PRIORITIES[String(t.priority).toLowerCase()]) {
        return 'priority ' + t.priority;
    }
    var text = (t.subject || '') + '\n' + (t.description || '');
    var m = URGENT_WORDS.exec(text);
    return m ? 'mentions "' + m[1].toLowerCase() + '"' : null;
}

exports.run = function (ticket, ctx) {
    if (!ticket || ticket.id === undefined) {
        throw new TypeError('the event must be a Zendesk ticket with an id');
    }
    var why = urgency(ticket);
    if (why === null) {
        log.info('ticket ' + ticket.id + ' is not urgent');
        return { id: ticket.id, urgent: false };
    }
    /* In a dry run both calls are recorded as steps that say what would happen, and change
     * nothing. */
    zendesk.updateTicket(ticket.id, { tags: ['urgent'] });
    var link = ticket.url ? String(ticket.url).replace(/\/api\/v2\/tickets\/(\d+)\.json$/,
                                                        '/agent/tickets/$1') : '';
    slack.post({
        text: ':rotating_light: Urgent ticket #' + ticket.id + ' (' + why + '): ' +
              (ticket.subject || '(no subject)') + (link ? ' ' + link : '')
    });
    log.info('ticket ' + ticket.id + ' is urgent (' + why + ')' +
             (ctx.dryRun ? ': dry run, not tagged or posted' : ': tagged and posted to Slack'));
    return { id: ticket.id, urgent: true, reason: why, dryRun: !!ctx.dryRun };
};
