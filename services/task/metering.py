"""Cost control of model calls through CostService: reserve before the call,
commit the actual usage after, release on failure or cancellation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from protomesh.cost.v1 import cost_service_pb2 as cost_pb
from protomesh.cost.v1 import cost_service_pb2_grpc as cost_grpc
from services.platform.logs import get_logger

log = get_logger("protomesh.task.metering")

Metadata = tuple[tuple[str, str], ...]
CALL_TIMEOUT_SECONDS = 5.0


class BudgetExhausted(Exception):
    """A budget (the tenant's, the user's, or the task's own limit) has no room for
    the call; the task pauses in INPUT_REQUIRED (or fails, if its input says so)."""


@dataclass(frozen=True)
class Hold:
    """An active reservation and the idempotency key it was taken with."""

    name: str
    amount_micros: int
    key: str = ""


class Meter:
    """Reservations for one task attempt, attributed to its tenant (the token),
    submitter and task."""

    def __init__(
        self,
        stub: cost_grpc.CostServiceStub,
        metadata: Callable[[], Metadata],
        user_id: str,
        task_name: str,
        key_prefix: str,
    ) -> None:
        self.stub = stub
        self.metadata = metadata
        self.attribution = cost_pb.Attribution(user_id=user_id, task=task_name)
        self.key_prefix = key_prefix
        self._count = 0

    async def reserve(self, model: str, input_tokens: int, max_output_tokens: int) -> Hold:
        """Holds the worst-case cost of a call. A model the price book does not list
        is FAILED_PRECONDITION (UNKNOWN_MODEL) from the cost service: metering fails
        closed, and the worker fails the task rather than spend unmetered."""
        self._count += 1
        key = f"{self.key_prefix}-{self._count}"
        request = cost_pb.ReserveRequest(
            estimate=cost_pb.EstimateCostRequest(
                model=model, input_tokens=input_tokens, max_output_tokens=max_output_tokens
            ),
            attribution=self.attribution,
            request_id=key,
        )
        try:
            reservation = await self.stub.Reserve(
                request, metadata=self.metadata(), timeout=CALL_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise BudgetExhausted(_quota_message(exc)) from exc
            raise
        return Hold(reservation.name, reservation.amount_micros, key)

    async def commit(
        self, hold: Hold, model: str, input_tokens: int, output_tokens: int, estimated: bool
    ) -> int:
        """Settles the reservation with the actual usage; returns the amount charged.

        A call that outlived its reservation still spent the money: when the hold
        has expired, the usage is recorded on its own (idempotently, keyed by the
        hold) so spend is never lost, even though it was no longer held."""
        if not hold.name:
            return 0
        usage = cost_pb.TokenUsage(
            model=model, input_tokens=input_tokens, output_tokens=output_tokens
        )
        provenance = cost_pb.PROVENANCE_ESTIMATED if estimated else cost_pb.PROVENANCE_MEASURED
        try:
            reservation = await self.stub.CommitReservation(
                cost_pb.CommitReservationRequest(
                    name=hold.name, usage=usage, provenance=provenance
                ),
                metadata=self.metadata(),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if _reason(exc) != "RESERVATION_EXPIRED":
                raise
            log.warning("reservation expired before commit; recording usage", reservation=hold.name)
            record = await self.stub.RecordUsage(
                cost_pb.RecordUsageRequest(
                    usage=usage,
                    attribution=self.attribution,
                    provenance=provenance,
                    idempotency_key=f"{hold.key}-late",
                ),
                metadata=self.metadata(),
                timeout=CALL_TIMEOUT_SECONDS,
            )
            return int(record.amount_micros)
        return int(reservation.usage_record.amount_micros)

    async def release(self, hold: Hold) -> None:
        if not hold.name:
            return
        try:
            await self.stub.ReleaseReservation(
                cost_pb.ReleaseReservationRequest(name=hold.name),
                metadata=self.metadata(),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            # The reservation expires by itself; losing the release only delays that.
            log.warning("release failed", reservation=hold.name, code=exc.code().name)


def _reason(exc: grpc.aio.AioRpcError) -> str:
    """The `ErrorInfo.reason` of a failed call ("" when it carries none)."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


def _quota_message(exc: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    subjects: list[str] = []
    if status is not None:
        for detail in status.details:
            failure = error_details_pb2.QuotaFailure()
            if detail.Unpack(failure):
                subjects.extend(f"{v.subject}: {v.description}" for v in failure.violations)
    suffix = f" ({'; '.join(subjects)})" if subjects else ""
    return f"budget exhausted{suffix}: {exc.details()}"
