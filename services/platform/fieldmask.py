"""Update masks (AIP-134), one rule for every Update method.

- No `update_mask` (no paths): every *populated* field of the resource in the
  request is updated; populated fields that cannot change (output only, the
  name, the etag, immutable ones) are left out rather than refused, so a client
  may send back the resource it read. Nothing updatable populated is
  INVALID_ARGUMENT.
- `*` alone: full replacement — every updatable field takes the request's value,
  unset ones their default.
- `*` with other paths, unknown paths (checked with protobuf's
  `FieldMask.IsValidForDescriptor`), output-only or immutable paths, and paths
  inside a field (`labels.team`, `create_time.seconds`): INVALID_ARGUMENT with a
  `BadRequest` field violation on `update_mask` for each bad path.

Services update whole top-level fields, so a resolved mask is a set of field
names; what a service does with them (SQL columns, a merged spec) is its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from google.protobuf import field_mask_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from services.platform.errors import FieldViolation, InvalidArgument

STAR = "*"


@dataclass(frozen=True)
class Update:
    """A resolved mask: the fields to update, and the immutable fields an
    implicit mask found populated (the service checks they are unchanged)."""

    fields: frozenset[str]
    immutable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UpdateRules:
    """Which fields of a resource an Update method may change."""

    resource: type[Message]
    updatable: tuple[str, ...]
    immutable: tuple[str, ...] = ()
    mask_field: str = "update_mask"

    @property
    def descriptor(self) -> Descriptor:
        return cast(Descriptor, self.resource.DESCRIPTOR)  # upb's Descriptor is one too

    def __post_init__(self) -> None:
        known = set(self.descriptor.fields_by_name)
        unknown = (set(self.updatable) | set(self.immutable)) - known
        if unknown:
            raise ValueError(f"{self.descriptor.full_name} has no field(s) {sorted(unknown)}")

    def resolve(self, paths: Iterable[str], resource: Message | None = None) -> Update:
        """The update a mask asks for; `resource` is the request's resource, whose
        populated fields an empty mask stands for."""
        paths = list(paths)
        if not paths:
            return self._implicit(resource)
        if STAR in paths:
            if len(paths) > 1:
                raise InvalidArgument.for_field(
                    self.mask_field, "`*` replaces the whole resource: send it alone"
                )
            return Update(frozenset(self.updatable))
        violations = [v for v in map(self._violation, paths) if v is not None]
        if violations:
            raise InvalidArgument("; ".join(v.description for v in violations), violations)
        return Update(frozenset(paths))

    def _implicit(self, resource: Message | None) -> Update:
        populated = (
            {field.name for field, _ in resource.ListFields()} if resource is not None else set()
        )
        fields = frozenset(populated & set(self.updatable))
        if not fields:
            raise InvalidArgument.for_field(
                self.mask_field,
                "nothing to update: populate at least one updatable field "
                f"({', '.join(self.updatable)}), or name them in the mask (`*`: all)",
            )
        return Update(fields, frozenset(populated & set(self.immutable)))

    def _violation(self, path: str) -> FieldViolation | None:
        if path in self.updatable:
            return None
        if not field_mask_pb2.FieldMask(paths=[path]).IsValidForDescriptor(self.descriptor):
            why = f"unknown field {path!r}"
        elif path in self.immutable:
            why = f"{path!r} is immutable"
        elif path in self.descriptor.fields_by_name:
            why = f"{path!r} is output only and cannot be updated"
        else:
            why = f"{path!r} is inside a field; update the whole field"
        return FieldViolation(
            self.mask_field, f"{why}; updatable: {', '.join(self.updatable)} or *"
        )
