#!/usr/bin/python3
"""Baseline for bench/bulk_boards.sh: the board-add-member job as a plain sequential Python
script with urllib (what one would write without autorun): list the organization's open boards,
look the person up, add them to every board they are not on yet, one request after another.

Usage: bulk_boards_baseline.py API_BASE ORG EMAIL   (TRELLO_KEY and TRELLO_TOKEN from the
environment); prints {"seconds", "requests", "added", "already", "failed"} as JSON.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def call(method, url, query):
    full = url + "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(full, method=method, data=b"" if method == "PUT" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def main():
    base, org, email = sys.argv[1], sys.argv[2], sys.argv[3]
    auth = {"key": os.environ["TRELLO_KEY"], "token": os.environ["TRELLO_TOKEN"]}
    t0 = time.monotonic()
    boards = call("GET", "%s/organizations/%s/boards" % (base, org),
                  dict(auth, filter="open", fields="name,memberships"))
    found = call("GET", base + "/search/members", dict(auth, query=email, limit=1))
    member = found[0] if found else None
    requests = 2
    added, already, failed = [], [], []
    for b in boards:
        if member and any(m["idMember"] == member["id"] for m in b.get("memberships", [])):
            already.append(b["name"])
            continue
        try:
            if member:
                call("PUT", "%s/boards/%s/members/%s" % (base, b["id"], member["id"]),
                     dict(auth, type="normal"))
            else:
                call("PUT", "%s/boards/%s/members" % (base, b["id"]),
                     dict(auth, email=email, type="normal"))
            added.append(b["name"])
        except urllib.error.URLError as e:
            failed.append({"board": b["name"], "error": str(e)})
        requests += 1
    print(json.dumps({"seconds": time.monotonic() - t0, "requests": requests,
                      "added": len(added), "already": len(already), "failed": len(failed)}))


if __name__ == "__main__":
    main()
