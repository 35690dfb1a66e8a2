-- wrk script for bench/webhook.sh: POST a small JSON event, as a ticketing system would.
wrk.method = "POST"
wrk.body = '{"event":"ticket.solved","ticket":{"id":4242,"status":"solved","requester":"a@example.com"}}'
wrk.headers["Content-Type"] = "application/json"
