from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from ingestor_project.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)


@pytest.mark.parametrize("raw", ["true", "True", "1", "yes", "on"])
def test_env_bool_accepts_true_spellings(raw):
    assert env_bool("FLAG", environ={"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["false", "FALSE", "0", "no", "off"])
def test_env_bool_accepts_false_spellings(raw):
    assert env_bool("FLAG", environ={"FLAG": raw}) is False


def test_env_bool_rejects_anything_else_naming_the_variable():
    with pytest.raises(ImproperlyConfigured, match="FLAG='maybe' is not a boolean"):
        env_bool("FLAG", environ={"FLAG": "maybe"})


def test_a_missing_required_value_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="HA_TOKEN is required"):
        env_str("HA_TOKEN", environ={})


def test_blank_values_count_as_unset():
    assert env_int("N", 7, environ={"N": "  "}) == 7


def test_env_int_rejects_non_integers_and_out_of_range():
    with pytest.raises(ImproperlyConfigured, match="N='1.5' is not an integer"):
        env_int("N", environ={"N": "1.5"})
    with pytest.raises(ImproperlyConfigured, match="N=0 is below the minimum 1"):
        env_int("N", minimum=1, environ={"N": "0"})
    with pytest.raises(ImproperlyConfigured, match="above the maximum"):
        env_int("N", maximum=10, environ={"N": "11"})


def test_env_float_rejects_nan_and_text():
    with pytest.raises(ImproperlyConfigured, match="not a finite number"):
        env_float("X", environ={"X": "nan"})
    with pytest.raises(ImproperlyConfigured, match="X='fast' is not a number"):
        env_float("X", environ={"X": "fast"})
    assert env_float("X", environ={"X": "0.25"}) == 0.25


def test_env_list_splits_and_strips_and_rejects_empty_items():
    assert env_list("L", environ={"L": "a, b ,c"}) == ["a", "b", "c"]
    assert env_list("L", ["x"], environ={}) == ["x"]
    with pytest.raises(ImproperlyConfigured, match="empty item"):
        env_list("L", environ={"L": "a,,b"})


def test_env_choice_lists_the_choices():
    with pytest.raises(ImproperlyConfigured, match="is not one of: 1, 2"):
        env_choice("INFLUX_API_VERSION", ["1", "2"], environ={"INFLUX_API_VERSION": "3"})


def test_env_secret_reads_a_file(tmp_path):
    secret = tmp_path / "token"
    secret.write_text("s3cret-value\n")
    assert env_secret("HA_TOKEN", environ={"HA_TOKEN_FILE": str(secret)}) == "s3cret-value"


def test_env_secret_errors_never_contain_the_secret(tmp_path):
    with pytest.raises(ImproperlyConfigured) as caught:
        env_secret("HA_TOKEN", environ={"HA_TOKEN": "s3cret-value", "HA_TOKEN_FILE": "/x"})
    assert "s3cret-value" not in str(caught.value)
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_secret("HA_TOKEN", environ={"HA_TOKEN_FILE": str(tmp_path / "missing")})
