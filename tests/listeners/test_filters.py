"""HA's include/exclude entity filter, case by case (docs/ha-influxdb-parity.md §3).

The reference is homeassistant/helpers/entityfilter.py (current EntityFilter, cases 1-6). Each
row's id names the HA rule it pins; where HA's behaviour is surprising the comment says so.
"""

from __future__ import annotations

import itertools

import pytest

from listeners.filters import EntityFilter

KITCHEN = "sensor.kitchen"


def row(id_, entity_id, expected, **config):
    return pytest.param(config, entity_id, expected, id=id_)


CASES = [
    # Case 1: no include and no exclude lists -> everything passes.
    row("case1-no-filter-passes-everything", KITCHEN, True),
    row("case1-any-domain-passes", "light.porch", True),
    # Case 2: includes only -> Ie or Id or Ig; anything else is dropped.
    row("case2-included-entity", KITCHEN, True, include_entities=[KITCHEN]),
    row("case2-included-domain", KITCHEN, True, include_domains=["sensor"]),
    row("case2-included-glob", KITCHEN, True, include_globs=["sensor.kit*"]),
    row("case2-not-included-dropped", "light.porch", False, include_domains=["sensor"]),
    row("case2-other-entity-dropped", "sensor.hall", False, include_entities=[KITCHEN]),
    row(
        "case2-any-include-list-suffices",
        "binary_sensor.door",
        True,
        include_entities=[KITCHEN],
        include_domains=["light"],
        include_globs=["binary_*"],
    ),
    # Case 3: excludes only -> not (Xe or Xd or Xg); everything else passes.
    row("case3-excluded-entity", KITCHEN, False, exclude_entities=[KITCHEN]),
    row("case3-excluded-domain", KITCHEN, False, exclude_domains=["sensor"]),
    row("case3-excluded-glob", KITCHEN, False, exclude_globs=["*.kitchen"]),
    row("case3-not-excluded-passes", "light.porch", True, exclude_domains=["sensor"]),
    row("case3-other-entity-passes", "sensor.hall", True, exclude_entities=[KITCHEN]),
    # Case 4: both, include has domains and/or globs ->
    #   Ie or (not Xe and (Ig or (Id and not Xg))).
    row(
        "case4-include-entity-beats-exclude-entity",
        KITCHEN,
        True,
        include_domains=["light"],
        include_entities=[KITCHEN],
        exclude_entities=[KITCHEN],
    ),
    row(
        "case4-include-entity-beats-exclude-glob-and-domain",
        KITCHEN,
        True,
        include_globs=["light.*"],
        include_entities=[KITCHEN],
        exclude_globs=["sensor.*"],
        exclude_domains=["sensor"],
    ),
    row(
        "case4-exclude-entity-beats-include-glob",
        KITCHEN,
        False,
        include_globs=["sensor.*"],
        exclude_entities=[KITCHEN],
    ),
    row(
        "case4-exclude-entity-beats-include-domain",
        KITCHEN,
        False,
        include_domains=["sensor"],
        exclude_entities=[KITCHEN],
    ),
    row(
        "case4-include-glob-beats-exclude-glob",
        KITCHEN,
        True,
        include_globs=["sensor.kit*"],
        exclude_globs=["*.kitchen"],
    ),
    row(
        "case4-include-domain-loses-to-exclude-glob",
        KITCHEN,
        False,
        include_domains=["sensor"],
        exclude_globs=["*.kitchen"],
    ),
    row(
        "case4-include-domain-passes-without-exclude-glob",
        KITCHEN,
        True,
        include_domains=["sensor"],
        exclude_globs=["*.hall"],
    ),
    row(
        "case4-exclude-domain-ignored-for-include-domain",
        KITCHEN,
        True,
        include_domains=["sensor"],
        exclude_domains=["sensor"],
    ),
    # Older HA (4a before the rewrite) let Xd beat an include glob; current HA ignores Xd.
    row(
        "case4-exclude-domain-ignored-for-include-glob",
        KITCHEN,
        True,
        include_globs=["sensor.*"],
        exclude_domains=["sensor"],
    ),
    row(
        "case4-exclude-domain-does-not-drop-unlisted-entity-either",
        "light.porch",
        False,
        include_domains=["sensor"],
        exclude_domains=["light"],
    ),
    row(
        "case4-not-included-dropped-even-if-not-excluded",
        "light.porch",
        False,
        include_globs=["sensor.*"],
        exclude_entities=[KITCHEN],
    ),
    # Case 5: both, include has entities only, exclude has domains and/or globs ->
    #   if Xd or Xg: Ie, else: not Xe. Unlisted entities pass.
    row(
        "case5-excluded-domain-rescued-by-include-entity",
        KITCHEN,
        True,
        include_entities=[KITCHEN],
        exclude_domains=["sensor"],
    ),
    row(
        "case5-excluded-domain-dropped",
        "sensor.hall",
        False,
        include_entities=[KITCHEN],
        exclude_domains=["sensor"],
    ),
    row(
        "case5-excluded-glob-rescued-by-include-entity",
        KITCHEN,
        True,
        include_entities=[KITCHEN],
        exclude_globs=["sensor.*"],
    ),
    row(
        "case5-excluded-glob-dropped",
        "sensor.hall",
        False,
        include_entities=[KITCHEN],
        exclude_globs=["sensor.*"],
    ),
    row(
        "case5-unlisted-entity-passes",
        "light.porch",
        True,
        include_entities=[KITCHEN],
        exclude_domains=["sensor"],
    ),
    row(
        "case5-excluded-entity-dropped",
        "light.porch",
        False,
        include_entities=[KITCHEN],
        exclude_domains=["sensor"],
        exclude_entities=["light.porch"],
    ),
    # HA's comment claims include wins here; its code excludes. We follow the code.
    row(
        "case5-in-both-entity-lists-domain-not-excluded-is-dropped",
        "light.porch",
        False,
        include_entities=["light.porch"],
        exclude_entities=["light.porch"],
        exclude_domains=["sensor"],
    ),
    row(
        "case5-in-both-entity-lists-domain-excluded-passes",
        KITCHEN,
        True,
        include_entities=[KITCHEN],
        exclude_entities=[KITCHEN],
        exclude_domains=["sensor"],
    ),
    # Case 6: both sides list entities only -> Ie; exclude entities are ignored.
    row(
        "case6-included-entity",
        KITCHEN,
        True,
        include_entities=[KITCHEN],
        exclude_entities=["sensor.hall"],
    ),
    row(
        "case6-in-both-lists-passes",
        KITCHEN,
        True,
        include_entities=[KITCHEN],
        exclude_entities=[KITCHEN],
    ),
    row(
        "case6-unlisted-entity-dropped",
        "light.porch",
        False,
        include_entities=[KITCHEN],
        exclude_entities=["sensor.hall"],
    ),
    row(
        "case6-excluded-only-entity-dropped",
        "sensor.hall",
        False,
        include_entities=[KITCHEN],
        exclude_entities=["sensor.hall"],
    ),
]


@pytest.mark.parametrize(("config", "entity_id", "expected"), CASES)
def test_it_decides_as_home_assistant_does(config, entity_id, expected):
    assert EntityFilter(**config).matches(entity_id) is expected


GLOBS = [
    # fnmatch.translate + re.match: the whole id must match, not a prefix.
    row("glob-full-match-no-prefix", "sensor.temperature", False, include_globs=["sensor.temp"]),
    row("glob-full-match-no-suffix", "sensor.kitchen_2", False, include_globs=["*kitchen"]),
    row("glob-exact-text-matches", KITCHEN, True, include_globs=[KITCHEN]),
    # No re.IGNORECASE: globs are case-sensitive.
    row("glob-case-sensitive-include", KITCHEN, False, include_globs=["sensor.Kitchen*"]),
    row("glob-case-sensitive-exclude", KITCHEN, True, exclude_globs=["SENSOR.*"]),
    # fnmatch's * is .* and so crosses the domain dot.
    row("glob-star-matches-dot", KITCHEN, True, include_globs=["sens*chen"]),
    row("glob-lone-star-matches-all", KITCHEN, True, include_globs=["*"]),
    row("glob-dot-is-literal", "sensorx.kitchen", False, include_globs=["sensor.*"]),
    row("glob-question-mark-one-char", "sensor.k1", True, include_globs=["sensor.k?"]),
    row("glob-question-mark-not-two", "sensor.k12", False, include_globs=["sensor.k?"]),
    row("glob-char-class", "sensor.k2", True, include_globs=["sensor.k[0-3]"]),
    row("glob-negated-char-class", "sensor.k2", False, include_globs=["sensor.k[!0-3]"]),
    row("glob-any-of-several", KITCHEN, True, include_globs=["light.*", "*.kitchen"]),
    row("glob-none-of-several", KITCHEN, False, include_globs=["light.*", "*.hall"]),
]


@pytest.mark.parametrize(("config", "entity_id", "expected"), GLOBS)
def test_globs_match_like_fnmatch_translate(config, entity_id, expected):
    assert EntityFilter(**config).matches(entity_id) is expected


CONFIG_NORMALISATION = [
    # cv.entity_ids lowercases the configured entity ids.
    row("entities-lowercased-include", KITCHEN, True, include_entities=["Sensor.Kitchen"]),
    row("entities-lowercased-exclude", KITCHEN, False, exclude_entities=["SENSOR.KITCHEN"]),
    # Domains are plain cv.string values: not lowercased, compared exactly.
    row("domains-not-lowercased-include", KITCHEN, False, include_domains=["Sensor"]),
    row("domains-not-lowercased-exclude", KITCHEN, True, exclude_domains=["SENSOR"]),
    # The domain is everything before the first dot.
    row("domain-is-before-first-dot", "sensor.a.b", True, include_domains=["sensor"]),
]


@pytest.mark.parametrize(("config", "entity_id", "expected"), CONFIG_NORMALISATION)
def test_configured_names_are_normalised_as_ha_validates_them(config, entity_id, expected):
    assert EntityFilter(**config).matches(entity_id) is expected


def test_a_filter_without_lists_is_empty():
    assert EntityFilter().empty
    assert not EntityFilter(exclude_globs=["*.x"]).empty


# The §3 formulas in the spec's notation (Ie, Xe, Id, Xd, Ig, Xg), for the exhaustive check.
def spec_decision(hit, listed):
    have_inc = any(listed[f"include_{k}"] for k in KINDS)
    have_exc = any(listed[f"exclude_{k}"] for k in KINDS)
    ie, id_, ig = (hit[f"include_{k}"] for k in KINDS)
    xe, xd, xg = (hit[f"exclude_{k}"] for k in KINDS)
    if not have_inc and not have_exc:  # case 1
        return True
    if not have_exc:  # case 2
        return ie or id_ or ig
    if not have_inc:  # case 3
        return not (xe or xd or xg)
    if listed["include_domains"] or listed["include_globs"]:  # case 4
        return ie or (not xe and (ig or (id_ and not xg)))
    if listed["exclude_domains"] or listed["exclude_globs"]:  # case 5
        return ie if (xd or xg) else not xe
    return ie  # case 6


KINDS = ("entities", "domains", "globs")
MATCHING = {"entities": KITCHEN, "domains": "sensor", "globs": "*.kit?hen"}
UNRELATED = {"entities": "light.porch", "domains": "light", "globs": "light.*"}
LISTS = [f"{side}_{kind}" for side in ("include", "exclude") for kind in KINDS]


def all_configs():
    """Each of the six lists is empty, names something else, or matches KITCHEN: 3**6 filters."""
    for picks in itertools.product((None, UNRELATED, MATCHING), repeat=len(LISTS)):
        yield {
            name: [pick[name.split("_")[1]]]
            for name, pick in zip(LISTS, picks, strict=True)
            if pick is not None
        }


def test_every_combination_of_lists_follows_the_six_cases():
    for config in all_configs():
        listed = {name: name in config for name in LISTS}
        kind = {name: name.split("_")[1] for name in LISTS}
        hit = {name: config.get(name) == [MATCHING[kind[name]]] for name in LISTS}
        assert EntityFilter(**config).matches(KITCHEN) is spec_decision(hit, listed), config
