"""The per-request counter and histogram expose exactly what prometheus_client's own would."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.loop_metrics import LoopCounter, LoopHistogram

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 1, 10)
# A value on a bound belongs to that bucket ("le"); others fall between, below all or above all.
LATENCIES = (0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.5, 1.0, 9.99, 10.0, 42.0)


def _exposition(registry: CollectorRegistry) -> str:
    # _created holds each series' creation time, which differs between the two by construction.
    return re.sub(r"(?m)^(\w+_created\{[^}]*\}) \S+$", r"\1 T", generate_latest(registry).decode())


def test_same_exposition_as_prometheus_client() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    counted = [LoopCounter("demo_requests_total", "Requests.", ["route", "status_class"], registry=ours),
               Counter("demo_requests_total", "Requests.", ["route", "status_class"], registry=theirs)]
    timed = [LoopHistogram("demo_latency_seconds", "Latency.", ["route"], registry=ours, buckets=BUCKETS),
             Histogram("demo_latency_seconds", "Latency.", ["route"], registry=theirs, buckets=BUCKETS)]
    for counter in counted:
        counter.labels("/proxy", "2xx").inc()
        counter.labels("/proxy", "2xx").inc(2)
        counter.labels("/sign", "4xx").inc()
    for histogram in timed:
        for latency in LATENCIES:
            histogram.labels("/proxy").observe(latency)
        histogram.labels("/sign").observe(0.002)

    assert _exposition(ours) == _exposition(theirs)
    assert 'demo_latency_seconds_bucket{le="0.001",route="/proxy"} 4.0' in _exposition(ours)


def test_wrong_number_of_labels_is_refused() -> None:
    counter = LoopCounter("demo_total", "Demo.", ["route"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="takes the labels"):
        counter.labels("/proxy", "2xx")


def test_a_name_registered_twice_is_refused() -> None:
    registry = CollectorRegistry()
    LoopHistogram("demo_seconds", "Demo.", [], registry=registry, buckets=BUCKETS)
    with pytest.raises(ValueError, match="Duplicated"):
        Histogram("demo_seconds", "Demo.", registry=registry, buckets=BUCKETS)
