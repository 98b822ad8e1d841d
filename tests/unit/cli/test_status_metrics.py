"""`protomesh status` reads versions and queue depth out of Prometheus text and
is healthy only when every component is."""

from __future__ import annotations

from cli.status import (
    Component,
    Status,
    build_version,
    parse_samples,
    queue_depth_by_state,
)

EXPOSITION = """\
# HELP protomesh_build_info Always 1.
# TYPE protomesh_build_info gauge
protomesh_build_info{service="task-worker",version="0.3.0"} 1.0
# HELP protomesh_task_queue_depth Tasks not yet finished.
# TYPE protomesh_task_queue_depth gauge
protomesh_task_queue_depth{state="submitted",type="noop"} 2.0
protomesh_task_queue_depth{state="submitted",type="rag.answer"} 3.0
protomesh_task_queue_depth{state="working",type="noop"} 1.0
protomesh_task_queue_depth{state="input_required",type="noop"} 0.0
"""


def test_the_version_comes_from_build_info() -> None:
    assert build_version(parse_samples(EXPOSITION)) == "0.3.0"


def test_no_endpoint_or_no_build_info_means_no_version() -> None:
    assert build_version(None) == ""
    assert build_version(parse_samples("")) == ""


def test_queue_depth_is_summed_over_types_by_state() -> None:
    assert queue_depth_by_state(parse_samples(EXPOSITION)) == {
        "submitted": 5,
        "working": 1,
        "input_required": 0,
    }


def test_one_component_down_makes_the_status_unhealthy() -> None:
    up = Component("document", "127.0.0.1:50051", True, "0.3.0")
    down = Component("cost", "127.0.0.1:50054", False)

    assert Status(components=[up]).healthy
    assert not Status(components=[up, down]).healthy
    assert Status(components=[up, down]).as_json()["healthy"] is False
