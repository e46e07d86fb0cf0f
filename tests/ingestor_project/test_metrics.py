"""observe_many, the bulk form of Histogram.observe the worker uses for the event lag."""

from __future__ import annotations

import math
import uuid

import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingestor_project.metrics import observe_many

BOUNDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5)


def histogram() -> prometheus_client.Histogram:
    name = f"test_observe_many_{uuid.uuid4().hex[:12]}"
    return prometheus_client.Histogram(name, "test", buckets=BOUNDS, registry=None)


def counts(h: prometheus_client.Histogram) -> list[float]:
    return [bucket.get() for bucket in h._buckets]


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.sampled_from(BOUNDS),  # exactly on a bound: counted in that bound's bucket
            st.floats(min_value=-10, max_value=1e6, allow_nan=False),
        ),
        max_size=200,
    )
)
def test_observe_many_counts_as_observe_does(values):
    one_by_one, bulk = histogram(), histogram()
    for value in values:
        one_by_one.observe(value)
    observe_many(bulk, values)
    assert counts(bulk) == counts(one_by_one)
    assert math.isclose(bulk._sum.get(), one_by_one._sum.get(), rel_tol=1e-9, abs_tol=1e-9)


def test_nothing_to_observe_changes_nothing():
    h = histogram()
    observe_many(h, [])
    assert counts(h) == [0.0] * (len(BOUNDS) + 1)


@pytest.mark.parametrize("value", [math.inf, 1e300])
def test_values_beyond_the_last_bound_land_in_the_inf_bucket(value):
    h = histogram()
    observe_many(h, [value])
    assert counts(h)[-1] == 1.0
