"""`attn softmax`: the seed's walkthrough, scaling, temperature and bad input."""

from __future__ import annotations

import json
import math

import pytest

from attncli.errors import UsageError
from attncli.methods.softmax import softmax


def test_seed_example():
    result = softmax([1, 2, 3])
    assert [round(w, 2) for w in result.weights] == [0.09, 0.24, 0.67]
    assert math.isclose(sum(result.weights), 1.0)
    assert result.winner == 2


def test_scale_and_temperature_divide_scores():
    scaled = softmax([1, 2, 3], dim=4, temperature=2.0)
    # dividing by sqrt(4) * 2 = 4 is the same as softmax of the quartered scores
    assert scaled.weights == pytest.approx(softmax([0.25, 0.5, 0.75]).weights)
    assert scaled.logits == pytest.approx((0.25, 0.5, 0.75))


def test_large_scores_do_not_overflow():
    result = softmax([1000.0, 1001.0])
    assert result.weights == pytest.approx((1 / (1 + math.e), math.e / (1 + math.e)))


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"temperature": 0}, {"temperature": -1}])
def test_bad_parameters(kwargs):
    with pytest.raises(UsageError):
        softmax([1, 2], **kwargs)


def test_cli_table(cli):
    code, out, err = cli("softmax", "1", "2", "3")
    assert code == 0, err
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[4].strip() for row in rows] == ["0.09", "0.24", "0.67"]
    assert "Element 2 (score 3) gets the most attention: 67%." in out


def test_cli_json_and_negative_numbers(cli):
    code, out, _ = cli("softmax", "-1", "0", "1", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["argmax"] == 2 and doc["scores"] == [-1.0, 0.0, 1.0]
    assert sum(doc["weights"]) == pytest.approx(1.0)


@pytest.mark.parametrize("args", [["1", "two", "3"], ["nan"], ["1", "--temperature", "0"], []])
def test_cli_bad_input_is_one_line_usage_error(cli, args):
    code, out, err = cli("softmax", *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("attn: error:")
