#!/usr/bin/env python3
"""Self-test of the sandbox provider (sandbox.py beside this file).

Starts the sandbox as a subprocess on a free port, as gifq's tests will,
and checks it from outside over HTTP: every endpoint, every error code of
PROVIDER_API.md, idempotency, ETags, each fault kind, asynchronous orders
and their signed webhooks, the event sink, the rate limit, the
concurrency and duplicate statistics, and reset.  Signatures are checked
with hmac here, independently of the sandbox's own code.

Run: python3 test/sandbox/test_sandbox.py   (exits non-zero on failure)
"""

import errno
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SANDBOX = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "sandbox.py")
API_KEY = "test-key"
WEBHOOK_SECRET = "test-webhook-secret"
SEED = 20261128
START_TIMEOUT_S = 10

CODE_RE = re.compile(r"SBX-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}")
SIGNATURE_RE = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


class SandboxProcess:
    """The sandbox running as a subprocess, found through its port file."""

    def __init__(self, *arguments):
        self.directory = tempfile.TemporaryDirectory()
        self.port_file = os.path.join(self.directory.name, "port")
        # stderr goes to a file: a pipe nobody reads while the tests run
        # would fill up and block the sandbox.
        self.stderr = open(os.path.join(self.directory.name, "stderr"),
                           "w+")
        self.process = subprocess.Popen(
            [sys.executable, SANDBOX, "--port", "0", "--port-file",
             self.port_file, "--quiet", *arguments],
            stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(self.port_file):
            if self.process.poll() is not None or \
                    time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start: "
                                   f"{self.stop()[1]}")
            time.sleep(0.02)
        with open(self.port_file) as f:
            self.port = int(f.read())
        self.first_line = self.process.stdout.readline()

    def stop(self, signum=signal.SIGTERM):
        """Stops the sandbox; its exit status and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.communicate(timeout=10)
        self.stderr.seek(0)
        stderr = self.stderr.read()
        self.stderr.close()
        self.directory.cleanup()
        return self.process.returncode, stderr


class Client:
    """A keep-alive HTTP client for one sandbox; answers are (status,
    headers, document), the document None when the body is empty."""

    def __init__(self, port, api_key=API_KEY):
        self.port = port
        self.api_key = api_key
        self.connection = http.client.HTTPConnection("127.0.0.1", port,
                                                     timeout=10)

    def close(self):
        self.connection.close()

    def raw(self, method, path, body=None, headers=None):
        self.connection.request(method, path, body, headers or {})
        response = self.connection.getresponse()
        return response.status, response.headers, response.read()

    def call(self, method, path, document=None, headers=None, auth=True):
        headers = dict(headers or {})
        if auth and self.api_key is not None:
            headers.setdefault("Authorization", f"Bearer {self.api_key}")
        body = None
        if document is not None:
            body = document if isinstance(document, bytes) else \
                json.dumps(document).encode()
            headers["Content-Type"] = "application/json"
        status, response_headers, raw = self.raw(method, path, body,
                                                 headers)
        return status, response_headers, json.loads(raw) if raw else None

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, document=None, **kwargs):
        return self.call("POST", path, document, **kwargs)

    def control(self, method, path, document=None):
        """A control endpoint that must succeed; its document."""
        status, _, answer = self.call(method, path, document, auth=False)
        if status != 200:
            raise AssertionError(f"{method} {path}: {status} {answer}")
        return answer

    def order(self, reference, brand="amazon-us", amount=50, currency="USD",
              email="ana@example.com", key=None, **extra):
        document = {"brand_id": brand, "amount": amount,
                    "currency": currency, "recipient_email": email,
                    "reference_id": reference, **extra}
        return self.post("/api/v1/orders", document, headers={
            "Idempotency-Key": reference if key is None else key})

    def lookup(self, reference):
        return self.get(f"/api/v1/orders?reference_id={reference}")


def expected_signature(secret, header, body):
    """Checks header's HMAC of body here, independently of the sandbox."""
    match = SIGNATURE_RE.fullmatch(header)
    if not match:
        return False
    message = match.group(1).encode() + b"." + body.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(digest, match.group(2))


def wait_for(condition, timeout=5.0, interval=0.02):
    """condition()'s first true value, polled; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


class Receiver:
    """A tiny webhook receiver: answers with the statuses given, in turn
    (the last one from then on), and keeps what it was sent."""

    def __init__(self, statuses):
        received = self.received = []
        answers = list(statuses)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["X-Gifq-Signature"],
                                 body.decode()))
                status = answers.pop(0) if len(answers) > 1 else answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class SandboxTest(unittest.TestCase):
    """Tests against one sandbox, reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.sandbox = SandboxProcess("--api-key", API_KEY, "--seed",
                                     str(SEED), "--webhook-secret",
                                     WEBHOOK_SECRET)

    @classmethod
    def tearDownClass(cls):
        status, stderr = cls.sandbox.stop()
        if status != 0:
            raise AssertionError(f"sandbox exit status {status}: {stderr}")

    def setUp(self):
        self.client = Client(self.sandbox.port)
        self.client.control("POST", "/_sandbox/reset")

    def tearDown(self):
        stats = self.client.control("GET", "/_sandbox/stats")
        self.client.close()
        self.assertEqual(stats["internal_errors"], 0,
                         "the sandbox hit a bug: see its stderr")

    def assertError(self, answer, status, code):
        self.assertEqual(answer[0], status, answer)
        self.assertEqual(set(answer[2]), {"error"})
        self.assertEqual(answer[2]["error"]["code"], code)
        self.assertIsInstance(answer[2]["error"]["message"], str)

    def faults(self, **faults):
        return self.client.control("POST", "/_sandbox/faults", faults)

    def config(self, **config):
        return self.client.control("POST", "/_sandbox/config", config)

    def stats(self):
        return self.client.control("GET", "/_sandbox/stats")

    def wait_for_status(self, reference, status):
        """The order of reference once it has status."""
        def current():
            order = self.client.lookup(reference)[2]
            return order if order["status"] == status else None
        return wait_for(current)

    # -- start-up ---------------------------------------------------------

    def test_listening_line(self):
        self.assertEqual(self.sandbox.first_line,
                         f"sandbox listening on 127.0.0.1:"
                         f"{self.sandbox.port}\n")

    def test_keep_alive(self):
        socket_before = None
        for _ in range(200):
            status, headers, _ = self.client.get("/api/v1/balance")
            self.assertEqual(status, 200)
            self.assertIsNotNone(headers["Content-Length"])
            socket_before = socket_before or self.client.connection.sock
            self.assertIs(self.client.connection.sock, socket_before,
                          "the connection was not kept open")

    # -- authentication ---------------------------------------------------

    def test_unauthorized(self):
        for path in ("/api/v1/catalog", "/api/v1/balance",
                     "/api/v1/orders?reference_id=x", "/api/v1/orders/x"):
            self.assertError(self.client.get(path, auth=False), 401,
                             "unauthorized")
            self.assertError(self.client.get(path, headers={
                "Authorization": "Bearer wrong"}), 401, "unauthorized")
        self.assertError(self.client.post("/api/v1/orders", {}, headers={
            "Authorization": f"Basic {API_KEY}"}), 401, "unauthorized")

    # -- catalog ----------------------------------------------------------

    def test_catalog(self):
        status, headers, catalog = self.client.get("/api/v1/catalog")
        self.assertEqual(status, 200)
        self.assertEqual(headers["ETag"], f'"{catalog["etag"]}"')
        brands = {b["id"]: b for b in catalog["brands"]}
        self.assertEqual(set(brands), {
            "amazon-us", "target-us", "visa-us", "cafe-us", "oos-us",
            "tesco-gb", "fnac-fr", "sony-jp"})
        self.assertEqual(brands["amazon-us"]["denominations"],
                         [10, 25, 50, 100, 500])
        self.assertEqual(brands["amazon-us"]["discount_pct"], 3.0)
        self.assertEqual((brands["visa-us"]["min_value"],
                          brands["visa-us"]["max_value"]), (1, 500))
        self.assertFalse(brands["oos-us"]["in_stock"])
        self.assertEqual({b["currency"] for b in brands.values()},
                         {"USD", "EUR", "GBP", "JPY"})
        allowed = {"id", "name", "country", "currency", "categories",
                   "denominations", "min_value", "max_value",
                   "discount_pct", "in_stock", "image_url",
                   "redemption_instructions", "updated_at"}
        for brand in brands.values():
            # gifq_catalog_load refuses any other field
            self.assertEqual(set(brand), allowed)
            self.assertNotEqual(bool(brand["denominations"]),
                                brand["min_value"] is not None)

    def test_catalog_filters(self):
        def ids(query):
            status, _, catalog = self.client.get(f"/api/v1/catalog?{query}")
            self.assertEqual(status, 200)
            return sorted(b["id"] for b in catalog["brands"])

        self.assertEqual(ids("country=GB"), ["tesco-gb"])
        self.assertEqual(ids("currency=JPY"), ["sony-jp"])
        self.assertEqual(ids("category=grocery"), ["tesco-gb"])
        self.assertEqual(ids("country=US&category=retail"),
                         ["amazon-us", "oos-us", "target-us"])
        self.assertEqual(ids("country=US&currency=EUR"), [])

    def test_catalog_etag_and_304(self):
        _, _, catalog = self.client.get("/api/v1/catalog")
        etag = catalog["etag"]
        for spelling in (etag, f'"{etag}"', f'W/"{etag}"',
                         f'"other", "{etag}"'):
            status, headers, body = self.client.get(
                "/api/v1/catalog", headers={"If-None-Match": spelling})
            self.assertEqual(status, 304, spelling)
            self.assertIsNone(body)
            self.assertEqual(headers["ETag"], f'"{etag}"')
        status, _, _ = self.client.get(
            "/api/v1/catalog", headers={"If-None-Match": '"c-stale"'})
        self.assertEqual(status, 200)
        # the connection still works after a 304 without a body
        self.assertEqual(self.client.get("/api/v1/balance")[0], 200)

    def test_catalog_changes(self):
        _, _, before = self.client.get("/api/v1/catalog")
        changed = self.client.control("POST", "/_sandbox/catalog", {
            "patch": {"amazon-us": {"in_stock": False}}})
        self.assertNotEqual(changed["etag"], before["etag"])
        status, _, after = self.client.get(
            "/api/v1/catalog", headers={"If-None-Match": before["etag"]})
        self.assertEqual(status, 200)
        self.assertEqual(after["etag"], changed["etag"])
        amazon = next(b for b in after["brands"] if b["id"] == "amazon-us")
        self.assertFalse(amazon["in_stock"])
        self.assertNotEqual(amazon["updated_at"], "2026-11-25T10:00:00Z")
        self.assertError(self.client.order("p1"), 422, "out_of_stock")

        removed = self.client.control("POST", "/_sandbox/catalog",
                                      {"remove": ["fnac-fr"]})
        self.assertEqual(removed["brands"], 7)
        self.assertError(self.client.order("p2", "fnac-fr", 20, "EUR"), 404,
                         "unknown_brand")

        replaced = self.client.control("POST", "/_sandbox/catalog", {
            "brands": [{"id": "new-us", "name": "New", "country": "US",
                        "currency": "USD", "categories": ["retail"],
                        "denominations": [12.5], "in_stock": True}]})
        self.assertEqual(replaced["brands"], 1)
        _, _, catalog = self.client.get("/api/v1/catalog")
        self.assertEqual([b["id"] for b in catalog["brands"]], ["new-us"])
        self.assertEqual(self.client.order("p3", "new-us", 12.50)[0], 201)

        events = self.client.control("GET", "/_sandbox/webhooks")
        self.assertEqual([e["type"] for e in events], ["catalog.updated"] * 3)
        data = [json.loads(e["body"])["data"] for e in events]
        self.assertEqual(data[0]["changed"], ["amazon-us"])
        self.assertEqual(data[1]["removed"], ["fnac-fr"])
        self.assertEqual(data[2]["added"], ["new-us"])
        self.assertEqual(data[2]["etag"], replaced["etag"])
        for event in events:
            self.assertTrue(expected_signature(WEBHOOK_SECRET,
                                               event["signature"],
                                               event["body"]))

        # the same content again is no change: same etag, no event
        again = self.client.control("POST", "/_sandbox/catalog", {
            "patch": {"new-us": {"in_stock": True}}})
        self.assertEqual(again["etag"], replaced["etag"])
        self.assertIsNone(again["event_id"])

    def test_catalog_change_errors(self):
        for document in ({}, {"brands": "x"}, {"brands": [{"name": "x"}]},
                         {"brands": [{"id": "a"}, {"id": "a"}]},
                         {"patch": {"nope": {"in_stock": False}}},
                         {"patch": {"amazon-us": {"id": "b"}}},
                         {"remove": ["nope"]}, {"other": 1}):
            self.assertError(self.client.post("/_sandbox/catalog", document),
                             400, "invalid_request")
        _, _, catalog = self.client.get("/api/v1/catalog")
        self.assertEqual(len(catalog["brands"]), 8, "nothing was changed")

    # -- orders -----------------------------------------------------------

    def test_order_delivered(self):
        status, _, order = self.client.order("gifq-ord-000000001")
        self.assertEqual(status, 201)
        self.assertEqual(order["status"], "delivered")
        self.assertEqual(order["reference_id"], "gifq-ord-000000001")
        self.assertRegex(order["order_id"], r"^ord_[0-9a-f]{16}$")
        card = order["gift_card"]
        self.assertRegex(card["code"], CODE_RE)
        self.assertRegex(card["pin"], r"^\d{4}$")
        self.assertRegex(card["expiry_date"], r"^\d{4}-\d\d-\d\d$")
        self.assertTrue(card["redemption_url"].startswith("https://"))
        self.assertEqual(set(card["wallet_links"]),
                         {"apple_wallet", "google_pay"})

        self.assertEqual(self.client.get(
            f"/api/v1/orders/{order['order_id']}")[2], order)
        self.assertEqual(self.client.lookup("gifq-ord-000000001")[2], order)
        _, _, balance = self.client.get("/api/v1/balance")
        self.assertEqual(balance, {"currency": "USD",
                                   "available": 1000000 - 48.50})

    def test_codes_are_repeatable(self):
        first = self.client.order("gifq-ord-000000007")[2]
        self.client.control("POST", "/_sandbox/reset")
        again = self.client.order("gifq-ord-000000007")[2]
        self.assertEqual(again["order_id"], first["order_id"])
        self.assertEqual(again["gift_card"]["code"],
                         first["gift_card"]["code"])
        other = self.client.order("gifq-ord-000000008")[2]
        self.assertNotEqual(other["gift_card"]["code"],
                            first["gift_card"]["code"])

    def test_idempotent_replay_and_conflict(self):
        status, _, order = self.client.order("r1", amount=50)
        self.assertEqual(status, 201)
        # 50.00 is the same amount as 50
        status, _, replay = self.client.order("r1", amount=50.00)
        self.assertEqual(status, 200)
        self.assertEqual(replay, order)
        self.assertError(self.client.order("r1", amount=25), 409,
                         "idempotency_conflict")
        self.assertError(self.client.order("r1", email="bo@example.com"),
                         409, "idempotency_conflict")
        stats = self.stats()
        self.assertEqual((stats["orders_posted"], stats["orders_created"],
                          stats["replays"], stats["cards_issued"],
                          stats["posts_per_reference_max"]), (4, 1, 1, 1, 4))
        _, _, balance = self.client.get("/api/v1/balance")
        self.assertEqual(balance["available"], 1000000 - 48.50)

    def test_order_errors_in_order(self):
        order = self.client.order
        # 400: malformed JSON, missing or ill-typed fields, the key
        self.assertError(self.client.post("/api/v1/orders", b"{not json",
                                          headers={"Idempotency-Key": "x"}),
                         400, "invalid_request")
        self.assertError(self.client.post("/api/v1/orders", [1], headers={
            "Idempotency-Key": "x"}), 400, "invalid_request")
        self.assertError(self.client.post(
            "/api/v1/orders", {"reference_id": "x"},
            headers={"Idempotency-Key": "x"}), 400, "invalid_request")
        for bad in ({"amount": "50"}, {"amount": True}, {"amount": 0},
                    {"amount": -5}, {"currency": "usd"},
                    {"email": None}, {"brand": 7}):
            self.assertError(order("e1", **bad), 400, "invalid_request")
        self.assertError(order("e1", key="other"), 400, "invalid_request")
        self.assertError(self.client.post("/api/v1/orders", {
            "brand_id": "amazon-us", "amount": 50, "currency": "USD",
            "recipient_email": "a@example.com", "reference_id": "e1"}),
            400, "invalid_request")  # no Idempotency-Key at all
        # 404 unknown brand comes before 422 invalid denomination
        self.assertError(order("e1", brand="nope", amount=7), 404,
                         "unknown_brand")
        # 422 invalid denomination, before the currency check
        self.assertError(order("e1", amount=30, currency="EUR"), 422,
                         "invalid_denomination")
        self.assertError(order("e1", brand="visa-us", amount=500.01), 422,
                         "invalid_denomination")
        self.assertError(order("e1", brand="visa-us", amount=10.005), 422,
                         "invalid_denomination")
        self.assertError(order("e1", brand="sony-jp", amount=1000.5,
                               currency="JPY"), 422, "invalid_denomination")
        # 400 currency mismatch, before stock
        self.assertError(order("e1", brand="oos-us", amount=10,
                               currency="EUR"), 400, "invalid_request")
        # 422 out of stock, before the recipient
        self.assertError(order("e1", brand="oos-us", amount=10,
                               email="nope"), 422, "out_of_stock")
        # 422 invalid recipient, before the balance
        self.config(balance=1)
        for email in ("nope", "a b@example.com", "ana@invalid.example",
                      "ANA@INVALID.EXAMPLE"):
            self.assertError(order("e1", email=email), 422,
                             "invalid_recipient")
        # 402 insufficient funds
        self.assertError(order("e1"), 402, "insufficient_funds")
        self.config(balance=48.50)
        self.assertEqual(order("e1")[0], 201)
        self.assertEqual(self.client.get("/api/v1/balance")[2]["available"],
                         0)
        # a refused request reserved nothing: only the last one created
        self.assertEqual(self.stats()["orders_created"], 1)

    def test_other_brands(self):
        cases = (("visa-us", 12.34, "USD", 12.03), ("tesco-gb", 13.37,
                 "GBP", 12.77), ("sony-jp", 5000, "JPY", 4750),
                 ("fnac-fr", 20, "EUR", 20), ("cafe-us", 100, "USD", 95))
        spent = 0
        for n, (brand, amount, currency, cost) in enumerate(cases):
            status, _, order = self.client.order(f"b{n}", brand, amount,
                                                 currency)
            self.assertEqual(status, 201, order)
            self.assertEqual((order["amount"], order["currency"]),
                             (amount, currency))
            spent += cost
        self.assertAlmostEqual(
            self.client.get("/api/v1/balance")[2]["available"],
            1000000 - spent, places=2)

    def test_lookup_errors(self):
        self.assertError(self.client.get("/api/v1/orders/ord_nope"), 404,
                         "not_found")
        self.assertError(self.client.lookup("nope"), 404, "not_found")
        self.assertError(self.client.get("/api/v1/orders"), 400,
                         "invalid_request")

    def test_routing_errors(self):
        self.assertError(self.client.get("/api/v1/nope"), 404, "not_found")
        self.assertError(self.client.get("/_sandbox/nope"), 404, "not_found")
        self.assertError(self.client.post("/api/v1/balance", {}), 405,
                         "invalid_request")
        self.assertError(self.client.post("/api/v1/orders/x", {}), 405,
                         "invalid_request")
        self.assertError(self.client.get("/_sandbox/reset"), 405,
                         "invalid_request")
        self.assertError(self.client.post("/_sandbox/config", b"{"), 400,
                         "invalid_request")

    def test_chunked_and_expect_continue(self):
        body = json.dumps({
            "brand_id": "amazon-us", "amount": 10, "currency": "USD",
            "recipient_email": "a@example.com", "reference_id": "c1",
            "note": "x" * 2000}).encode()
        self.client.connection.putrequest("POST", "/api/v1/orders")
        for name, value in (("Authorization", f"Bearer {API_KEY}"),
                            ("Idempotency-Key", "c1"),
                            ("Transfer-Encoding", "chunked"),
                            ("Content-Type", "application/json")):
            self.client.connection.putheader(name, value)
        self.client.connection.endheaders()
        for start in range(0, len(body), 1000):
            chunk = body[start:start + 1000]
            self.client.connection.send(b"%x\r\n%s\r\n" % (len(chunk),
                                                           chunk))
        self.client.connection.send(b"0\r\n\r\n")
        response = self.client.connection.getresponse()
        response.read()
        self.assertEqual(response.status, 201)

        # curl sends "Expect: 100-continue" before a larger body
        with socket.create_connection(("127.0.0.1",
                                       self.sandbox.port)) as raw:
            raw.settimeout(5)
            raw.sendall(b"POST /_sandbox/sink HTTP/1.1\r\nHost: x\r\n"
                        b"Content-Length: 2000\r\n"
                        b"Expect: 100-continue\r\n\r\n")
            self.assertTrue(raw.recv(100).startswith(
                b"HTTP/1.1 100 Continue"))
            raw.sendall(b"x" * 2000)
            self.assertIn(b" 204 ", raw.recv(1000))

    # -- faults -----------------------------------------------------------

    def test_fault_config(self):
        defaults = self.client.control("GET", "/_sandbox/faults")
        self.assertEqual(defaults["after_create_ratio"], 0.5)
        self.assertEqual(defaults["timeout_ms"], 30000)
        self.assertEqual(defaults["retry_after"], 1)
        self.assertFalse(defaults["unauthorized"])
        set_ = self.faults(**{"5xx": 0.25, "slow_ms": 10})
        self.assertEqual(set_["5xx"], 0.25)
        # a POST replaces the whole configuration
        self.assertEqual(self.faults(timeout=0.1)["5xx"], 0)
        for bad in ({"5xx": 1.5}, {"5xx": 0.6, "429": 0.6}, {"nope": 1},
                    {"timeout_ms": -1}, {"timeout_ms": 1.5},
                    {"unauthorized": 1}, {"idempotency": False}):
            self.assertError(self.client.post("/_sandbox/faults", bad), 400,
                             "invalid_request")
        self.assertEqual(
            self.client.control("GET", "/_sandbox/faults")["timeout"], 0.1)

    def test_fault_5xx(self):
        self.faults(**{"5xx": 1.0, "after_create_ratio": 0.0})
        for n in range(5):
            answer = self.client.order(f"f{n}")
            self.assertIn(answer[0], (500, 502, 503))
            self.assertError(answer, answer[0], "provider_error")
        self.faults()
        self.assertError(self.client.lookup("f0"), 404, "not_found")
        self.assertEqual(self.stats()["faults_injected"], {"5xx": 5})

        self.faults(**{"5xx": 1.0, "after_create_ratio": 1.0})
        self.assertIn(self.client.order("g1")[0], (500, 502, 503))
        self.faults()
        status, _, order = self.client.lookup("g1")
        self.assertEqual((status, order["status"]), (200, "delivered"))
        # the resend the client makes after its lookup replays the order
        self.assertEqual(self.client.order("g1")[2], order)
        self.assertEqual(self.stats()["faults_after_create"], 1)

    def test_fault_429(self):
        self.faults(**{"429": 1.0, "retry_after": 7})
        answer = self.client.order("q1")
        self.assertError(answer, 429, "rate_limited")
        self.assertEqual(answer[1]["Retry-After"], "7")
        self.faults()
        self.assertError(self.client.lookup("q1"), 404, "not_found")

    def test_fault_out_of_stock(self):
        self.faults(out_of_stock=1.0)
        self.assertError(self.client.order("o1"), 422, "out_of_stock")
        self.faults()
        self.assertError(self.client.lookup("o1"), 404, "not_found")

    def test_fault_timeout(self):
        for after, reference in ((0.0, "t1"), (1.0, "t2")):
            self.faults(timeout=1.0, timeout_ms=300,
                        after_create_ratio=after)
            started = time.monotonic()
            with self.assertRaises(http.client.RemoteDisconnected):
                self.client.order(reference)
            self.assertGreaterEqual(time.monotonic() - started, 0.3)
            self.client.connection.close()
        self.faults()
        self.assertError(self.client.lookup("t1"), 404, "not_found")
        self.assertEqual(self.client.lookup("t2")[0], 200)

    def test_fault_slow(self):
        self.faults(slow=1.0, slow_ms=300)
        started = time.monotonic()
        status, _, order = self.client.order("s1")
        self.assertGreaterEqual(time.monotonic() - started, 0.3)
        self.assertEqual((status, order["status"]), (201, "delivered"))

    def test_fault_malformed(self):
        for after, reference in ((0.0, "m1"), (1.0, "m2")):
            self.faults(malformed=1.0, after_create_ratio=after)
            status, _, body = self.client.raw(
                "POST", "/api/v1/orders", json.dumps({
                    "brand_id": "amazon-us", "amount": 10,
                    "currency": "USD", "recipient_email": "a@example.com",
                    "reference_id": reference}).encode(),
                {"Authorization": f"Bearer {API_KEY}",
                 "Idempotency-Key": reference})
            self.assertEqual(status, 201)
            self.assertTrue(body)
            with self.assertRaises(ValueError):
                json.loads(body)
        self.faults()
        self.assertError(self.client.lookup("m1"), 404, "not_found")
        self.assertEqual(self.client.lookup("m2")[0], 200)

    def test_fault_reset(self):
        for after, reference in ((0.0, "x1"), (1.0, "x2")):
            self.faults(reset=1.0, after_create_ratio=after)
            with self.assertRaises(ConnectionResetError) as caught:
                self.client.order(reference)
            self.assertEqual(caught.exception.errno, errno.ECONNRESET)
            self.client.connection.close()
        self.faults()
        self.assertError(self.client.lookup("x1"), 404, "not_found")
        self.assertEqual(self.client.lookup("x2")[0], 200)

    def test_fault_redirect(self):
        for location in ("gopher://127.0.0.1:70/x", "file:///etc/passwd",
                         "http://127.0.0.1:9/elsewhere"):
            self.faults(redirect_to=location)
            status, headers, raw = self.client.raw(
                "POST", "/api/v1/orders", json.dumps({
                    "brand_id": "amazon-us", "amount": 50,
                    "currency": "USD", "recipient_email": "a@example.com",
                    "reference_id": "r1"}).encode(),
                {"Authorization": f"Bearer {API_KEY}",
                 "Content-Type": "application/json",
                 "Idempotency-Key": "r1"})
            self.assertEqual((status, headers["Location"], raw),
                             (302, location, b""))
            self.assertEqual(self.client.get("/api/v1/catalog")[0], 302)
        # the redirected order was never created
        self.faults()
        self.assertError(self.client.lookup("r1"), 404, "not_found")
        self.assertEqual(self.stats()["faults_injected"], {"redirect": 6})
        # still authenticated first
        self.faults(redirect_to="gopher://127.0.0.1:70/x")
        self.assertError(self.client.get("/api/v1/catalog", auth=False),
                         401, "unauthorized")

    def test_fault_huge(self):
        self.faults(huge_bytes=3_000_000)
        for path in ("/api/v1/catalog", "/api/v1/balance",
                     "/api/v1/orders?reference_id=h1"):
            status, headers, raw = self.client.raw(
                "GET", path, None, {"Authorization": f"Bearer {API_KEY}"})
            self.assertEqual((status, len(raw), headers["Content-Length"]),
                             (200, 3_000_000, "3000000"))
            self.assertEqual(set(json.loads(raw)), {"padding"})
        self.faults(huge_bytes=5)  # smaller than the JSON around it
        self.assertEqual(self.client.get("/api/v1/balance")[2],
                         {"padding": ""})
        for bad in ({"huge_bytes": -1}, {"huge_bytes": 1.5},
                    {"redirect_to": ""}, {"redirect_to": "http://a/\r\nX: y"},
                    {"redirect_to": 7}):
            self.assertError(self.client.post("/_sandbox/faults", bad), 400,
                             "invalid_request")

    def test_faults_on_lookups(self):
        self.client.order("l1")
        self.faults(**{"5xx": 1.0})
        self.assertEqual(self.client.lookup("l1")[0], 200,
                         "lookups are spared unless asked")
        self.faults(**{"5xx": 1.0, "apply_to_lookups": True})
        self.assertIn(self.client.lookup("l1")[0], (500, 502, 503))
        self.faults(malformed=1.0, apply_to_lookups=True)
        status, _, body = self.client.raw(
            "GET", "/api/v1/orders?reference_id=l1",
            headers={"Authorization": f"Bearer {API_KEY}"})
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b'{"order_id": "ord_'))
        with self.assertRaises(ValueError):
            json.loads(body)
        # a lookup is never out of stock
        self.faults(out_of_stock=1.0, apply_to_lookups=True)
        self.assertEqual(self.client.lookup("l1")[0], 200)

    def test_fault_switches(self):
        self.client.order("w1")
        self.faults(insufficient_funds=True)
        self.assertError(self.client.order("w2"), 402, "insufficient_funds")
        self.assertEqual(self.client.order("w1")[0], 200,
                         "a replay is no new order")
        self.faults(unauthorized=True)
        for path in ("/api/v1/catalog", "/api/v1/balance"):
            self.assertError(self.client.get(path), 401, "unauthorized")
        self.assertError(self.client.order("w1"), 401, "unauthorized")
        self.faults()
        self.assertEqual(self.client.get("/api/v1/balance")[0], 200)

    def test_faults_are_seeded(self):
        def outcomes():
            self.client.control("POST", "/_sandbox/reset")
            self.faults(**{"5xx": 0.3, "429": 0.2})
            return [self.client.order(f"d{n}")[0] for n in range(40)]

        first = outcomes()
        self.assertEqual(outcomes(), first)
        self.assertTrue({201, 429} <= set(first), first)
        self.assertTrue(set(first) & {500, 502, 503}, first)

    # -- duplicates, statistics, orders -----------------------------------

    def test_careless_provider_duplicates(self):
        self.config(idempotency=False)
        first = self.client.order("dup")
        second = self.client.order("dup")
        self.assertEqual((first[0], second[0]), (201, 201))
        self.assertNotEqual(first[2]["order_id"], second[2]["order_id"])
        self.assertNotEqual(first[2]["gift_card"]["code"],
                            second[2]["gift_card"]["code"])
        self.client.order("single")
        stats = self.stats()
        self.assertEqual(stats["duplicates"], ["dup"])
        self.assertEqual(stats["cards_issued"], 3)
        self.assertEqual(stats["references"], 2)
        self.assertEqual(stats["posts_per_reference_max"], 2)
        orders = self.client.control("GET", "/_sandbox/orders")
        self.assertEqual([(o["reference_id"], o["created"], o["posts"])
                          for o in orders],
                         [("dup", 2, 2), ("dup", 2, 2), ("single", 1, 1)])
        # a lookup finds the latest card of the reference
        self.assertEqual(self.client.lookup("dup")[2], second[2])
        # back to idempotency: the repeat is no duplicate
        self.config(idempotency=True)
        self.assertEqual(self.client.order("single")[0], 200)
        self.assertEqual(self.stats()["duplicates"], ["dup"])

    def test_stats_by_endpoint(self):
        self.client.get("/api/v1/catalog")
        self.client.order("s1")
        self.client.lookup("s1")
        self.client.get("/api/v1/orders/ord_x")
        self.client.get("/api/v1/balance", auth=False)
        stats = self.stats()
        self.assertEqual(stats["requests"], 5)
        self.assertEqual(stats["by_endpoint"], {
            "GET /api/v1/catalog": 1, "POST /api/v1/orders": 1,
            "GET /api/v1/orders?reference_id": 1,
            "GET /api/v1/orders/{order_id}": 1, "GET /api/v1/balance": 1})

    def test_max_in_flight(self):
        # each request is held long enough for all six to overlap
        self.faults(slow=1.0, slow_ms=1000)
        barrier = threading.Barrier(6)
        statuses = []

        def one(n):
            client = Client(self.sandbox.port)
            barrier.wait()
            statuses.append(client.order(f"c{n}")[0])
            client.close()

        threads = [threading.Thread(target=one, args=(n,))
                   for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(statuses, [201] * 6)
        stats = self.stats()
        self.assertEqual(stats["max_in_flight"], 6)
        self.assertEqual(stats["in_flight"], 0)

    def test_rate_limit(self):
        self.config(rate_limit=10)
        # 25 quick requests, all in one second of the clock the sandbox
        # shares with the test: a burst that a busy machine spread over
        # two seconds is tried again in the next one
        for _ in range(3):
            time.sleep(1.01 - time.time() % 1)
            second = int(time.time())
            answers = [self.client.get("/api/v1/balance")
                       for _ in range(25)]
            if int(time.time()) == second:
                break
        else:
            self.fail("the machine is too busy for the test")
        self.assertEqual([a[0] for a in answers], [200] * 10 + [429] * 15)
        self.assertError(answers[-1], 429, "rate_limited")
        self.assertEqual(answers[-1][1]["Retry-After"], "1")
        self.assertGreaterEqual(self.stats()["max_requests_in_any_second"],
                                25)
        time.sleep(1.02 - time.time() % 1)
        self.assertEqual(self.client.get("/api/v1/balance")[0], 200)

    def test_reset(self):
        self.client.order("z1")
        self.faults(**{"5xx": 1.0})
        self.config(async_ratio=1.0, balance=5)
        self.client.control("POST", "/_sandbox/catalog",
                            {"remove": ["amazon-us"]})
        self.client.post("/_sandbox/sink", b"{}")
        self.client.control("POST", "/_sandbox/reset")
        self.assertEqual(self.client.control("GET", "/_sandbox/orders"), [])
        self.assertEqual(self.client.control("GET", "/_sandbox/webhooks"),
                         [])
        self.assertEqual(self.client.control("GET", "/_sandbox/sink"), [])
        self.assertEqual(self.client.control("GET", "/_sandbox/faults")
                         ["5xx"], 0)
        config = self.client.control("GET", "/_sandbox/config")
        self.assertEqual((config["async_ratio"], config["balance"]),
                         (0, 1000000))
        stats = self.stats()
        self.assertEqual((stats["requests"], stats["orders_posted"],
                          stats["faults_injected"]), (0, 0, {}))
        self.assertEqual(self.client.lookup("z1")[0], 404)
        self.assertEqual(len(self.client.get("/api/v1/catalog")[2]
                             ["brands"]), 8)

    # -- asynchronous orders and webhooks ---------------------------------

    def test_config(self):
        config = self.client.control("GET", "/_sandbox/config")
        self.assertEqual(config["webhook_secret"], WEBHOOK_SECRET)
        self.assertTrue(config["idempotency"])
        self.assertEqual(self.config(async_delay_ms=5)["async_delay_ms"], 5)
        # a POST changes only what it names
        self.assertEqual(self.config(async_ratio=0.5)["async_delay_ms"], 5)
        for bad in ({"async_ratio": 2}, {"webhook_url": "ftp://x"},
                    {"balance": -1}, {"rate_limit": "10"}, {"nope": 1},
                    {"webhook_secret": ""}, {"5xx": 1.0}):
            self.assertError(self.client.post("/_sandbox/config", bad), 400,
                             "invalid_request")

    def test_async_delivered(self):
        # long enough for the lookups below to come before the delivery
        self.config(async_ratio=1.0, async_delay_ms=1000)
        status, _, order = self.client.order("a1")
        self.assertEqual((status, order["status"]), (201, "processing"))
        self.assertNotIn("gift_card", order)
        self.assertEqual(self.client.lookup("a1")[2]["status"], "processing")
        self.assertEqual(self.client.order("a1")[2]["status"], "processing")
        delivered = self.wait_for_status("a1", "delivered")
        self.assertRegex(delivered["gift_card"]["code"], CODE_RE)

        (event,) = self.client.control("GET", "/_sandbox/webhooks")
        self.assertEqual(event["type"], "order.delivered")
        self.assertFalse(event["delivered"])  # no URL: only logged
        self.assertEqual(event["attempts"], 0)
        self.assertTrue(expected_signature(WEBHOOK_SECRET,
                                           event["signature"],
                                           event["body"]))
        self.assertFalse(expected_signature("another secret",
                                            event["signature"],
                                            event["body"]))
        timestamp = int(SIGNATURE_RE.fullmatch(event["signature"]).group(1))
        self.assertLessEqual(abs(time.time() - timestamp), 5)
        body = json.loads(event["body"])
        self.assertEqual(body["id"], event["id"])
        self.assertRegex(body["id"], r"^evt_[0-9a-f]+$")
        self.assertEqual(body["type"], "order.delivered")
        self.assertEqual(body["data"], delivered)
        self.assertEqual(self.stats()["cards_issued"], 1)

    def test_async_failed(self):
        self.config(async_ratio=1.0, async_fail_ratio=1.0,
                    async_delay_ms=1000)
        self.client.order("a2")
        self.assertLess(self.client.get("/api/v1/balance")[2]["available"],
                        1000000)
        failed = self.wait_for_status("a2", "failed")
        self.assertEqual(failed["error"]["code"], "out_of_stock")
        self.assertNotIn("gift_card", failed)
        # the provider gives the money of a failed order back
        self.assertEqual(self.client.get("/api/v1/balance")[2]["available"],
                         1000000)
        events = self.client.control("GET", "/_sandbox/webhooks")
        self.assertEqual([e["type"] for e in events], ["order.failed"])
        self.assertEqual(json.loads(events[0]["body"])["data"], failed)
        self.assertEqual(self.stats()["cards_issued"], 0)
        self.assertEqual(self.client.order("a2")[2], failed)

    def test_async_ratio_is_a_fraction(self):
        self.config(async_ratio=0.5, async_delay_ms=1)
        statuses = [self.client.order(f"h{n}")[2]["status"]
                    for n in range(40)]
        self.assertTrue(10 <= statuses.count("processing") <= 30, statuses)

    def test_webhook_delivery_with_retries(self):
        receiver = Receiver([500, 503, 200])
        try:
            self.config(async_ratio=1.0, async_delay_ms=10,
                        webhook_url=receiver.url, webhook_retry_base_ms=50)
            self.client.order("k1")
            event = wait_for(lambda: next(
                (e for e in self.client.control("GET", "/_sandbox/webhooks")
                 if e["delivered"]), None))
            self.assertEqual(event["attempts"], 3)
            self.assertEqual(len(receiver.received), 3)
            for signature, body in receiver.received:
                self.assertEqual(body, event["body"])
                self.assertTrue(expected_signature(WEBHOOK_SECRET,
                                                   signature, body))
            self.assertEqual(json.loads(event["body"])["data"]
                             ["reference_id"], "k1")
        finally:
            receiver.close()

    def test_webhook_gives_up(self):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        self.config(async_ratio=1.0, async_delay_ms=1,
                    webhook_url=f"http://127.0.0.1:{port}/hook",
                    webhook_retry_base_ms=20, webhook_give_up_ms=200)
        self.client.order("k2")
        event = wait_for(lambda: next(
            (e for e in self.client.control("GET", "/_sandbox/webhooks")
             if e["gave_up"]), None))
        self.assertFalse(event["delivered"])
        self.assertGreater(event["attempts"], 2)
        self.assertIn("ConnectionRefused", event["last_error"])

    def test_redeem_card(self):
        order = self.client.order("rd1")[2]
        answer = self.client.control("POST", "/_sandbox/redeem_card",
                                     {"reference_id": "rd1"})
        self.assertIn("redeemed_at", answer["order"])
        (event,) = self.client.control("GET", "/_sandbox/webhooks")
        self.assertEqual((event["type"], event["id"]),
                         ("card.redeemed", answer["event_id"]))
        data = json.loads(event["body"])["data"]
        self.assertEqual((data["order_id"], data["reference_id"]),
                         (order["order_id"], "rd1"))
        self.assertTrue(expected_signature(WEBHOOK_SECRET,
                                           event["signature"],
                                           event["body"]))
        self.assertError(self.client.post("/_sandbox/redeem_card",
                                          {"reference_id": "rd1"}),
                         409, "not_redeemable")
        self.assertError(self.client.post("/_sandbox/redeem_card",
                                          {"reference_id": "nope"}),
                         404, "not_found")
        self.config(async_ratio=1.0, async_delay_ms=60000)
        self.client.order("rd2")
        self.assertError(self.client.post("/_sandbox/redeem_card",
                                          {"reference_id": "rd2"}),
                         409, "not_redeemable")

    # -- the event sink ---------------------------------------------------

    def test_sink(self):
        def send(body, signature):
            return self.client.raw("POST", "/_sandbox/sink", body,
                                   {"X-Gifq-Signature": signature})

        body = b'{"id": 1, "type": "order.delivered"}'
        now = int(time.time())
        good = "t=%d,v1=%s" % (now, hmac.new(
            b"gifq-secret", b"%d." % now + body, hashlib.sha256).hexdigest())
        status, headers, answer = send(body, good)
        self.assertEqual((status, answer), (204, b""))
        self.config(sink_secret="gifq-secret")
        self.assertEqual(send(body, good)[0], 204)
        send(body + b" ", good)
        send(body, good.replace("v1=", "v1=0"))
        old = now - 301
        stale = "t=%d,v1=%s" % (old, hmac.new(
            b"gifq-secret", b"%d." % old + body, hashlib.sha256).hexdigest())
        send(body, stale)
        # during a rotation the sender signs with both secrets
        send(body, good.replace(",v1=", ",v1=" + "0" * 64 + ",v1="))
        self.config(sink_fail_ratio=1.0)
        status, _, answer = send(body, good)
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(answer)["error"]["code"],
                         "provider_error")
        received = self.client.control("GET", "/_sandbox/sink")
        self.assertEqual([(r["valid"], r["status"]) for r in received], [
            (None, 204), (True, 204), (False, 204), (False, 204),
            (False, 204), (True, 204), (True, 503)])
        self.assertEqual(received[0]["body"], body.decode())
        self.assertEqual(received[0]["signature"], good)
        self.assertRegex(received[0]["received_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(self.stats()["requests"], 0,
                         "the sink is not the provider API")


class StartupTest(unittest.TestCase):
    """Start-up options, each with a sandbox of its own."""

    def test_refuses_other_hosts(self):
        for host in ("0.0.0.0", "192.0.2.1", "example.com"):
            result = subprocess.run(
                [sys.executable, SANDBOX, "--host", host, "--port", "0"],
                capture_output=True, text=True, timeout=10)
            self.assertEqual(result.returncode, 2)
            self.assertIn("loopback", result.stderr)

    def test_bad_options(self):
        for arguments in (["--faults", "{"], ["--faults", '{"5xx": 2}'],
                          ["--config", '{"nope": 1}'],
                          ["--webhook-url", "file:///etc/passwd"],
                          ["--port", "70000"]):
            result = subprocess.run(
                [sys.executable, SANDBOX, *arguments],
                capture_output=True, text=True, timeout=10)
            self.assertEqual(result.returncode, 2, arguments)

    def test_options(self):
        receiver = Receiver([200])
        sandbox = SandboxProcess(
            "--faults", '{"5xx": 1.0, "after_create_ratio": 0}',
            "--config", '{"async_ratio": 1, "async_delay_ms": 1}',
            "--rate-limit", "1000", "--webhook-url", receiver.url,
            "--webhook-secret", "s2")
        try:
            client = Client(sandbox.port, api_key="sandbox-key")
            self.assertIn(client.order("o1")[0], (500, 502, 503))
            client.control("POST", "/_sandbox/faults", {})
            self.assertEqual(client.order("o1")[2]["status"], "processing")
            config = client.control("GET", "/_sandbox/config")
            self.assertEqual((config["rate_limit"], config["webhook_url"]),
                             (1000, receiver.url))
            signature, body = wait_for(lambda: receiver.received)[0]
            self.assertTrue(expected_signature("s2", signature, body))
            # a reset goes back to the start-up faults, not to none
            client.control("POST", "/_sandbox/reset")
            self.assertEqual(client.control("GET", "/_sandbox/faults")
                             ["5xx"], 1.0)
            client.close()
        finally:
            status, stderr = sandbox.stop(signal.SIGINT)
            receiver.close()
        self.assertEqual(status, 0, stderr)
        self.assertFalse(os.path.exists(sandbox.port_file))

    def test_tls(self):
        if shutil.which("openssl") is None:
            self.skipTest("no openssl command")
        directory = tempfile.TemporaryDirectory()
        cert = os.path.join(directory.name, "cert.pem")
        key = os.path.join(directory.name, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj",
             "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
            check=True, capture_output=True, timeout=60)
        sandbox = SandboxProcess("--tls-cert", cert, "--tls-key", key)
        try:
            self.assertEqual(sandbox.first_line,
                             f"sandbox listening on 127.0.0.1:"
                             f"{sandbox.port} (http and https)\n")
            trusting = ssl.create_default_context(cafile=cert)
            connection = http.client.HTTPSConnection(
                "localhost", sandbox.port, timeout=10, context=trusting)
            connection.request("GET", "/api/v1/balance",
                               headers={"Authorization": "Bearer sandbox-key"})
            self.assertEqual(connection.getresponse().status, 200)
            connection.close()
            # plain HTTP on the same port, for control clients
            client = Client(sandbox.port)
            client.control("GET", "/_sandbox/stats")
            client.close()
            # a client that does not trust the certificate refuses it, and
            # the sandbox goes on serving
            for context, host in ((ssl.create_default_context(), "localhost"),
                                  (trusting, "127.0.0.1")):
                connection = http.client.HTTPSConnection(
                    host, sandbox.port, timeout=10, context=context)
                with self.assertRaises(ssl.SSLCertVerificationError):
                    connection.request("GET", "/api/v1/balance")
                connection.close()
            client = Client(sandbox.port)
            self.assertEqual(client.control("GET", "/_sandbox/stats")
                             ["internal_errors"], 0)
            client.close()
        finally:
            status, stderr = sandbox.stop()
            directory.cleanup()
        self.assertEqual(status, 0, stderr)
        self.assertNotIn("Traceback", stderr)
        for arguments in (["--tls-cert", cert], ["--tls-key", key]):
            result = subprocess.run([sys.executable, SANDBOX, *arguments],
                                    capture_output=True, text=True,
                                    timeout=10)
            self.assertEqual(result.returncode, 2, arguments)

    def test_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            with socket.socket(socket.AF_INET6) as probe:
                probe.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        sandbox = SandboxProcess("--host", "::1")
        try:
            self.assertEqual(sandbox.first_line,
                             f"sandbox listening on [::1]:{sandbox.port}\n")
            connection = http.client.HTTPConnection("::1", sandbox.port,
                                                    timeout=10)
            connection.request("GET", "/_sandbox/stats")
            self.assertEqual(connection.getresponse().status, 200)
            connection.close()
        finally:
            self.assertEqual(sandbox.stop()[0], 0)


if __name__ == "__main__":
    unittest.main()
