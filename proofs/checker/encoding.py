"""Number encodings (FORMAT.md, section 3), canonical hashing, the two failure kinds."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from typing import Any

import numpy as np

_HEX = re.compile(r"-?0x[01]\.[0-9a-f]+p[+-][0-9]+\Z")
_ABSENT = object()
_decode64 = functools.lru_cache(maxsize=4096)(base64.b64decode)  # proofs repeat many vectors


class Malformed(Exception):
    """The certificate is not a well-formed document of the format (exit code 2)."""


class Invalid(Exception):
    """The certificate is well formed but does not prove its claim (exit code 1)."""


def parse_float(value: Any, where: str) -> float:
    """Decode one exact float written by ``float.hex`` (canonical form only)."""
    if not isinstance(value, str) or not _HEX.match(value):
        raise Malformed(f"{where}: expected a float.hex string, got {str(value)[:40]!r}")
    number = float.fromhex(value)
    if float.hex(number) != value:  # fromhex never gives Inf or NaN for a _HEX match
        raise Malformed(f"{where}: {value!r} is not a canonical finite float.hex string")
    return number


def parse_array(value: Any, where: str, size: int | None = None) -> np.ndarray:
    """Decode a float64 vector: hex strings, ``{"f64le": base64}``, ``{"bits", "n"}``, or
    ``{"bits", "n", "at", "f64le"}`` (bits, with the entries at the increasing uint32
    positions ``at`` replaced by the float64 values)."""
    if isinstance(value, list):
        array = np.array([parse_float(v, f"{where}[{i}]") for i, v in enumerate(value)], float)
    elif not isinstance(value, dict):
        raise Malformed(f"{where}: expected an array of numbers")
    elif set(value) in ({"bits", "n"}, {"bits", "n", "at", "f64le"}):
        n = parse_int(value["n"], f"{where}.n", 0)
        raw = _base64(value["bits"], where)
        if len(raw) != (n + 7) // 8:
            raise Malformed(f"{where}: {len(raw)} bytes do not hold {n} bits")
        bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
        if bits[n:].any():
            raise Malformed(f"{where}: padding bits must be zero")
        array = bits[:n].astype(np.float64)
        if "at" in value:
            raw = _base64(value["at"], where)
            at = np.frombuffer(raw[: len(raw) - len(raw) % 4], dtype="<u4").astype(np.int64)
            values = _float64s(value["f64le"], where)
            if len(raw) % 4 or at.size != values.size or (at.size and at[-1] >= n):
                raise Malformed(f"{where}: 'at' must hold one position below n per value")
            if (np.diff(at) <= 0).any():
                raise Malformed(f"{where}: positions in 'at' must increase")
            array[at] = values
    elif set(value) == {"f64le"}:
        array = _float64s(value["f64le"], where)
    else:
        raise Malformed(
            f"{where}: an encoded array is {{'f64le'}}, {{'bits', 'n'}} or "
            "{'bits', 'n', 'at', 'f64le'}"
        )
    if size is not None and array.size != size:
        raise Malformed(f"{where}: expected {size} numbers, got {array.size}")
    return array


def _float64s(text: Any, where: str) -> np.ndarray:
    raw = _base64(text, where)
    if len(raw) % 8:
        raise Malformed(f"{where}: {len(raw)} bytes is not a whole number of float64")
    array = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    if not np.isfinite(array).all():
        raise Malformed(f"{where}: NaN or Inf in array")
    return array


def _base64(text: Any, where: str) -> bytes:
    if not isinstance(text, str):
        raise Malformed(f"{where}: expected base64 text")
    try:
        return _decode64(text.encode("ascii"), validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise Malformed(f"{where}: bad base64 ({exc})") from None


def parse_int(value: Any, where: str, low: int = 0, high: int | None = None) -> int:
    """Decode a JSON integer in ``[low, high)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{where}: expected an integer, got {str(value)[:40]!r}")
    if value < low or (high is not None and value >= high):
        raise Malformed(f"{where}: {value} is out of range [{low}, {high})")
    return value


def field(obj, key: str, where: str, kind=None, allowed=(), default=_ABSENT, error=Malformed):
    """``obj[key]`` (``default`` if given and absent): a Malformed error naming ``where`` when
    absent or not a ``kind`` (a bool only if ``kind`` is), ``error`` if not one of ``allowed``."""
    if not isinstance(obj, dict) or (key not in obj and default is _ABSENT):
        raise Malformed(f"{where}: missing field {key!r}")
    value = obj.get(key, default)
    if kind and not (isinstance(value, kind) and isinstance(value, bool) == (kind is bool)):
        raise Malformed(f"{where}.{key}: wrong type {type(value).__name__}")
    if allowed and value not in allowed:
        raise error(f"{where}.{key}: {value!r:.60} is not one of {list(allowed)}")
    return value


def canonical_json(value: Any) -> bytes:
    """The canonical serialisation that hashes are taken of (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256(data: bytes) -> str:
    """Hex SHA-256 digest."""
    return hashlib.sha256(data).hexdigest()


def hex_list(array: np.ndarray) -> list[str]:
    """Every entry of ``array`` (C order) as a float.hex string."""
    return [float.hex(float(v)) for v in np.asarray(array, dtype=np.float64).reshape(-1)]
