"""UpdateBudget follows the shared AIP-134 rule (services/platform/fieldmask.py),
the same one UpdateDocument follows: no mask updates the populated fields, `*`
alone replaces, `*` with other paths is INVALID_ARGUMENT naming `update_mask`."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2

from protomesh.cost.v1 import cost_service_pb2 as pb
from protomesh.cost.v1 import cost_service_pb2_grpc as pb_grpc
from tests.integration.conftest import Metadata
from tests.integration.cost.helpers import detail, tenant_budget


def violated(exc: grpc.aio.AioRpcError) -> list[str]:
    found = detail(exc, error_details_pb2.BadRequest)
    return [v.field for v in found.field_violations] if found is not None else []


async def test_no_mask_updates_the_populated_fields(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    budget = await tenant_budget(stub, auth, hard=1000, soft_limit_micros=500)
    updated = await stub.UpdateBudget(
        pb.UpdateBudgetRequest(
            budget=pb.Budget(name=budget.name, etag=budget.etag, display_name="renamed")
        ),
        metadata=auth,
    )
    assert (updated.display_name, updated.hard_limit_micros, updated.soft_limit_micros) == (
        "renamed",
        1000,
        500,
    )
    # The budget as read, sent back changed (scope and output-only fields included).
    updated.hard_limit_micros = 2000
    again = await stub.UpdateBudget(pb.UpdateBudgetRequest(budget=updated), metadata=auth)
    assert (again.hard_limit_micros, again.display_name) == (2000, "renamed")


async def test_no_mask_may_not_move_the_scope(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    budget = await tenant_budget(stub, auth, hard=1000)
    moved = pb.Budget()
    moved.CopyFrom(budget)
    moved.scope_kind, moved.scope_id = pb.SCOPE_KIND_USER, "bob"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateBudget(pb.UpdateBudgetRequest(budget=moved), metadata=auth)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated(caught.value) == ["budget.scope_id", "budget.scope_kind"]


async def test_star_alone_replaces_every_updatable_field(
    stub: pb_grpc.CostServiceStub, auth: Metadata
) -> None:
    budget = await tenant_budget(stub, auth, hard=1000, display_name="old", soft_limit_micros=5)
    replaced = await stub.UpdateBudget(
        pb.UpdateBudgetRequest(
            budget=pb.Budget(name=budget.name, period=pb.PERIOD_DAY, hard_limit_micros=10),
            update_mask=field_mask_pb2.FieldMask(paths=["*"]),
        ),
        metadata=auth,
    )
    assert (replaced.display_name, replaced.soft_limit_micros, replaced.period) == (
        "",
        0,
        pb.PERIOD_DAY,
    )
    assert replaced.scope_kind == pb.SCOPE_KIND_TENANT


@pytest.mark.parametrize(
    "paths", [["*", "display_name"], ["display_name", "*"], ["spent_micros"], ["nope"], []]
)
async def test_bad_masks_are_invalid_naming_update_mask(
    stub: pb_grpc.CostServiceStub, auth: Metadata, paths: list[str]
) -> None:
    budget = await tenant_budget(stub, auth, hard=1000, display_name="kept")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.UpdateBudget(
            pb.UpdateBudgetRequest(
                budget=pb.Budget(name=budget.name),  # nothing updatable populated
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            metadata=auth,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated(caught.value) == ["update_mask"]
    current = await stub.GetBudget(pb.GetBudgetRequest(name=budget.name), metadata=auth)
    assert current.display_name == "kept"
