"""Doc comments of services, methods, messages, fields and enums, read from a
FileDescriptorSet built with source info (`protoc --include_source_info`)."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import descriptor_pb2

# Field numbers inside FileDescriptorProto / DescriptorProto / ... (descriptor.proto).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM = 2, 3, 4
_METHOD, _VALUE = 2, 2


class Comments:
    """Full name → leading comment (cleaned), for everything that has one."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet | None = None) -> None:
        self._by_name: dict[str, str] = {}
        if files is not None:
            for file in files.file:
                self._index(file)

    @classmethod
    def from_path(cls, path: str | Path | None) -> Comments:
        if not path:
            return cls()
        data = Path(path).read_bytes()
        return cls(descriptor_pb2.FileDescriptorSet.FromString(data))

    def get(self, full_name: str) -> str:
        return self._by_name.get(full_name, "")

    def _index(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        by_path: dict[tuple[int, ...], str] = {}
        for location in file.source_code_info.location:
            text = location.leading_comments.strip()
            if text:
                by_path[tuple(location.path)] = _clean(text)
        prefix = f"{file.package}." if file.package else ""
        for i, message in enumerate(file.message_type):
            self._message(by_path, (_MESSAGE, i), prefix + message.name, message)
        for i, enum in enumerate(file.enum_type):
            self._enum(by_path, (_ENUM, i), prefix + enum.name, enum)
        for i, service in enumerate(file.service):
            name = prefix + service.name
            self._put(name, by_path.get((_SERVICE, i)))
            for j, method in enumerate(service.method):
                self._put(f"{name}.{method.name}", by_path.get((_SERVICE, i, _METHOD, j)))

    def _message(
        self,
        by_path: dict[tuple[int, ...], str],
        path: tuple[int, ...],
        name: str,
        message: descriptor_pb2.DescriptorProto,
    ) -> None:
        self._put(name, by_path.get(path))
        for i, field in enumerate(message.field):
            self._put(f"{name}.{field.name}", by_path.get((*path, _FIELD, i)))
        for i, nested in enumerate(message.nested_type):
            self._message(by_path, (*path, _NESTED, i), f"{name}.{nested.name}", nested)
        for i, enum in enumerate(message.enum_type):
            self._enum(by_path, (*path, _NESTED_ENUM, i), f"{name}.{enum.name}", enum)

    def _enum(
        self,
        by_path: dict[tuple[int, ...], str],
        path: tuple[int, ...],
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
    ) -> None:
        self._put(name, by_path.get(path))
        for i, value in enumerate(enum.value):
            self._put(f"{name}.{value.name}", by_path.get((*path, _VALUE, i)))

    def _put(self, name: str, text: str | None) -> None:
        if text:
            self._by_name[name] = text


def _clean(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    return "\n".join(lines).strip()
