"""``kube.log_merge``: the kubelet's timestamped log lines of a graph's containers, merged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from infergraph.kube.log_merge import EARLIEST, LogLine, format_line, labels, merge, parse

DEPLOYMENT = "iris-default-0-classifier"


def at(second: int, micro: int = 0) -> datetime:
    return datetime(2026, 12, 2, 10, 0, second, micro, tzinfo=UTC)


# --- parse -------------------------------------------------------------------------------


def test_parse_reads_the_kubelets_rfc3339nano_prefix() -> None:
    line = parse("classifier", "2026-12-02T10:00:01.123456789Z predict: 3 rows\n")
    assert line == LogLine(at(1, 123456), "classifier", "predict: 3 rows")
    assert line.time.tzinfo is UTC


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-12-02T10:00:01Z", at(1)),  # RFC3339Nano drops a zero fraction
        ("2026-12-02T10:00:01.5Z", at(1, 500000)),  # and trailing zeros
        ("2026-12-02T10:00:01.000001999Z", at(1, 1)),  # cut, never rounded up
        ("2026-12-02T11:00:01.25+01:00", at(1, 250000)),  # an offset, normalised to UTC
    ],
)
def test_parse_handles_every_fraction_and_offset(stamp: str, expected: datetime) -> None:
    line = parse("x", f"{stamp} hello")
    assert line is not None and line.time == expected and line.text == "hello"


def test_parse_keeps_the_text_verbatim_and_allows_an_empty_message() -> None:
    assert parse("x", "2026-12-02T10:00:01Z   indented  ") == LogLine(at(1), "x", "  indented  ")
    assert parse("x", "2026-12-02T10:00:01Z") == LogLine(at(1), "x", "")
    assert parse("x", "2026-12-02T10:00:01Z \r\n") == LogLine(at(1), "x", "")


@pytest.mark.parametrize(
    "raw",
    [
        "Traceback (most recent call last):",
        "",
        "2026-12-02 10:00:01 not RFC 3339",
        "2026-12-02T10:00:01Zglued",
        "2026-13-45T10:00:01Z month 13",
    ],
)
def test_a_line_without_a_timestamp_parses_to_none(raw: str) -> None:
    assert parse("x", raw) is None


# --- merge -------------------------------------------------------------------------------


def test_merge_interleaves_streams_by_time() -> None:
    merged = merge(
        {
            "orchestrator": [
                "2026-12-02T10:00:01.000000100Z request 1 in",
                "2026-12-02T10:00:01.000900000Z request 1 out",
            ],
            "classifier": ["2026-12-02T10:00:01.000500000Z predict request 1"],
        }
    )
    assert [(line.label, line.text) for line in merged] == [
        ("orchestrator", "request 1 in"),
        ("classifier", "predict request 1"),
        ("orchestrator", "request 1 out"),
    ]


def test_merge_orders_by_nanoseconds_below_the_microsecond() -> None:
    merged = merge(
        {
            "a": ["2026-12-02T10:00:01.000000900Z later"],
            "b": ["2026-12-02T10:00:01.000000100Z earlier"],
        }
    )
    assert [line.text for line in merged] == ["earlier", "later"]
    assert merged[0].time == merged[1].time  # both cut to the same microsecond


def test_equal_times_keep_label_order_then_line_order() -> None:
    stamp = "2026-12-02T10:00:01.5Z"
    merged = merge(
        {
            "transformer": [f"{stamp} t1", f"{stamp} t2"],
            "classifier": [f"{stamp} c1", f"{stamp} c2"],
        }
    )
    assert [line.text for line in merged] == ["t1", "t2", "c1", "c2"]


def test_untimestamped_lines_stay_after_the_line_before_them() -> None:
    merged = merge(
        {
            "classifier": [
                "2026-12-02T10:00:02Z Traceback (most recent call last):",
                '  File "/app/Model.py", line 7, in predict',
                "ValueError: bad input",
                "",
            ],
            "orchestrator": ["2026-12-02T10:00:02Z call classifier", "2026-12-02T10:00:03Z 500"],
        }
    )
    assert [line.text for line in merged] == [
        "Traceback (most recent call last):",
        '  File "/app/Model.py", line 7, in predict',
        "ValueError: bad input",
        "call classifier",
        "500",
    ]
    assert merged[2].time == at(2)


def test_an_untimestamped_first_line_comes_first() -> None:
    merged = merge(
        {
            "a": ["2026-12-02T10:00:01Z a"],
            "b": ["unable to retrieve container logs for containerd://9a8b7c6d5e4f"],
        }
    )
    assert [line.label for line in merged] == ["b", "a"]
    assert merged[0].time == EARLIEST


def test_a_stream_keeps_its_own_order_even_when_its_clock_goes_back() -> None:
    merged = merge({"a": ["2026-12-02T10:00:05Z first", "2026-12-02T10:00:04Z second"]})
    assert [line.text for line in merged] == ["first", "second"]


def test_merge_takes_any_iterables_and_no_streams() -> None:
    assert merge({}) == []
    lines = iter(["2026-12-02T10:00:01Z x"])
    assert merge({"a": lines}) == [LogLine(at(1), "a", "x")]


# --- labels ------------------------------------------------------------------------------


def pod(
    suffix: str,
    containers: tuple[str, ...] = ("classifier", "seldon-container-engine"),
    init: tuple[str, ...] = ("classifier-model-initializer",),
    deployment: str = DEPLOYMENT,
    predictor: str = "default",
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deployment}-7d9c8b6f5-{suffix}",
            "namespace": "models",
            "labels": {
                "app": deployment,
                "seldon-deployment-id": "iris",
                "infergraph.io/predictor": predictor,
                **{f"seldon-app-svc-{c}": f"iris-{predictor}-{c}" for c in containers[:1]},
            },
        },
        "spec": {
            "initContainers": [{"name": name, "image": "infergraph"} for name in init],
            "containers": [{"name": name, "image": "x"} for name in containers],
        },
    }


def test_one_pod_is_labelled_by_node_only() -> None:
    p = pod("x2x7k")
    name = p["metadata"]["name"]
    assert labels([p]) == {
        (name, "classifier-model-initializer"): "classifier:init",
        (name, "classifier"): "classifier",
        (name, "seldon-container-engine"): "orchestrator",
    }


def test_replicas_get_their_pod_suffix() -> None:
    pods = [pod("x2x7k"), pod("b9qzl")]
    named = labels(pods)
    assert named[(pods[0]["metadata"]["name"], "classifier")] == "classifier/7d9c8b6f5-x2x7k"
    assert named[(pods[1]["metadata"]["name"], "seldon-container-engine")] == (
        "orchestrator/7d9c8b6f5-b9qzl"
    )
    assert named[(pods[1]["metadata"]["name"], "classifier-model-initializer")] == (
        "classifier:init/7d9c8b6f5-b9qzl"
    )


def test_only_the_nodes_with_several_pods_get_a_suffix() -> None:
    root = pod("x2x7k")
    other = pod("a1b2c", ("scaler",), (), deployment="iris-default-1-scaler")
    again = pod("q8w9e", ("scaler",), (), deployment="iris-default-1-scaler")
    named = labels([root, other, again])
    assert named[(root["metadata"]["name"], "classifier")] == "classifier"
    assert named[(other["metadata"]["name"], "scaler")] == "scaler/7d9c8b6f5-a1b2c"


def test_a_node_of_two_predictors_is_qualified_by_predictor() -> None:
    main = pod("x2x7k")
    canary = pod("k3j4h", deployment="iris-canary-0-classifier", predictor="canary")
    named = labels([main, canary])
    assert named[(main["metadata"]["name"], "classifier")] == "default.classifier"
    assert named[(canary["metadata"]["name"], "seldon-container-engine")] == "canary.orchestrator"


def test_other_init_containers_are_labelled_by_their_own_name() -> None:
    p = pod("x2x7k", init=("wait-for-db",))
    assert labels([p])[(p["metadata"]["name"], "wait-for-db")] == "wait-for-db:init"


def test_a_custom_node_of_names_the_streams() -> None:
    p = pod("x2x7k")
    named = labels([p], lambda pod, container: container.upper())
    assert sorted(named.values()) == ["CLASSIFIER", "CLASSIFIER:init", "SELDON-CONTAINER-ENGINE"]


def test_a_truncated_model_initializer_name_still_finds_its_node() -> None:
    long = "a-very-long-container-name-for-a-model-that-goes-on"
    p = pod("x2x7k", (long,), (f"{long}-model-initializer"[:63],))
    assert labels([p])[(p["metadata"]["name"], f"{long}-model-initializer"[:63])] == (
        f"{long}:init"
    )


# --- format_line -------------------------------------------------------------------------


def test_format_line_pads_labels_so_texts_line_up() -> None:
    lines = [LogLine(at(1), "classifier", "ready"), LogLine(at(2), "orchestrator", "serving")]
    width = max(len(line.label) for line in lines)
    assert [format_line(line, width) for line in lines] == [
        "classifier   | ready",
        "orchestrator | serving",
    ]


def test_format_line_keeps_a_label_longer_than_width_whole() -> None:
    assert format_line(LogLine(at(1), "classifier/7d9c8b6f5-x2x7k", "x"), 5) == (
        "classifier/7d9c8b6f5-x2x7k | x"
    )


def test_log_lines_order_by_time_first() -> None:
    early = LogLine(at(1), "z", "b")
    late = LogLine(at(1) + timedelta(microseconds=1), "a", "a")
    assert sorted([late, early]) == [early, late]
    assert parse("x", "2026-12-02T10:00:01Z x") == LogLine(
        datetime(2026, 12, 2, 12, 0, 1, tzinfo=timezone(timedelta(hours=2))), "x", "x"
    )
