/*
 * Welcomes each new customer by email.
 *
 *   autorun serve                   (checks the customers table every 30 seconds)
 *   autorun run new-customer-welcome --input '{"id": 51, "name": "Ada", "email": "ada@example.com"}'
 *
 * The trigger watches the 'customers' database (the sample SQLite database unless db.customers
 * or AUTORUN_DB_CUSTOMERS names another, SQLite or PostgreSQL) for rows with an id above the
 * highest one it has seen: the first check only notes where the table ends, then each new row
 * fires exactly one run, also across restarts. The message is welcome.txt and welcome.html
 * beside this file; its idempotency key is 'welcome:' + id, so no customer is welcomed twice.
 */
exports.description = 'Welcome each new customer by email';
exports.triggers = [{ newRow: { db: 'customers', table: 'customers', key: 'id' }, every: '30s' }];
exports.retries = { max: 3, backoff: '1m' };

/* "Name <addr>" with the name quoted, so commas and quotes in names stay names. */
function mailbox(name, email) {
    if (!name) {
        return email;
    }
    return '"' + String(name).replace(/[\\"]/g, '\\$&') + '" <' + email + '>';
}

exports.run = function (customer, ctx) {
    if (!customer || customer.id === undefined || typeof customer.email !== 'string' ||
        customer.email.indexOf('@') < 1) {
        throw new TypeError('the event must be a customer row with an id and an email');
    }
    var data = { id: customer.id, name: customer.name || 'there' };
    var r = mail.send({
        to: mailbox(customer.name, customer.email),
        subject: 'Welcome aboard, ' + data.name + '!',
        text: template(ctx.file('welcome.txt'), data),
        html: template(ctx.file('welcome.html'), data, { html: true }),
        idempotencyKey: 'welcome:' + customer.id
    });
    log.info('customer ' + customer.id + ': welcome ' + r.status);
    return { id: customer.id, status: r.status };
};
