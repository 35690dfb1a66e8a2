"""Baseline for the cold-start benchmark: the same trivial job as a plain Python
script - compute a result, record the run in a SQLite file (WAL), print JSON."""
import json
import os
import sqlite3
import sys
import time

db = sqlite3.connect(os.path.join(sys.argv[1], "history.db"))
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, recipe TEXT, status TEXT,"
           " started_at INTEGER, result TEXT)")
result = json.dumps({"ok": True})
with db:
    db.execute("INSERT INTO runs (recipe, status, started_at, result) VALUES (?,?,?,?)",
               ("trivial", "succeeded", int(time.time() * 1000), result))
print(result)
