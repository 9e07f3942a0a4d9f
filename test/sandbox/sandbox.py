#!/usr/bin/env python3
"""A sandbox gift-card provider for gifq's tests, demos and benchmarks.

It serves the provider contract of PROVIDER_API.md (catalog, orders,
balance, and webhooks back to the platform) from memory, on the loopback
interface only.  Control endpoints under /_sandbox/ let a test inject
faults, change the catalog, read what the client did and receive gifq's
own outbound events.  README.md beside this file lists every option and
endpoint.

Only the standard library is used, so the sandbox runs wherever gifq's
tests do.  Everything random (faults, asynchronous outcomes, sink
failures) is drawn from one random.Random seeded by --seed, and order ids
and card codes are HMACs keyed by the seed, so a run with a seed repeats
itself as far as the client's own timing allows.
"""

import argparse
import base64
import datetime
import hashlib
import heapq
import hmac
import http.client
import itertools
import json
import os
import queue
import random
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import traceback
from collections import Counter, namedtuple
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

API_PREFIX = "/api/v1/"
ORDER_PREFIX = "/api/v1/orders/"

# The addresses --host accepts, with the family and address to bind.  The
# sandbox hands out gift-card codes and takes any request: it must never
# be reachable from another machine.
LOOPBACK = {
    "127.0.0.1": (socket.AF_INET, "127.0.0.1"),
    "localhost": (socket.AF_INET, "127.0.0.1"),
    "::1": (socket.AF_INET6, "::1"),
}

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"
DEFAULT_BALANCE = Decimal("1000000.00")

# Larger request bodies are refused (413) rather than read into memory.
MAX_BODY_BYTES = 1 << 20

# PROVIDER_API.md: a receiver rejects a timestamp more than 300 s from its
# clock.  The sink applies the same rule to gifq's signatures.
SIGNATURE_TOLERANCE_S = 300

# Webhook deliveries run on a few threads of their own, so that a slow
# receiver delays other deliveries a little but never the API.
DELIVERY_THREADS = 4

FAULT_KINDS = ("5xx", "429", "timeout", "slow", "malformed", "reset",
               "out_of_stock")
# The faults that may strike after the order was created: the client got
# no usable answer and must look the order up before it sends again.
AFTER_CREATE_KINDS = frozenset({"5xx", "timeout", "malformed", "reset"})
# A lookup creates nothing and cannot be out of stock.
LOOKUP_FAULT_KINDS = tuple(k for k in FAULT_KINDS if k != "out_of_stock")
SERVER_ERROR_STATUSES = (500, 502, 503)
# What a 2xx answer with a "malformed" fault before any processing says:
# the start of an order, cut short.
CUT_SHORT_BODY = b'{"order_id": "ord_'

# ISO 4217 currencies whose minor unit is not the cent.  Amounts with more
# decimals than their currency has are never offered.
CURRENCY_DECIMALS = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLP": 0, "ISK": 0, "JPY": 0, "KRW": 0, "PYG": 0, "UGX": 0, "VND": 0,
    "XAF": 0, "XOF": 0,
}

EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Addresses in this domain are refused, so a test can make a recipient
# fail on purpose.
REFUSED_EMAIL_SUFFIX = "@invalid.example"
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_REFERENCE_LENGTH = 200

# The default catalog: fixed and variable-value brands in USD, EUR, GBP
# and JPY, one out of stock, with and without a discount.  The ids are
# those of gifq's own tests and demo.
CATALOG_UPDATED_AT = "2026-11-25T10:00:00Z"
DEFAULT_BRANDS = (
    ("amazon-us", "Amazon", "US", "USD", ["retail"],
     [10, 25, 50, 100, 500], None, None, 3.0, True),
    ("target-us", "Target", "US", "USD", ["retail"],
     [25, 50, 100], None, None, 2.0, True),
    ("visa-us", "Visa Prepaid", "US", "USD", ["prepaid"],
     None, 1, 500, 2.5, True),
    ("cafe-us", "Caf\u00e9 Ol\u00e9", "US", "USD", ["food"],
     None, 5, 100, 5.0, True),
    ("oos-us", "Out of Stock Outfitters", "US", "USD", ["retail"],
     [10, 20], None, None, 0.0, False),
    ("tesco-gb", "Tesco", "GB", "GBP", ["grocery"],
     None, 5, 200, 4.5, True),
    ("fnac-fr", "Fnac", "FR", "EUR", ["retail"],
     [20, 50, 100], None, None, 0.0, True),
    ("sony-jp", "Sony", "JP", "JPY", ["games"],
     [1000, 5000, 10000], None, None, 5.0, True),
)


class ApiError(Exception):
    """An answer with the error body of PROVIDER_API.md."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}

    def reply(self):
        return Reply(self.status,
                     {"error": {"code": self.code, "message": str(self)}},
                     self.headers)


# What an endpoint answers: a status, a JSON document (None: no body at
# all, for 204 and 304) and extra headers.
Reply = namedtuple("Reply", "status payload headers", defaults=(None, {}))

# What an HTTP request gives the endpoint functions.
Request = namedtuple("Request", "query headers raw")

# A fault drawn for one request.  status is the 5xx status; seconds is how
# long a timeout or slow fault waits, or the Retry-After of a 429.
Fault = namedtuple("Fault", "kind after status seconds")

# The fields of an order request that idempotency compares.
OrderRequest = namedtuple(
    "OrderRequest", "reference_id brand_id amount currency recipient_email")


def invalid(message):
    return ApiError(400, "invalid_request", message)


def utc_iso(moment=None):
    """The time (now by default) as PROVIDER_API.md writes it."""
    moment = moment or datetime.datetime.now(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def is_number(value):
    # bool is an int in Python, but true is no amount.
    return isinstance(value, (int, float, Decimal)) and \
        not isinstance(value, bool)


def to_decimal(value):
    """An exact Decimal of a JSON number (float through its shortest repr)."""
    return Decimal(repr(value)) if isinstance(value, float) else \
        Decimal(value)


def json_number(value):
    """json.dumps default: request bodies are parsed with Decimal floats,
    to keep amounts exact, and go out again as plain numbers, whole ones
    (from JSON integers) without a decimal point."""
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else \
            float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(document):
    return json.dumps(document, ensure_ascii=False,
                      default=json_number).encode()


def refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw):
    """The document in a request body; 400 invalid_request if it is not
    JSON.  NaN and Infinity, which Python accepts, are not JSON."""
    try:
        return json.loads(raw.decode(), parse_float=Decimal,
                          parse_constant=refuse_constant)
    except ValueError as e:  # also UnicodeDecodeError
        raise invalid(f"the body is not valid JSON: {e}") from None


def load_object(raw):
    document = load_json(raw)
    if not isinstance(document, dict):
        raise invalid("the body must be a JSON object")
    return document


def sign(secret, body, timestamp):
    """The X-Gifq-Signature header of body: PROVIDER_API.md, Webhooks."""
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret, header, body, now):
    """Whether header signs body with secret at a time within the
    tolerance of now.  Any of several v1 values may match, as a sender
    rotating its secret signs with both."""
    timestamp, digests = None, []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            digests.append(value)
    if timestamp is None or abs(now - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, d) for d in digests)


def etag_matches(header, etag):
    """Whether an If-None-Match header names etag.  The body's etag is
    bare and the ETag header quotes it (RFC 9110), so both spellings
    match, weak or not, as do lists and "*"."""
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate in ("*", etag, f'"{etag}"'):
            return True
    return False


def default_catalog():
    """A fresh copy of the default brands, in the shape of PROVIDER_API.md
    and with exactly the fields gifq_catalog_load accepts."""
    brands = []
    for (brand_id, name, country, currency, categories, denominations,
         min_value, max_value, discount_pct, in_stock) in DEFAULT_BRANDS:
        brands.append({
            "id": brand_id,
            "name": name,
            "country": country,
            "currency": currency,
            "categories": list(categories),
            "denominations": list(denominations) if denominations else None,
            "min_value": min_value,
            "max_value": max_value,
            "discount_pct": discount_pct,
            "in_stock": in_stock,
            "image_url": f"https://cdn.sandbox.example/{brand_id}.png",
            "redemption_instructions":
                f"Redeem at https://redeem.sandbox.example/{brand_id}",
            "updated_at": CATALOG_UPDATED_AT,
        })
    return brands


def catalog_etag(brands):
    """An etag that names the catalog's content: it changes with every
    change and comes back if the content does."""
    canonical = json.dumps(brands, sort_keys=True, default=json_number)
    return "c-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def brand_matches(brand, country, category, currency):
    """Whether brand passes the catalog's filters, lower-cased (None: no
    filter), whatever a test set its fields to."""
    categories = brand.get("categories")
    return (
        (country is None or str(brand.get("country")).lower() == country)
        and (currency is None or
             str(brand.get("currency")).lower() == currency)
        and (category is None or
             (isinstance(categories, list) and
              category in (str(c).lower() for c in categories))))


def offers(brand, amount):
    """Whether brand sells a card of amount, a Decimal.  Brands are served
    as a test set them, so every field is checked before it is used."""
    currency = brand.get("currency")
    decimals = CURRENCY_DECIMALS.get(currency, 2)
    if amount.normalize().as_tuple().exponent < -decimals:
        return False
    denominations = brand.get("denominations")
    if isinstance(denominations, list) and denominations:
        return any(is_number(d) and to_decimal(d) == amount
                   for d in denominations)
    low, high = brand.get("min_value"), brand.get("max_value")
    return is_number(low) and is_number(high) and \
        to_decimal(low) <= amount <= to_decimal(high)


def parse_order_request(document):
    """The fields of an order body, checked; 400 invalid_request names the
    first missing or ill-typed one."""
    def text(name):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise invalid(f"{name} must be a non-empty string")
        return value

    reference_id = text("reference_id")
    if len(reference_id) > MAX_REFERENCE_LENGTH:
        raise invalid(f"reference_id must be at most "
                      f"{MAX_REFERENCE_LENGTH} characters")
    brand_id = text("brand_id")
    amount = document.get("amount")
    if not is_number(amount) or amount <= 0:
        raise invalid("amount must be a positive number")
    currency = text("currency")
    if not CURRENCY_RE.fullmatch(currency):
        raise invalid("currency must be an ISO 4217 code such as USD")
    if not isinstance(document.get("recipient_email"), str):
        raise invalid("recipient_email must be a string")
    return OrderRequest(reference_id, brand_id, to_decimal(amount), currency,
                        document["recipient_email"])


# Settings: name -> (default, check).  A check returns the value to keep or
# raises invalid().

def check_ratio(name, value):
    if not is_number(value) or not 0 <= value <= 1:
        raise invalid(f"{name} must be a number from 0 to 1")
    return float(value)


def check_count(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid(f"{name} must be a whole number, 0 or more")
    return value


def check_flag(name, value):
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value


def check_url(name, value):
    if value is None:
        return None
    if not isinstance(value, str) or \
            urlsplit(value).scheme not in ("http", "https") or \
            not urlsplit(value).hostname:
        raise invalid(f"{name} must be an http or https URL, or null")
    return value


def check_secret(name, value):
    if not isinstance(value, str) or not value:
        raise invalid(f"{name} must be a non-empty string")
    return value


def check_optional_secret(name, value):
    return None if value is None else check_secret(name, value)


def check_location(name, value):
    """Any URL at all, or null: a redirect fault tests that the client
    follows none, to file: or gopher: least of all."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or \
            any(c in value for c in "\r\n"):
        raise invalid(f"{name} must be a URL on one line, or null")
    return value


def check_amount(name, value):
    if not is_number(value) or value < 0:
        raise invalid(f"{name} must be a number, 0 or more")
    return to_decimal(value).quantize(Decimal("0.01"))


FAULT_SETTINGS = {
    **{kind: (0.0, check_ratio) for kind in FAULT_KINDS},
    "after_create_ratio": (0.5, check_ratio),
    "apply_to_lookups": (False, check_flag),
    "retry_after": (1, check_count),
    "timeout_ms": (30000, check_count),
    "slow_ms": (2000, check_count),
    "unauthorized": (False, check_flag),
    "insufficient_funds": (False, check_flag),
    "huge_bytes": (0, check_count),
    "redirect_to": (None, check_location),
}

CONFIG_SETTINGS = {
    "async_ratio": (0.0, check_ratio),
    "async_delay_ms": (1000, check_count),
    "async_fail_ratio": (0.0, check_ratio),
    "webhook_url": (None, check_url),
    "webhook_secret": (DEFAULT_WEBHOOK_SECRET, check_secret),
    "webhook_retry_base_ms": (1000, check_count),
    "webhook_give_up_ms": (24 * 3600 * 1000, check_count),
    "webhook_timeout_ms": (5000, check_count),
    "balance": (DEFAULT_BALANCE, check_amount),
    "rate_limit": (0, check_count),
    "idempotency": (True, check_flag),
    "sink_secret": (None, check_optional_secret),
    "sink_fail_ratio": (0.0, check_ratio),
}


def apply_settings(spec, document, base):
    """base updated with the settings of document, each checked; unknown
    names are refused so that a typo in a test cannot pass silently."""
    if not isinstance(document, dict):
        raise invalid("settings must be a JSON object")
    unknown = sorted(set(document) - set(spec))
    if unknown:
        raise invalid(f"unknown setting {unknown[0]!r}; known: "
                      f"{', '.join(sorted(spec))}")
    settings = dict(base)
    for name, value in document.items():
        settings[name] = spec[name][1](name, value)
    return settings


def fault_settings(document):
    """A complete fault configuration from document: what it leaves out
    takes its default, as POST /_sandbox/faults replaces the whole set."""
    defaults = {name: default for name, (default, _) in
                FAULT_SETTINGS.items()}
    faults = apply_settings(FAULT_SETTINGS, document, defaults)
    if sum(faults[kind] for kind in FAULT_KINDS) > 1:
        raise invalid("the fault probabilities add up to more than 1")
    return faults


def config_settings(document, base=None):
    if base is None:
        base = {name: default for name, (default, _) in
                CONFIG_SETTINGS.items()}
    return apply_settings(CONFIG_SETTINGS, document, base)


class Order:
    """One order (one card) at the provider."""

    def __init__(self, order_id, request, cost, created_at):
        self.order_id = order_id
        self.request = request
        self.cost = cost
        self.created_at = created_at
        self.status = "processing"
        self.gift_card = None
        self.error = None
        self.redeemed_at = None

    def payload(self):
        """The order as the API returns it, and as webhooks carry it."""
        request = self.request
        document = {
            "order_id": self.order_id,
            "reference_id": request.reference_id,
            "status": self.status,
            "brand_id": request.brand_id,
            "amount": request.amount,
            "currency": request.currency,
            "created_at": self.created_at,
        }
        if self.gift_card:
            document["gift_card"] = self.gift_card
        if self.error:
            document["error"] = self.error
        if self.redeemed_at:
            document["redeemed_at"] = self.redeemed_at
        return document


class Webhook:
    """One event sent to the platform, with its delivery state."""

    def __init__(self, event_id, event_type, body, secret, url, signature):
        self.event_id = event_id
        self.event_type = event_type
        self.body = body
        self.secret = secret
        self.url = url
        self.signature = signature
        self.delivered = False
        self.attempts = 0
        self.gave_up = False
        self.last_error = None
        self.first_attempt = None

    def public(self):
        return {
            "id": self.event_id,
            "type": self.event_type,
            "body": self.body.decode(),
            "signature": self.signature,
            "url": self.url,
            "delivered": self.delivered,
            "attempts": self.attempts,
            "gave_up": self.gave_up,
            "last_error": self.last_error,
        }


class Scheduler:
    """Runs callbacks at monotonic times, on one daemon thread.

    Asynchronous orders and webhook retries are many short timers: a heap
    and one thread keep thousands of them cheap, where a threading.Timer
    each would be a thread each.  Callbacks must be quick.
    """

    def __init__(self, on_error):
        self._heap = []
        self._order = itertools.count()  # ties never compare callbacks
        self._wakeup = threading.Condition()
        self._on_error = on_error
        threading.Thread(target=self._run, name="scheduler",
                         daemon=True).start()

    def call_at(self, when, callback):
        with self._wakeup:
            heapq.heappush(self._heap, (when, next(self._order), callback))
            self._wakeup.notify()

    def _run(self):
        while True:
            with self._wakeup:
                while not self._heap or \
                        self._heap[0][0] > time.monotonic():
                    timeout = (self._heap[0][0] - time.monotonic()
                               if self._heap else None)
                    self._wakeup.wait(timeout)
                callback = heapq.heappop(self._heap)[2]
            try:
                callback()
            except Exception:  # a bug must not stop every later timer
                self._on_error()


class Sandbox:
    """The provider's state and every endpoint's logic, free of HTTP.

    One lock guards all state, the random generator included, so draws
    happen in request order.  Nothing sleeps or does I/O under it.
    Endpoint methods take a Request and return a Reply or raise ApiError.
    """

    def __init__(self, api_key, seed, faults, config, quiet):
        self.api_key = api_key.encode()
        self.seed = seed
        self.quiet = quiet
        self.start_faults = faults
        self.start_config = config
        # Order ids and card codes are HMACs under this key: repeatable
        # with a seed, unguessable without.
        self.code_key = (hashlib.sha256(f"gifq-sandbox:{seed}".encode())
                         .digest() if seed is not None else os.urandom(32))
        self.lock = threading.Lock()
        self.in_flight = 0
        self.scheduler = Scheduler(self.internal_error)
        self.deliveries = queue.Queue()
        for n in range(DELIVERY_THREADS):
            threading.Thread(target=self._deliver_forever,
                             name=f"webhook-{n}", daemon=True).start()
        with self.lock:
            self.generation = 0
            self._clear()

    def _clear(self):
        """Back to the start-up state (lock held).  Timers and deliveries
        already queued check the generation and drop themselves."""
        self.generation += 1
        self.rng = random.Random(self.seed)
        self.faults = dict(self.start_faults)
        self.config = dict(self.start_config)
        self.balance = self.config.pop("balance")
        self.brands = default_catalog()
        self.etag = catalog_etag(self.brands)
        self.orders = {}            # order_id -> Order
        self.by_reference = {}      # reference_id -> [Order], oldest first
        self.posts = Counter()      # reference_id -> POSTs received
        self.created = Counter()    # reference_id -> orders created
        self.cards = Counter()      # reference_id -> cards issued
        self.webhooks = {}          # event id -> Webhook, in order sent
        self.sink = []
        self.counts = Counter()
        self.by_endpoint = Counter()
        self.faults_injected = Counter()
        self.max_in_flight = self.in_flight
        self.window = (None, 0)     # (second, API requests in it)
        self.max_per_second = 0

    def chance(self, probability):
        """A draw (lock held).  0 and 1 draw nothing, so switching one
        setting fully on or off leaves the sequence of the others."""
        if probability <= 0:
            return False
        if probability >= 1:
            return True
        return self.rng.random() < probability

    def internal_error(self):
        """Counts and prints the exception being handled: a sandbox bug."""
        with self.lock:
            self.counts["internal_errors"] += 1
        traceback.print_exc()

    # -- the provider API ------------------------------------------------

    def enter_api(self, endpoint):
        """Counts a provider API request that starts being handled."""
        second = int(time.time())
        with self.lock:
            self.counts["requests"] += 1
            self.by_endpoint[endpoint] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            current, count = self.window
            count = count + 1 if current == second else 1
            self.window = (second, count)
            self.max_per_second = max(self.max_per_second, count)

    def leave_api(self):
        with self.lock:
            self.in_flight -= 1

    def admit(self, request):
        """Rate limit, then authentication, for every API request."""
        supplied = request.headers.get("Authorization", "").encode()
        with self.lock:
            limit = self.config["rate_limit"]
            if limit and self.window[1] > limit:
                # Requests are counted per whole second of the clock: the
                # next second starts afresh.
                raise ApiError(429, "rate_limited",
                               f"more than {limit} requests in one second",
                               {"Retry-After": "1"})
            unauthorized = self.faults["unauthorized"]
        if unauthorized or not hmac.compare_digest(
                supplied, b"Bearer " + self.api_key):
            raise ApiError(401, "unauthorized", "bad or revoked API key")

    def forced_answer(self):
        """The answer every admitted API request gets while the huge_bytes
        or redirect_to fault is set, instead of its own: ("redirect", URL)
        or ("huge", size); None when neither is set.  Nothing is
        processed, so no order is created."""
        with self.lock:
            if self.faults["redirect_to"] is not None:
                self.faults_injected["redirect"] += 1
                return ("redirect", self.faults["redirect_to"])
            if self.faults["huge_bytes"]:
                self.faults_injected["huge"] += 1
                return ("huge", self.faults["huge_bytes"])
        return None

    def draw_fault(self, lookup):
        """The fault for one order POST or lookup, or None."""
        with self.lock:
            faults = self.faults
            if lookup and not faults["apply_to_lookups"]:
                return None
            kinds = LOOKUP_FAULT_KINDS if lookup else FAULT_KINDS
            if not any(faults[kind] for kind in kinds):
                return None
            draw, kind = self.rng.random(), None
            for candidate in kinds:
                draw -= faults[candidate]
                if draw < 0:
                    kind = candidate
                    break
            if kind is None:
                return None
            # A lookup changes nothing, so it can always be processed
            # first and its answer spoiled.
            after = kind in AFTER_CREATE_KINDS and (
                lookup or self.chance(faults["after_create_ratio"]))
            status = (self.rng.choice(SERVER_ERROR_STATUSES)
                      if kind == "5xx" else None)
            seconds = {"429": faults["retry_after"],
                       "timeout": faults["timeout_ms"] / 1000,
                       "slow": faults["slow_ms"] / 1000}.get(kind)
            self.faults_injected[kind] += 1
            if after:
                self.counts["faults_after_create"] += 1
            return Fault(kind, after, status, seconds)

    def catalog(self, request):
        """GET /api/v1/catalog[?country=&category=&currency=]."""
        def wanted(name):
            values = request.query.get(name)
            return values[0].lower() if values else None

        country, category = wanted("country"), wanted("category")
        currency = wanted("currency")
        if_none_match = request.headers.get("If-None-Match")
        with self.lock:
            etag = self.etag
            headers = {"ETag": f'"{etag}"'}
            if if_none_match and etag_matches(if_none_match, etag):
                return Reply(304, None, headers)
            brands = [brand for brand in self.brands
                      if brand_matches(brand, country, category, currency)]
            # Serialised under the lock: a concurrent patch must not
            # change a brand half-way through.
            body = to_json({"brands": brands, "etag": etag})
        return Reply(200, body, headers)

    def count_order_post(self, request):
        """Counts an order POST by its reference, before anything (rate
        limit, key, fault) can refuse it: the counts show what the client
        sent, retries included."""
        try:
            reference = load_object(request.raw).get("reference_id")
        except ApiError:
            reference = None
        with self.lock:
            self.counts["orders_posted"] += 1
            if isinstance(reference, str):
                self.posts[reference] += 1

    def create_order(self, request):
        """POST /api/v1/orders.  The checks come in a fixed order, so each
        error code is reachable on purpose."""
        order_request = parse_order_request(load_object(request.raw))
        reference = order_request.reference_id
        if request.headers.get("Idempotency-Key") != reference:
            raise invalid("the Idempotency-Key header must equal "
                          "reference_id")
        with self.lock:
            earlier = self.by_reference.get(reference)
            if earlier and self.config["idempotency"]:
                if earlier[-1].request != order_request:
                    raise ApiError(409, "idempotency_conflict",
                                   f"reference_id {reference!r} was used "
                                   "with another body")
                self.counts["replays"] += 1
                return Reply(200, earlier[-1].payload())
            brand = next((b for b in self.brands
                          if b.get("id") == order_request.brand_id), None)
            if brand is None:
                raise ApiError(404, "unknown_brand",
                               f"no brand {order_request.brand_id!r} in "
                               "the catalog")
            self._check_offer(brand, order_request)
            cost = self._cost(brand, order_request.amount)
            if self.faults["insufficient_funds"] or cost > self.balance:
                raise ApiError(402, "insufficient_funds",
                               f"the prepaid balance does not cover a "
                               f"cost of {cost}")
            return Reply(201, self._new_order(order_request, cost).payload())

    def _check_offer(self, brand, order_request):
        """The catalog checks of a new order (lock held)."""
        brand_id, amount = order_request.brand_id, order_request.amount
        if not offers(brand, amount):
            raise ApiError(422, "invalid_denomination",
                           f"brand {brand_id!r} does not sell a card of "
                           f"{amount}")
        if order_request.currency != brand.get("currency"):
            raise invalid(f"brand {brand_id!r} sells cards in "
                          f"{brand.get('currency')}, not "
                          f"{order_request.currency}")
        if brand.get("in_stock") is False:
            raise ApiError(422, "out_of_stock",
                           f"brand {brand_id!r} is out of stock")
        email = order_request.recipient_email
        if not EMAIL_RE.fullmatch(email) or \
                email.lower().endswith(REFUSED_EMAIL_SUFFIX):
            raise ApiError(422, "invalid_recipient",
                           f"recipient {email!r} was rejected")

    @staticmethod
    def _cost(brand, amount):
        """What the platform pays: face value less the brand's discount,
        to the cent.  One balance for every currency keeps it simple."""
        discount = brand.get("discount_pct")
        discount = to_decimal(discount) if is_number(discount) else 0
        return (amount * (100 - discount) / 100).quantize(
            Decimal("0.01"), ROUND_HALF_EVEN)

    def _new_order(self, order_request, cost):
        """Creates an order and pays for it (lock held): delivered now, or
        processing and settled by a timer."""
        reference = order_request.reference_id
        serial = self.created[reference]
        digest = self._digest("order", reference, serial)
        order = Order("ord_" + digest.hex()[:16], order_request, cost,
                      utc_iso())
        self.orders[order.order_id] = order
        self.by_reference.setdefault(reference, []).append(order)
        self.created[reference] += 1
        self.counts["orders_created"] += 1
        self.balance -= cost
        if self.chance(self.config["async_ratio"]):
            fails = self.chance(self.config["async_fail_ratio"])
            generation = self.generation
            self.scheduler.call_at(
                time.monotonic() + self.config["async_delay_ms"] / 1000,
                lambda: self._settle(order, fails, generation))
        else:
            self._deliver_card(order, serial)
        return order

    def _digest(self, *parts):
        message = "\0".join(str(p) for p in parts).encode()
        return hmac.new(self.code_key, message, hashlib.sha256).digest()

    def _deliver_card(self, order, serial):
        """Issues order's card (lock held).  The code comes from the
        reference and how many cards it already had, so a replay never
        needs it again and a duplicate gets a card of its own."""
        request = order.request
        digest = self._digest("card", request.reference_id, serial)
        letters = base64.b32encode(digest).decode()
        issued = datetime.date.today()
        order.status = "delivered"
        order.gift_card = {
            "code": "SBX-" + "-".join(letters[i:i + 4] for i in (0, 4, 8)),
            "pin": f"{int.from_bytes(digest[-4:], 'big') % 10000:04d}",
            "redemption_url": "https://redeem.sandbox.example/"
                              + quote(request.brand_id, safe=""),
            "expiry_date": (issued + datetime.timedelta(days=3 * 365))
            .isoformat(),
            "wallet_links": {
                "apple_wallet":
                    f"https://wallet.sandbox.example/apple/{order.order_id}",
                "google_pay":
                    f"https://wallet.sandbox.example/google/{order.order_id}",
            },
        }
        self.cards[request.reference_id] += 1
        self.counts["cards_issued"] += 1

    def _settle(self, order, fails, generation):
        """Ends an asynchronous order and tells the platform."""
        with self.lock:
            if generation != self.generation:
                return
            if fails:
                order.status = "failed"
                order.error = {"code": "out_of_stock",
                               "message": "the brand ran out of stock "
                                          "before the card was issued"}
                # A failed order costs nothing: the provider gives the
                # money back.
                self.balance += order.cost
                self._emit("order.failed", order.payload())
            else:
                serial = self.by_reference[
                    order.request.reference_id].index(order)
                self._deliver_card(order, serial)
                self._emit("order.delivered", order.payload())

    def order_by_id(self, order_id):
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise ApiError(404, "not_found", f"no order {order_id!r}")
            return Reply(200, order.payload())

    def order_by_reference(self, request):
        """GET /api/v1/orders?reference_id=X: the latest order made with
        the reference (there is more than one only with idempotency off)."""
        values = request.query.get("reference_id")
        if not values or not values[0]:
            raise invalid("reference_id is required")
        with self.lock:
            orders = self.by_reference.get(values[0])
            if not orders:
                raise ApiError(404, "not_found",
                               f"no order with reference_id {values[0]!r}")
            return Reply(200, orders[-1].payload())

    def get_balance(self, request):
        with self.lock:
            return Reply(200, {"currency": "USD", "available": self.balance})

    # -- webhooks --------------------------------------------------------

    def _emit(self, event_type, data):
        """Logs a webhook event and queues its delivery (lock held)."""
        event_id = "evt_" + os.urandom(12).hex()
        body = to_json({"id": event_id, "type": event_type,
                        "created_at": utc_iso(), "data": data})
        secret = self.config["webhook_secret"]
        webhook = Webhook(event_id, event_type, body, secret,
                          self.config["webhook_url"],
                          sign(secret, body, int(time.time())))
        self.webhooks[event_id] = webhook
        if webhook.url:
            self.deliveries.put((webhook, self.generation))
        return webhook

    def _deliver_forever(self):
        while True:
            webhook, generation = self.deliveries.get()
            try:
                self._attempt(webhook, generation)
            except Exception:  # a bug must not stop deliveries
                self.internal_error()

    def _attempt(self, webhook, generation):
        """One delivery attempt; schedules the next after a failure."""
        with self.lock:
            if generation != self.generation:
                return
            now = time.monotonic()
            if webhook.first_attempt is None:
                webhook.first_attempt = now
            webhook.attempts += 1
            attempt = webhook.attempts
            # Signed afresh on every attempt: a receiver refuses a
            # timestamp more than 300 s old, and retries last longer.
            webhook.signature = sign(webhook.secret, webhook.body,
                                     int(time.time()))
            headers = {"Content-Type": "application/json",
                       "X-Gifq-Signature": webhook.signature}
            timeout = self.config["webhook_timeout_ms"] / 1000
            base = self.config["webhook_retry_base_ms"] / 1000
            give_up = self.config["webhook_give_up_ms"] / 1000
        error = post(webhook.url, webhook.body, headers, timeout)
        with self.lock:
            if generation != self.generation:
                return
            webhook.last_error = error
            if error is None:
                webhook.delivered = True
                return
            delay = base * 2 ** (attempt - 1)
            if time.monotonic() + delay - webhook.first_attempt > give_up:
                webhook.gave_up = True
                return
        self.scheduler.call_at(
            time.monotonic() + delay,
            lambda: self.deliveries.put((webhook, generation)))

    # -- control endpoints -----------------------------------------------

    def get_faults(self, request):
        with self.lock:
            return Reply(200, dict(self.faults))

    def set_faults(self, request):
        faults = fault_settings(load_json(request.raw))
        with self.lock:
            self.faults = faults
            return Reply(200, dict(faults))

    def get_config(self, request):
        with self.lock:
            return Reply(200, {**self.config, "balance": self.balance})

    def set_config(self, request):
        document = load_json(request.raw)
        with self.lock:
            config = config_settings(
                document, {**self.config, "balance": self.balance})
            self.balance = config.pop("balance")
            self.config = config
            return Reply(200, {**config, "balance": self.balance})

    def change_catalog(self, request):
        """POST /_sandbox/catalog: {"brands": [...]} replaces the catalog,
        {"patch": {id: {field: value}}} changes brands, {"remove": [id]}
        discontinues them; together, in that order.  Brands are kept as
        given, so a test can serve a catalog gifq must refuse."""
        document = load_object(request.raw)
        unknown = set(document) - {"brands", "patch", "remove"}
        if unknown or not document:
            raise invalid('expected "brands", "patch" and/or "remove"')
        with self.lock:
            brands = self._changed_brands(document)
            old = {b.get("id"): b for b in self.brands}
            new = {b.get("id"): b for b in brands}
            etag, self.brands = catalog_etag(brands), brands
            event_id = None
            if etag != self.etag:
                self.etag = etag
                event_id = self._emit("catalog.updated", {
                    "etag": etag,
                    "added": sorted(set(new) - set(old)),
                    "changed": sorted(i for i in set(new) & set(old)
                                      if new[i] != old[i]),
                    "removed": sorted(set(old) - set(new)),
                }).event_id
            return Reply(200, {"etag": etag, "brands": len(brands),
                               "event_id": event_id})

    def _changed_brands(self, document):
        """The catalog after the changes of document, every change checked
        before any is kept (lock held)."""
        brands = document.get("brands", self.brands)
        if not isinstance(brands, list) or not all(
                isinstance(b, dict) and isinstance(b.get("id"), str) and
                b["id"] for b in brands):
            raise invalid('"brands" must be a list of objects with an id')
        ids = [b["id"] for b in brands]
        if len(set(ids)) != len(ids):
            raise invalid('"brands" lists an id twice')
        by_id = {b["id"]: dict(b) for b in brands}
        patch = document.get("patch", {})
        if not isinstance(patch, dict) or not all(
                isinstance(fields, dict) for fields in patch.values()):
            raise invalid('"patch" must map brand ids to objects')
        for brand_id, fields in patch.items():
            if brand_id not in by_id:
                raise invalid(f"cannot patch unknown brand {brand_id!r}")
            if "id" in fields:
                raise invalid("a patch cannot change a brand's id")
            brand = by_id[brand_id]
            if any(brand.get(k, object()) != v for k, v in fields.items()):
                brand.update(fields)
                if "updated_at" not in fields:
                    brand["updated_at"] = utc_iso()
        remove = document.get("remove", [])
        if not isinstance(remove, list) or \
                not all(isinstance(i, str) for i in remove):
            raise invalid('"remove" must be a list of brand ids')
        for brand_id in remove:
            if by_id.pop(brand_id, None) is None:
                raise invalid(f"cannot remove unknown brand {brand_id!r}")
        return list(by_id.values())

    def redeem_card(self, request):
        """POST /_sandbox/redeem_card {"reference_id": X}: the recipient
        spends the card; the platform hears of it by webhook."""
        reference = load_object(request.raw).get("reference_id")
        if not isinstance(reference, str):
            raise invalid("reference_id must be a string")
        with self.lock:
            orders = self.by_reference.get(reference)
            if not orders:
                raise ApiError(404, "not_found",
                               f"no order with reference_id {reference!r}")
            order = orders[-1]
            if order.status != "delivered" or order.redeemed_at:
                raise ApiError(409, "not_redeemable",
                               f"order {order.order_id} is {order.status}"
                               + (", redeemed" if order.redeemed_at else ""))
            order.redeemed_at = utc_iso()
            webhook = self._emit("card.redeemed", order.payload())
            return Reply(200, {"order": order.payload(),
                               "event_id": webhook.event_id})

    def get_webhooks(self, request):
        with self.lock:
            return Reply(200, [w.public() for w in self.webhooks.values()])

    def get_orders(self, request):
        with self.lock:
            return Reply(200, [{
                "reference_id": order.request.reference_id,
                "order_id": order.order_id,
                "status": order.status,
                "brand_id": order.request.brand_id,
                "amount": order.request.amount,
                "currency": order.request.currency,
                "created_at": order.created_at,
                "posts": self.posts[order.request.reference_id],
                "created": self.created[order.request.reference_id],
            } for order in self.orders.values()])

    def get_stats(self, request):
        with self.lock:
            counts = self.counts
            return Reply(200, {
                "requests": counts["requests"],
                "by_endpoint": dict(self.by_endpoint),
                "orders_posted": counts["orders_posted"],
                "orders_created": counts["orders_created"],
                "replays": counts["replays"],
                "cards_issued": counts["cards_issued"],
                "references": len(self.posts),
                "duplicates": sorted(r for r, n in self.cards.items()
                                     if n > 1),
                "posts_per_reference_max": max(self.posts.values(),
                                               default=0),
                "faults_injected": dict(self.faults_injected),
                "faults_after_create": counts["faults_after_create"],
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "max_requests_in_any_second": self.max_per_second,
                "internal_errors": counts["internal_errors"],
            })

    def reset(self, request):
        with self.lock:
            self._clear()
        return Reply(200, {"reset": True})

    def receive_sink(self, request):
        """POST /_sandbox/sink: one of gifq's outbound events."""
        signature = request.headers.get("X-Gifq-Signature")
        with self.lock:
            secret = self.config["sink_secret"]
            status = 503 if self.chance(self.config["sink_fail_ratio"]) \
                else 204
            self.sink.append({
                "signature": signature,
                "body": request.raw.decode("utf-8", "replace"),
                "received_at": utc_iso(),
                "valid": (verify(secret, signature, request.raw,
                                 int(time.time()))
                          if secret is not None else None),
                "status": status,
            })
        if status == 503:
            raise ApiError(503, "provider_error", "sink failure injected")
        return Reply(204)

    def get_sink(self, request):
        with self.lock:
            return Reply(200, list(self.sink))


def post(url, body, headers, timeout):
    """POSTs body to url; None on a 2xx answer, else what went wrong.
    http.client rather than urllib, which would honour the proxy
    variables of the environment and send a local event through a proxy."""
    parts = urlsplit(url)
    connection_class = (http.client.HTTPSConnection
                        if parts.scheme == "https"
                        else http.client.HTTPConnection)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = connection_class(parts.hostname, parts.port,
                                  timeout=timeout)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        return None if 200 <= response.status < 300 else \
            f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        connection.close()


# Control endpoints: (method, path) -> Sandbox method.
CONTROL_ROUTES = {
    ("GET", "/_sandbox/faults"): Sandbox.get_faults,
    ("POST", "/_sandbox/faults"): Sandbox.set_faults,
    ("GET", "/_sandbox/config"): Sandbox.get_config,
    ("POST", "/_sandbox/config"): Sandbox.set_config,
    ("POST", "/_sandbox/catalog"): Sandbox.change_catalog,
    ("POST", "/_sandbox/redeem_card"): Sandbox.redeem_card,
    ("GET", "/_sandbox/webhooks"): Sandbox.get_webhooks,
    ("GET", "/_sandbox/orders"): Sandbox.get_orders,
    ("GET", "/_sandbox/stats"): Sandbox.get_stats,
    ("POST", "/_sandbox/reset"): Sandbox.reset,
    ("POST", "/_sandbox/sink"): Sandbox.receive_sink,
    ("GET", "/_sandbox/sink"): Sandbox.get_sink,
}
KNOWN_PATHS = {path for _, path in CONTROL_ROUTES} | {
    "/api/v1/catalog", "/api/v1/orders", "/api/v1/balance"}


class SandboxHandler(BaseHTTPRequestHandler):
    """HTTP for the Sandbox: routing, bodies and fault injection."""

    # HTTP/1.1 keeps connections open, which every answer's
    # Content-Length makes possible.
    protocol_version = "HTTP/1.1"
    server_version = "gifq-sandbox"
    # Headers and body are two writes; without TCP_NODELAY the second
    # waits for the client's delayed ACK, some 40 ms a request.
    disable_nagle_algorithm = True

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError):
            # The client hung up mid-answer, as clients that time out on a
            # slow or timeout fault do: nothing to tell it any more.
            self.close_connection = True

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):
        if not self.server.sandbox.quiet:
            super().log_message(format, *args)

    def _handle(self, method):
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        try:
            raw = self._read_body()
        except ApiError as e:
            # The rest of the body is still on the wire: the connection
            # cannot carry another request.
            self.close_connection = True
            self._send(e.reply())
            return
        request = Request(parse_qs(url.query), self.headers, raw)
        try:
            if url.path.startswith(API_PREFIX):
                self._handle_api(sandbox, method, url.path, request)
            else:
                route = CONTROL_ROUTES.get((method, url.path))
                if route is None:
                    raise self._no_route(method, url.path)
                self._send(route(sandbox, request))
        except ApiError as e:
            self._send(e.reply())
        except (ConnectionError, ssl.SSLError):
            # The client hung up while the answer was being written (a
            # client that caps answers closes a huge one early): nothing to
            # answer, and not a sandbox bug.
            self.close_connection = True
        except Exception:
            sandbox.internal_error()
            self._send(ApiError(500, "provider_error",
                                "sandbox internal error").reply())

    def _handle_api(self, sandbox, method, path, request):
        """A provider API request: counted, admitted, answered."""
        order_id = (path[len(ORDER_PREFIX):]
                    if path.startswith(ORDER_PREFIX) else None)
        if order_id and method == "GET":
            endpoint = "GET /api/v1/orders/{order_id}"
        elif path == "/api/v1/orders" and method == "GET":
            endpoint = "GET /api/v1/orders?reference_id"
        elif path in KNOWN_PATHS:
            endpoint = f"{method} {path}"
        else:
            endpoint = "other"
        sandbox.enter_api(endpoint)
        try:
            if endpoint == "POST /api/v1/orders":
                sandbox.count_order_post(request)
            sandbox.admit(request)
            forced = sandbox.forced_answer()
            if forced is not None:
                self._send_forced(*forced)
            elif endpoint == "POST /api/v1/orders":
                self._with_faults(sandbox, False, 201,
                                  lambda: sandbox.create_order(request))
            elif endpoint == "GET /api/v1/orders/{order_id}":
                self._with_faults(sandbox, True, 200,
                                  lambda: sandbox.order_by_id(order_id))
            elif endpoint == "GET /api/v1/orders?reference_id":
                self._with_faults(
                    sandbox, True, 200,
                    lambda: sandbox.order_by_reference(request))
            elif endpoint == "GET /api/v1/catalog":
                self._send(sandbox.catalog(request))
            elif endpoint == "GET /api/v1/balance":
                self._send(sandbox.get_balance(request))
            else:
                raise self._no_route(method, path)
        except ApiError as e:
            self._send(e.reply())
        finally:
            sandbox.leave_api()

    @staticmethod
    def _no_route(method, path):
        order_path = path.startswith(ORDER_PREFIX) and path != ORDER_PREFIX
        if path in KNOWN_PATHS or order_path:
            return ApiError(405, "invalid_request",
                            f"{method} is not allowed on {path}")
        return ApiError(404, "not_found", f"no endpoint {path}")

    def _with_faults(self, sandbox, lookup, ok_status, work):
        """Answers with work(), or with the fault drawn for this request:
        before work() runs, or after it, when the answer is lost."""
        fault = sandbox.draw_fault(lookup)
        if fault is None:
            self._send(run(work))
        elif fault.kind == "slow":
            # Processed first: an order a slow answer is about is there
            # for a client that gave up and looks it up.
            reply = run(work)
            time.sleep(fault.seconds)
            self._send(reply)
        else:
            self._inject(fault, run(work) if fault.after else None,
                         ok_status)

    def _inject(self, fault, reply, ok_status):
        """Sends the fault's answer, or none at all.  reply is what the
        request got if it was processed before the fault struck."""
        self.log_message("fault %s%s on %s", fault.kind,
                         " after processing" if fault.after else "",
                         self.requestline)
        if fault.kind == "5xx":
            self._send(ApiError(fault.status, "provider_error",
                                "transient provider fault").reply())
        elif fault.kind == "429":
            self._send(ApiError(429, "rate_limited", "slow down",
                                {"Retry-After": str(fault.seconds)}).reply())
        elif fault.kind == "out_of_stock":
            self._send(ApiError(422, "out_of_stock",
                                "out of stock right now").reply())
        elif fault.kind == "malformed":
            if reply is None:
                status, body = ok_status, CUT_SHORT_BODY
            else:
                body = encode(reply.payload)
                status = reply.status if 200 <= reply.status < 300 \
                    else ok_status
                body = body[:len(body) // 2]
            self._send(Reply(status, body))
        elif fault.kind == "timeout":
            time.sleep(fault.seconds)
            self.close_connection = True
        elif fault.kind == "reset":
            # A zero linger time makes close() send RST, not FIN, as a
            # crashed proxy would.  The socket only closes once its file
            # objects have.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
            self.close_connection = True

    def _send_forced(self, kind, value):
        """A redirect_to or huge_bytes fault's answer."""
        self.log_message("fault %s on %s", kind, self.requestline)
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # A JSON document of exactly value bytes, written a piece at a
        # time: the client hangs up once it has had enough.
        head, tail = b'{"padding": "', b'"}'
        fill = max(0, value - len(head) - len(tail))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(head) + fill + len(tail)))
        self.end_headers()
        self.wfile.write(head)
        piece = b"x" * 65536
        while fill > 0:
            self.wfile.write(piece[:fill])
            fill -= len(piece)
        self.wfile.write(tail)

    def _read_body(self):
        """The request body, whole: by Content-Length or chunked (as curl
        sends a body of unknown length)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            raise invalid("bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            raise ApiError(413, "invalid_request", "the body is too large")
        return self.rfile.read(int(length))

    def _read_chunked(self):
        chunks, size = [], 0
        while True:
            line = self.rfile.readline(100).split(b";")[0].strip()
            try:
                length = int(line, 16)
            except ValueError:
                raise invalid("bad chunk size") from None
            size += length
            if size > MAX_BODY_BYTES:
                raise ApiError(413, "invalid_request",
                               "the body is too large")
            if length == 0:
                break
            chunks.append(self.rfile.read(length))
            self.rfile.readline(3)  # the CRLF after the chunk
        while self.rfile.readline(8192).strip():
            pass  # trailer fields, unused
        return b"".join(chunks)

    def _send(self, reply):
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        # RFC 9110: 204 and 304 answers have no body and no
        # Content-Length of their own.
        if reply.payload is None:
            self.end_headers()
            return
        body = encode(reply.payload)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def run(work):
    """work()'s Reply, or the Reply of the ApiError it raised."""
    try:
        return work()
    except ApiError as e:
        return e.reply()


def encode(payload):
    """A payload as body bytes; bytes are already a body."""
    return payload if isinstance(payload, bytes) else to_json(payload)


class SandboxServer(ThreadingHTTPServer):
    """A thread per connection; the threads are daemons, so that a client
    holding a connection open never delays shutdown."""

    daemon_threads = True
    # Many concurrent clients connect at once in the concurrency tests.
    request_queue_size = 128

    def __init__(self, address, family, sandbox, tls=None):
        self.address_family = family
        self.sandbox = sandbox
        self.tls = tls
        super().__init__(address, SandboxHandler)

    def finish_request(self, request, client_address):
        """With --tls-cert, a connection that opens with a TLS handshake
        (first byte 0x16) is served over TLS, any other in plain HTTP: the
        client under test gets https while the tests' own control
        requests, which may have no TLS library, keep to http.  Runs on
        the connection's own thread, so a slow handshake holds up no
        other client."""
        if self.tls is None or request.recv(1, socket.MSG_PEEK) != b"\x16":
            super().finish_request(request, client_address)
            return
        wrapped = self.tls.wrap_socket(request, server_side=True)
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request, client_address):
        # A client that refuses the certificate (as it should when it does
        # not trust it) ends the handshake: not the sandbox's error.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)

    def server_bind(self):
        # HTTPServer's own would look the address up in DNS (getfqdn) only
        # to name itself, which can stall where there is no resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def write_atomically(path, text):
    """Writes text to path so that a reader sees the whole file or none:
    a runner polls the port file while the sandbox starts."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Sandbox gift-card provider for gifq (PROVIDER_API.md).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="127.0.0.1 (default), localhost or ::1; "
                             "nothing else")
    parser.add_argument("--port", type=int, default=0,
                        help="port to listen on; 0 (default) picks a free "
                             "one")
    parser.add_argument("--port-file", metavar="PATH",
                        help="write the port here once listening")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY,
                        help="the Bearer key the API requires "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int,
                        help="seed for faults, asynchronous outcomes and "
                             "codes; repeatable runs")
    parser.add_argument("--webhook-url",
                        help="where to POST webhooks (default: only log)")
    parser.add_argument("--webhook-secret",
                        help="key of the webhook signatures (default: "
                             f"{DEFAULT_WEBHOOK_SECRET})")
    parser.add_argument("--rate-limit", type=int, metavar="N",
                        help="API requests allowed per second; 0 (default) "
                             "is no limit")
    parser.add_argument("--faults", metavar="JSON", default="{}",
                        help="initial fault configuration, as POST "
                             "/_sandbox/faults takes it")
    parser.add_argument("--config", metavar="JSON", default="{}",
                        help="initial configuration, as POST "
                             "/_sandbox/config takes it")
    parser.add_argument("--tls-cert", metavar="PEM",
                        help="certificate (chain) to serve TLS with, on the "
                             "same port as plain HTTP")
    parser.add_argument("--tls-key", metavar="PEM",
                        help="the private key of --tls-cert")
    parser.add_argument("--quiet", action="store_true",
                        help="do not log requests on stderr")
    options = parser.parse_args(argv)
    if options.host not in LOOPBACK:
        parser.error(f"--host must be one of {', '.join(LOOPBACK)}: the "
                     "sandbox listens on the loopback interface only")
    if not 0 <= options.port <= 65535:
        parser.error("--port must be from 0 to 65535")
    if (options.tls_cert is None) != (options.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    flags = {"webhook_url": options.webhook_url,
             "webhook_secret": options.webhook_secret,
             "rate_limit": options.rate_limit}
    try:
        options.faults = fault_settings(
            json.loads(options.faults, parse_float=Decimal))
        options.config = config_settings(
            {name: value for name, value in flags.items()
             if value is not None},
            config_settings(json.loads(options.config,
                                       parse_float=Decimal)))
    except ValueError as e:
        parser.error(f"--faults or --config is not JSON: {e}")
    except ApiError as e:
        parser.error(str(e))
    return options


def main(argv=None):
    options = parse_args(argv)
    family, address = LOOPBACK[options.host]
    sandbox = Sandbox(options.api_key, options.seed, options.faults,
                      options.config, options.quiet)
    tls = None
    if options.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(options.tls_cert, options.tls_key)
    server = SandboxServer((address, options.port), family, sandbox, tls)
    port = server.server_address[1]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="http",
                     daemon=True).start()
    if options.port_file:
        write_atomically(options.port_file, f"{port}\n")
    shown = f"[{address}]" if family == socket.AF_INET6 else address
    print(f"sandbox listening on {shown}:{port}"
          f"{' (http and https)' if tls else ''}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    if options.port_file:
        # A port file left behind would name a port nobody listens on.
        os.unlink(options.port_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
