"""A strict test LRS for the edge cases Ralph does not enforce.

Usage: python strict_lrs.py PORT USER PASSWORD [MAX_BODY_BYTES]

Serves /xAPI/statements on 127.0.0.1 (standard library only) and follows xAPI
1.0.3 where Ralph is lenient: the X-Experience-API-Version header is required
(400 without it), malformed statements get 400 (never 422), a statement id
already stored with different content gets 409, voiding is applied (voided
statements disappear from queries and are found with voidedStatementId; a
voiding statement cannot be voided), bodies above MAX_BODY_BYTES get 413.

Test control (no auth): POST /_control with JSON
  {"fail": [503, 429, ...]}   answer the next POSTs with these statuses
  {"retry_after": 0.1}        Retry-After header sent with 429/503
  {"reject_ids": [...]}       answer 400 to any batch holding one of these ids
  {"slow": [K, SECONDS]}      store a batch of more than K statements, then wait SECONDS
                              before answering (a client timing out sees no answer)
GET /_stats: {"posts": n, "statements": n, "largest_batch": n, "too_large": n (413s), "ids": [...]}
"""
import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

PORT, USER, PASSWORD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
MAX_BODY = int(sys.argv[4]) if len(sys.argv) > 4 else 10 << 20
VOIDED = "http://adlnet.gov/expapi/verbs/voided"

lock = threading.Lock()
store = {}  # id -> statement as sent (plus stored)
order = []  # ids in storage order
voided = set()
control = {"fail": [], "retry_after": None, "reject_ids": set(), "slow": None}
stats = {"posts": 0, "largest_batch": 0, "too_large": 0}


def comparable(s):
    return {k: v for k, v in s.items() if k not in ("stored", "authority", "version")}


def malformed(s):
    if not isinstance(s, dict):
        return "a statement must be an object"
    for field in ("id", "actor", "verb", "object"):
        if field not in s:
            return f"missing {field}"
    if not isinstance(s["verb"], dict) or "id" not in s["verb"]:
        return "verb.id is required"
    if not isinstance(s["object"], dict) or "id" not in s["object"]:
        return "object.id is required"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def checked(self):
        """Version header and basic auth; False when a reply was sent."""
        version = self.headers.get("X-Experience-API-Version")
        if not version or not version.startswith("1.0."):
            self.reply(400, {"error": "X-Experience-API-Version header missing or not 1.0.x"})
            return False
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.reply(401, {"error": "bad credentials"})
            return False
        return True

    def do_POST(self):
        url = urlparse(self.path)
        if url.path == "/_control":
            c = json.loads(self.body() or b"{}")
            with lock:
                if "fail" in c:
                    control["fail"] = list(c["fail"])
                if "retry_after" in c:
                    control["retry_after"] = c["retry_after"]
                if "reject_ids" in c:
                    control["reject_ids"] = set(c["reject_ids"])
                if "slow" in c:
                    control["slow"] = c["slow"]
            return self.reply(200, {"ok": True})
        if url.path.rstrip("/") != "/xAPI/statements":
            return self.reply(404, {"error": "not found"})
        raw = self.body()
        if not self.checked():
            return
        with lock:
            stats["posts"] += 1
            if control["fail"]:
                status = control["fail"].pop(0)
                headers = []
                if control["retry_after"] is not None:
                    headers.append(("Retry-After", str(control["retry_after"])))
                return self.reply(status, {"error": f"injected {status}"}, headers)
        if len(raw) > MAX_BODY:
            with lock:
                stats["too_large"] += 1
            return self.reply(413, {"error": f"body of {len(raw)} bytes is above {MAX_BODY}"})
        try:
            batch = json.loads(raw)
        except ValueError as e:
            return self.reply(400, {"error": f"invalid JSON: {e}"})
        if isinstance(batch, dict):
            batch = [batch]
        with lock:
            stats["largest_batch"] = max(stats["largest_batch"], len(batch))
            seen = set()
            for s in batch:
                problem = malformed(s)
                if problem:
                    return self.reply(400, {"error": problem})
                if s["id"] in seen:
                    return self.reply(400, {"error": f"duplicate id {s['id']} in the batch"})
                seen.add(s["id"])
                if s["id"] in control["reject_ids"]:
                    return self.reply(400, {"error": f"statement {s['id']} refused"})
                if s["verb"]["id"] == VOIDED:
                    target = s["object"]
                    if target.get("objectType") != "StatementRef":
                        return self.reply(400, {"error": "a voiding statement needs a StatementRef"})
                    old = store.get(target["id"])
                    if old is not None and old["verb"]["id"] == VOIDED:
                        return self.reply(400, {"error": "a voiding statement cannot be voided"})
                old = store.get(s["id"])
                if old is not None and comparable(old) != comparable(s):
                    return self.reply(409, {"error": f"statement {s['id']} exists with different content"})
            for s in batch:
                if s["id"] in store:
                    continue
                store[s["id"]] = dict(s, stored="2026-01-01T00:00:00.000Z")
                order.append(s["id"])
                if s["verb"]["id"] == VOIDED:
                    voided.add(s["object"]["id"])
            slow = control["slow"]
        if slow is not None and len(batch) > slow[0]:
            time.sleep(slow[1])
        self.reply(200, [s["id"] for s in batch])

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/_stats":
            with lock:
                return self.reply(200, dict(stats, statements=len(store), ids=list(order)))
        if url.path.rstrip("/") != "/xAPI/statements":
            return self.reply(404, {"error": "not found"})
        if not self.checked():
            return
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        with lock:
            if "statementId" in q:
                s = store.get(q["statementId"])
                if s is None or q["statementId"] in voided:
                    return self.reply(404, {"error": "no such statement"})
                return self.reply(200, s)
            if "voidedStatementId" in q:
                s = store.get(q["voidedStatementId"])
                if s is None or q["voidedStatementId"] not in voided:
                    return self.reply(404, {"error": "no such voided statement"})
                return self.reply(200, s)
            found = []
            for sid in order:
                s = store[sid]
                if sid in voided:
                    continue
                if "verb" in q and s["verb"]["id"] != q["verb"]:
                    continue
                if "activity" in q:
                    ids = [s["object"].get("id")]
                    if q.get("related_activities") == "true":
                        for v in s.get("context", {}).get("contextActivities", {}).values():
                            ids += [a.get("id") for a in (v if isinstance(v, list) else [v])]
                    if q["activity"] not in ids:
                        continue
                if "registration" in q and s.get("context", {}).get("registration") != q["registration"]:
                    continue
                if "since" in q and s.get("timestamp", "") <= q["since"]:
                    continue
                if "until" in q and s.get("timestamp", "") > q["until"]:
                    continue
                found.append(s)
            start = int(q.pop("cursor", 0))
            limit = int(q.get("limit", 0)) or len(found)
            page = found[start:start + limit]
            more = ""
            if start + limit < len(found):
                more = "/xAPI/statements?" + urlencode(dict(q, cursor=start + limit))
        self.reply(200, {"statements": page, "more": more})


ThreadingHTTPServer.allow_reuse_address = True
server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
print(f"strict LRS on 127.0.0.1:{PORT}", flush=True)
server.serve_forever()
