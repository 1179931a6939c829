"""The server's real webhook deliveries, verified with the Standard Webhooks reference
library (`standardwebhooks` from PyPI), not with the server's own code.

Starts `ticketctl serve` on a fresh SQLite file and a receiver on loopback, subscribes the
receiver to every message, makes changes (a hold, a purchase, a cancel, an edit), and checks
that every delivery verifies with the secret the API gave, that a tampered body or another
secret does not, that `webhook-id` is stable across a retry (the receiver refuses the first
attempt), and that every message arrived, numbered 1 to 6 with no gap. Exits non-zero on any
failure. Bounded: every wait has a deadline.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

TICKETCTL = os.environ.get("TICKETCTL", "target/debug/ticketctl")
TOKEN = "verify-token"
received = []
lock = threading.Lock()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with lock:
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            first = len(received) == 1
        # The first attempt is refused, so the retry of that message must keep its id.
        self.send_response(503 if first else 204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def api(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wait_for(what, check, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    sys.exit(f"FAIL: timed out waiting for {what}")


def main():
    receiver = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"

    tmp = tempfile.mkdtemp()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, WEBHOOK_ALLOW_PRIVATE_NETWORKS="true", WEBHOOK_RETRY_SCHEDULE="1,1,1",
               ADMIN_TOKEN=TOKEN, DATABASE_URL=f"sqlite://{tmp}/tickets.db")
    server = subprocess.Popen([TICKETCTL, "serve", "--bind", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the server", lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0
                 and api(base, "GET", "/health/live")[0] == 200)
        status, hook = api(base, "POST", "/api/webhooks", {"url": hook_url, "events": ["*"]})
        assert status == 201, (status, hook)
        secret = hook["secret"]
        status, event = api(base, "POST", "/api/events", {"name": "Verified", "capacity": 3})
        assert status == 201, event
        eid = event["id"]
        _, a = api(base, "POST", f"/api/events/{eid}/reserve", {"quantity": 1})
        _, b = api(base, "POST", f"/api/events/{eid}/reserve", {"quantity": 2})
        api(base, "POST", f"/api/reservations/{a['id']}/purchase", {"payment_reference": "p-1"})
        api(base, "POST", f"/api/reservations/{b['id']}/cancel")
        api(base, "PATCH", f"/api/events/{eid}", {"name": "Verified again"})
        # created a, created b, sold_out, purchased a, canceled b, updated: 6 messages, and the
        # refused first attempt once more.
        wait_for("7 deliveries", lambda: len(received) >= 7)
        time.sleep(0.5)
        with lock:
            got = list(received)

        wh = Webhook(secret)
        other = Webhook("whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=")
        for headers, body in got:
            payload = wh.verify(body, headers)
            assert payload["event_id"] == eid, payload
            for bad_hook, bad_body in ((wh, body.replace(b"}", b" }", 1)), (other, body)):
                try:
                    bad_hook.verify(bad_body, headers)
                except WebhookVerificationError:
                    pass
                else:
                    sys.exit("FAIL: a tampered delivery verified")
        ids = [h["webhook-id"] for h, _ in got]
        assert ids[0] == ids[1] or ids[0] in ids[1:], f"the retried message kept its id: {ids}"
        firsts, seen = [], set()
        for h, body in got:
            if h["webhook-id"] not in seen:
                seen.add(h["webhook-id"])
                firsts.append(json.loads(body)["seq"])
        # Attempts start in seq order but run side by side (up to 16 per endpoint), so they may
        # arrive in another; seq is gap-free, so the receiver orders them itself.
        assert sorted(firsts) == [1, 2, 3, 4, 5, 6], f"every message once, by seq: {firsts}"
        kinds = [json.loads(body)["type"] for _, body in got]
        for kind in ("reservation.created", "event.sold_out", "reservation.purchased",
                     "reservation.canceled", "event.updated"):
            assert kind in kinds, (kind, kinds)
        print(f"webhooks verified with standardwebhooks: {len(got)} deliveries of {len(firsts)} "
              f"messages (first attempts arrived as seq {firsts}), the refused one retried with "
              f"id {ids[0]}, tampered bodies and a wrong secret refused")
    finally:
        server.terminate()
        server.wait(timeout=30)
        receiver.shutdown()


if __name__ == "__main__":
    main()
