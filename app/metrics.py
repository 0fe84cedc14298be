"""Prometheus metrics. Labels are bounded sets (exchange ids, outcomes, status classes): never a key,
a credential id, a client name or a path."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from app.loop_metrics import LoopCounter, LoopHistogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Updated by every request, on the event loop's thread only: app/loop_metrics.py.
REQUESTS = LoopCounter(
    "signvault_requests_total", "Requests served, by route template.", ["route", "method", "status_class"],
    registry=REGISTRY)
REQUEST_LATENCY = LoopHistogram(
    "signvault_request_latency_seconds", "Time to answer a request, by route template.", ["route"],
    registry=REGISTRY, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
UPSTREAM_RESPONSES = LoopCounter(
    "signvault_upstream_responses_total", "Responses from exchanges, by status class.",
    ["exchange", "status_class"], registry=REGISTRY)
UPSTREAM_LATENCY = LoopHistogram(
    "signvault_upstream_latency_seconds", "Time for an exchange to answer.", ["exchange"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
THROTTLED = Counter(
    "signvault_throttled_total", "Requests refused by signvault's own limits before reaching the exchange.",
    ["exchange", "scope"], registry=REGISTRY)  # scope: credential, client, exchange, order, cooldown
COOLDOWNS = Counter(
    "signvault_cooldowns_total", "Cooldowns opened because an exchange said slow down or banned the IP.",
    ["exchange", "kind", "scope"], registry=REGISTRY)  # kind: throttle, ban; scope: ip, key, orders, endpoint
WEIGHT_USED = Gauge(
    "signvault_exchange_weight_used", "Weight the exchange reports used in its current window.",
    ["exchange"], registry=REGISTRY)
RETRIES = Counter("signvault_upstream_retries_total", "Idempotent reads retried.", ["exchange"], registry=REGISTRY)
LIMIT_STORE_ERRORS = Counter(
    "signvault_limit_store_errors_total", "Failures to reach the shared limit store (Redis).", registry=REGISTRY)
EGRESS_MISMATCH = Gauge(
    "signvault_egress_ip_mismatch", "1 when exchanges see another IP than the whitelisted one.", registry=REGISTRY)
CREDENTIAL_CHECKS = Counter(
    "signvault_credential_checks_total", "Connection checks, by outcome.", ["exchange", "status"], registry=REGISTRY)
AUDIT_DROPPED = Counter("signvault_audit_rows_dropped_total", "Audit rows that could not be written.",
                        registry=REGISTRY)
VAULT_ERRORS = Counter("signvault_vault_errors_total", "Credentials that failed to decrypt.", registry=REGISTRY)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
