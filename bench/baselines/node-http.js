// Baseline for bench/webhook.sh: plain Node.js http, reads the JSON body and answers
// 202 {"runId": N}, recording nothing. Usage: node node-http.js PORT
'use strict';
const http = require('http');
const port = Number(process.argv[2] || 18081);
let next = 1;
const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        let status = 202;
        let body;
        try {
            JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
            body = JSON.stringify({ runId: next++ });
        } catch (e) {
            status = 400;
            body = JSON.stringify({ error: 'malformed JSON' });
        }
        res.writeHead(status, { 'Content-Type': 'application/json',
                                'Content-Length': Buffer.byteLength(body) });
        res.end(body);
    });
});
server.listen(port, '127.0.0.1');
// Bounded in time even if nobody stops it.
setTimeout(() => process.exit(0), Number(process.env.BENCH_MAX_SECONDS || 600) * 1000).unref();
