"""Loading ONNX models safely.

A model is read from a path, from bytes or taken as a ``ModelProto``. Nothing is ever
unpickled. External data is loaded by this module, not by ``onnx``: each tensor's
``location`` must be a relative path that resolves (after symlinks) inside the model's
folder, otherwise :class:`~prover.errors.UnsafeModelError` is raised before any file is
opened. Weights holding NaN or Inf are rejected with
:class:`~prover.errors.InvalidWeightsError` naming the initializer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from prover.errors import InvalidWeightsError, ModelError, UnsafeModelError


@dataclass(frozen=True)
class LoadedModel:
    """A parsed model with everything the importer needs to record its origin.

    Attributes:
        model: the parsed model, external data already inlined.
        onnx_bytes: a serialised model that ONNX Runtime can run on its own (the original
            bytes unless external data had to be inlined).
        path: the file it came from, if any.
        sha256: SHA-256 of the file (or of the bytes given).
        label: how to name the model in messages (its path, or "<bytes>").
    """

    model: onnx.ModelProto
    onnx_bytes: bytes
    path: str | None
    sha256: str
    label: str


def read_model(source: object) -> LoadedModel:
    """Parse ``source`` (path, bytes or ModelProto) into a :class:`LoadedModel`.

    Raises:
        ModelError: unreadable, malformed or truncated model; external data in bytes.
        UnsafeModelError: external data pointing outside the model's folder.
        InvalidWeightsError: an initializer or Constant holding NaN or Inf.
    """
    if isinstance(source, onnx.ModelProto):
        raw = source.SerializeToString()
        loaded = _parse(raw, "<ModelProto>", None)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        loaded = _parse(bytes(source), "<bytes>", None)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(
                f"cannot read ONNX model {str(path)!r}: {exc.strerror or exc}"
            ) from None
        loaded = _parse(raw, str(path), path)
    else:
        raise ModelError(
            f"cannot read an ONNX model from a {type(source).__name__}; "
            "expected a path, bytes or onnx.ModelProto"
        )
    _check_weights(loaded.model, loaded.label)
    return loaded


def _parse(raw: bytes, label: str, path: Path | None) -> LoadedModel:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(
            f"{label}: not a valid ONNX model (malformed or truncated): {exc}"
        ) from None
    if not model.HasField("graph") or len(model.graph.output) == 0:
        raise ModelError(f"{label}: not a valid ONNX model (no graph or no graph output)")
    digest = hashlib.sha256(raw).hexdigest()
    onnx_bytes = raw
    if any(_is_external(t) for t in _all_tensors(model.graph)):
        if path is None:
            raise ModelError(
                f"{label}: the model stores tensors as external data; load it from its file "
                "path so the data can be found next to it"
            )
        _inline_external_data(model, path)
        onnx_bytes = model.SerializeToString()
    return LoadedModel(model, onnx_bytes, None if path is None else str(path), digest, label)


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _all_tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _all_tensors(sub)


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _inline_external_data(model: onnx.ModelProto, path: Path) -> None:
    folder = path.parent.resolve()
    for tensor in _all_tensors(model.graph):
        if not _is_external(tensor):
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = info.get("location", "")
        where = f"{path}: initializer {tensor.name!r}"
        if not location or os.path.isabs(location) or Path(location).is_absolute():
            raise UnsafeModelError(
                f"{where}: external data location {location!r} must be a relative path "
                "inside the model's folder"
            )
        target = (folder / location).resolve()
        if not target.is_relative_to(folder):
            raise UnsafeModelError(
                f"{where}: external data location {location!r} resolves to {str(target)!r}, "
                f"outside the model's folder {str(folder)!r}"
            )
        if not target.is_file():
            raise ModelError(f"{where}: external data file {location!r} not found")
        offset = int(info.get("offset", "0") or 0)
        length = info.get("length")
        with open(target, "rb") as handle:
            handle.seek(offset)
            data = handle.read(int(length)) if length else handle.read()
        if length and len(data) != int(length):
            raise ModelError(f"{where}: external data file {location!r} is truncated")
        tensor.raw_data = data
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT


def _check_weights(model: onnx.ModelProto, label: str) -> None:
    for tensor in model.graph.initializer:
        _check_tensor(tensor, f"{label}: initializer {tensor.name!r}")
    for node in model.graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                name = node.name or (node.output[0] if node.output else "?")
                _check_tensor(attribute.t, f"{label}: node {name!r} ({node.op_type})")


def _check_tensor(tensor: onnx.TensorProto, where: str) -> None:
    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:
        raise ModelError(f"{where}: cannot decode tensor: {exc}") from None
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise InvalidWeightsError(f"{where} holds NaN or Inf")
