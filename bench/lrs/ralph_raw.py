"""Ralph's own ceiling: POST pre-built batches of statements straight to Ralph
(no spool, no validation) and report statements/s, to compare with bioxen.
With CONCURRENCY > 1, that many clients POST their share of the batches at the
same time (to see whether Ralph serves POSTs in parallel).
With STATEMENTS=FILE (one statement per line, e.g. bioxen's spool), it POSTs
those statements instead of its own (so both clients send the same bytes).
usage: python ralph_raw.py ENDPOINT USER PASSWORD N BATCH [CONCURRENCY]"""
import base64
import json
import os
import sys
import threading
import time
import urllib.request
import uuid

endpoint, user, password, n, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
concurrency = int(sys.argv[6]) if len(sys.argv) > 6 else 1
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
statements = [{
    "id": str(uuid.uuid4()),
    "actor": {"objectType": "Agent", "account": {"homePage": "https://bioxen.dev/hosts/bench", "name": "bench"}},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
    "object": {"objectType": "Activity", "id": f"https://example.org/bench/{i}"},
    "result": {"success": True, "duration": "PT0.01S"},
    "context": {"registration": str(uuid.uuid4())},
    "timestamp": "2026-11-21T12:00:00.000Z",
} for i in range(n)]
what = "its own statements"
if os.environ.get("STATEMENTS"):
    with open(os.environ["STATEMENTS"]) as f:
        lines = [line.strip() for line in f if line.strip()][:n]
    n, what = len(lines), "bioxen's statements"
    bodies = [("[" + ",".join(lines[i:i + batch]) + "]").encode() for i in range(0, n, batch)]
else:
    bodies = [json.dumps(statements[i:i + batch]).encode() for i in range(0, n, batch)]


def post(share):
    for body in share:
        req = urllib.request.Request(f"{endpoint}/statements", data=body, method="POST", headers={
            "Authorization": auth, "X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=600).read()


t0 = time.monotonic()
threads = [threading.Thread(target=post, args=(bodies[k::concurrency],)) for k in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
dt = time.monotonic() - t0
print(f"Ralph's ceiling (python client, {concurrency} connection(s), {what}), batch {batch}, {n} statements: {dt:.3f} s: {n / dt:.0f} statements/s")
