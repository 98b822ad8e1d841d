"""Cost metrics: budget rejections get a bounded scope label; a usage record is
counted as tokens in and out and micros, by model."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.cost import metrics
from services.cost.tiers import TIER_BUDGET_ID


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_tier_budget_and_tenant_budgets_are_told_apart() -> None:
    assert metrics.rejection_scope(TIER_BUDGET_ID) == "tier"
    assert metrics.rejection_scope("monthly-cap") == "budget"


def test_a_usage_record_counts_tokens_by_direction_and_its_cost() -> None:
    model = "unit-test-model"
    before = (
        value("protomesh_model_tokens_total", model=model, direction="input"),
        value("protomesh_model_tokens_total", model=model, direction="output"),
        value("protomesh_model_cost_micros_total", model=model),
    )

    metrics.metered({"model": model, "input_tokens": 120, "output_tokens": 30, "amount_micros": 7})

    assert value("protomesh_model_tokens_total", model=model, direction="input") == before[0] + 120
    assert value("protomesh_model_tokens_total", model=model, direction="output") == before[1] + 30
    assert value("protomesh_model_cost_micros_total", model=model) == before[2] + 7
