"""harness/schemas/submission.schema.json accepts every accepted record's submission*.json and rejects malformed
documents with one readable message per problem, each starting with the JSON path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.schemas import load_schema, validation_errors

FIXTURE_RECORDS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "records"
FIXTURE_METADATA = sorted(FIXTURE_RECORDS.glob("*/*/submission*.json"))

BASE = {"name": "x", "author": "a", "github_id": "a-b", "date": "2026-03-19", "val_bpb": 1.2, "val_loss": 2.0,
        "bytes_total": 15_900_000}
DROP = object()  # errors_of(key=DROP) leaves the key out


def errors_of(**changes) -> list[str]:
    document = {**BASE, **changes}
    return validation_errors({k: v for k, v in document.items() if v is not DROP}, "submission")


def test_fixture_records_are_present():
    if not FIXTURE_RECORDS.is_dir():
        pytest.skip(f"shared fixtures not present at {FIXTURE_RECORDS}")
    # 55 submission.json + submission_ternary/_binary/_jepa.json (the fixtures' snapshot of 2026-05-02)
    assert len(FIXTURE_METADATA) == 58


@pytest.mark.parametrize("path", FIXTURE_METADATA, ids=lambda p: f"{p.parent.name[:48]}/{p.name}")
def test_every_accepted_record_validates(path):
    assert validation_errors(json.loads(path.read_text(encoding="utf-8")), "submission") == []


def test_no_key_is_required_alone_but_a_score_is():
    assert load_schema("submission").get("required", []) == []
    for score in ("val_bpb", "mean_val_bpb", "val_loss"):
        assert validation_errors({score: 1.1}, "submission") == []
    assert validation_errors({}, "submission") == [
        "$: expected a score: val_bpb (or mean_val_bpb or val_loss, as two early accepted records wrote it)"
    ]


def test_missing_score_is_the_one_error():
    assert errors_of(val_bpb=DROP, val_loss=DROP) == [
        "$: expected a score: val_bpb (or mean_val_bpb or val_loss, as two early accepted records wrote it)"
    ]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"val_bpb": "1.2"}, "$.val_bpb: '1.2' is not of type 'number'"),
        ({"val_bpb": True}, "$.val_bpb: True is not of type 'number'"),
        ({"val_bpb": 0}, "$.val_bpb: 0 is less than or equal to the minimum of 0"),
        ({"val_loss": -0.5}, "$.val_loss: -0.5 is less than the minimum of 0"),
        ({"bytes_total": -5}, "$.bytes_total: -5 is less than the minimum of 0"),
        ({"bytes_total": 15.5}, "$.bytes_total: 15.5 is not of type 'integer'"),
        ({"bytes_code": "58 KB"}, "$.bytes_code: '58 KB' is not of type 'integer', 'null'"),
        ({"name": 7}, "$.name: 7 is not of type 'string'"),
        ({"date": "March 19"},
         "$.date: 'March 19' is not a date: YYYY-MM-DD, or an ISO 8601 date-time such as 2026-03-19T10:00:00Z"),
        ({"github_id": "has space"},
         "$.github_id: 'has space' is not a GitHub user name (README: 'GitHub id'): letters, digits and hyphens; "
         "empty in one accepted record"),
        ({"p_value": 1.5}, "$.p_value: expected a probability in [0, 1], or a bound written as text such as '<0.001'"),
        ({"seeds": [42, "1337"]}, "$.seeds: expected the seeds run: a list of seeds, or per-seed results keyed by seed"),
        ({"seed_results": {"42": {"val_bpb": "1.1"}}}, "$.seed_results.42.val_bpb: '1.1' is not of type 'number'"),
        ({"seed_results": {"42": {"artifact_bytes": -1}}},
         "$.seed_results.42.artifact_bytes: -1 is less than the minimum of 0"),
        ({"seed_results": {"best": {"val_bpb": 1.1}}}, "$.seed_results: 'best' does not match '^[0-9]+$'"),
        ({"eval_time_seconds": -3},
         "$.eval_time_seconds: expected a duration (seconds or milliseconds) or a list of them, one per seed"),
        ({"compliance": ["no_ttt"]}, "$.compliance: ['no_ttt'] is not of type 'object'"),
    ],
)
def test_malformed_value_is_rejected_with_its_path(changes, expected):
    assert errors_of(**changes) == [expected]


def test_every_problem_is_reported_in_path_order():
    errors = errors_of(val_bpb="x", bytes_total=-1, date="soon")
    assert [e.split(":", 1)[0] for e in errors] == ["$.bytes_total", "$.date", "$.val_bpb"]


def test_top_level_must_be_an_object():
    assert validation_errors([1.2], "submission") == ["$: [1.2] is not of type 'object'"]


def test_unknown_keys_are_allowed():
    assert errors_of(my_own_note={"anything": [1, 2]}, matrix_lr=0.02) == []


@pytest.mark.parametrize("seeds", [[1337, 42, 7], {"42": {"val_bpb": 1.1, "val_loss": 2.0, "bytes_total": 15_000_000}}])
def test_seeds_as_a_list_or_per_seed_results(seeds):
    assert errors_of(seeds=seeds) == []
