"""Read an ONNX file's metadata without the `onnx` package and without
loading its weights: a streaming reader for the few top-level ModelProto
fields the contract needs (metadata_props = 14, graph = 7). Large fields are
skipped with a seek, so checking a 100 MB model costs microseconds.

`graph_sha256` hashes the serialized graph (nodes and every initializer, i.e.
the weights): the exporter records it in the metadata and the engine checks it
before a session exists, so a damaged file never answers."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO

GRAPH_FIELD = 7
METADATA_FIELD = 14


class NotOnnxError(ValueError):
    """The bytes are not a (complete) ONNX ModelProto."""


def read_metadata_props(path: str | Path) -> dict[str, str]:
    with open(path, "rb") as handle:
        return _scan(handle, os.fstat(handle.fileno()).st_size, None)


def read_model_bytes(data: bytes) -> tuple[dict[str, str], str]:
    """(metadata props, sha256 of the graph's bytes) of a whole model file in memory."""
    digest = hashlib.sha256()
    props = _scan(io.BytesIO(data), len(data), digest)
    return props, digest.hexdigest()


def graph_sha256(path: str | Path) -> str:
    """sha256 of the serialized graph (nodes and initializers) as stored in the file."""
    with open(path, "rb") as handle:
        digest = hashlib.sha256()
        _scan(handle, os.fstat(handle.fileno()).st_size, digest)
        return digest.hexdigest()


def _scan(handle: BinaryIO, size: int, graph_digest) -> dict[str, str]:
    """Top-level fields: metadata entries parsed, the graph hashed (when asked) or skipped."""
    if size == 0:
        raise NotOnnxError("the file is empty")
    props: dict[str, str] = {}
    has_graph = False
    while handle.tell() < size:
        field, wire = _split_key(_varint(handle))
        if wire == 0:
            _varint(handle)
        elif wire == 1:
            _skip(handle, 8, size)
        elif wire == 5:
            _skip(handle, 4, size)
        elif wire == 2:
            length = _varint(handle)
            if field == METADATA_FIELD:
                key, value = _entry(_read(handle, length, size))
                props[key] = value
            elif field == GRAPH_FIELD and graph_digest is not None:
                has_graph = True
                _hash(handle, length, size, graph_digest)
            else:
                has_graph |= field == GRAPH_FIELD
                _skip(handle, length, size)
        else:
            raise NotOnnxError(f"unexpected protobuf wire type {wire} at byte {handle.tell()}")
    if not has_graph:
        raise NotOnnxError("no graph in the file")
    return props


def _split_key(key: int) -> tuple[int, int]:
    field, wire = key >> 3, key & 7
    if field == 0:
        raise NotOnnxError("protobuf field number 0")
    return field, wire


def _varint(stream) -> int:
    result = shift = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise NotOnnxError("the file ends inside a field (truncated?)")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise NotOnnxError("malformed varint")


def _skip(handle: BinaryIO, count: int, size: int) -> None:
    if handle.tell() + count > size:
        raise NotOnnxError("a field runs past the end of the file (truncated?)")
    handle.seek(count, os.SEEK_CUR)


def _hash(handle: BinaryIO, count: int, size: int, digest) -> None:
    if handle.tell() + count > size:
        raise NotOnnxError("a field runs past the end of the file (truncated?)")
    while count:
        chunk = handle.read(min(count, 1 << 22))
        digest.update(chunk)
        count -= len(chunk)


def _read(handle: BinaryIO, count: int, size: int) -> bytes:
    if handle.tell() + count > size:
        raise NotOnnxError("a field runs past the end of the file (truncated?)")
    return handle.read(count)


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def _entry(data: bytes) -> tuple[str, str]:
    """A StringStringEntryProto: key = 1, value = 2."""
    stream, found = _Bytes(data), {1: "", 2: ""}
    while stream.pos < len(data):
        field, wire = _split_key(_varint(stream))
        if wire != 2:
            raise NotOnnxError("metadata entry with a non-string field")
        length = _varint(stream)
        raw = stream.read(length)
        if len(raw) != length:
            raise NotOnnxError("metadata entry truncated")
        if field in found:
            try:
                found[field] = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise NotOnnxError("metadata is not UTF-8") from exc
    return found[1], found[2]
