"""Number encodings, canonical hashing and the checker's two failure kinds.

Numbers in a certificate are exact binary64 values: a scalar is the string that
``float.hex`` writes (``"0x1.8000000000000p+1"``, ``"-0x0.0p+0"``); an array is a JSON list
of such strings or an object ``{"f64le": BASE64}`` holding the little-endian IEEE-754
binary64 bytes, or (for vectors of zeros and ones) ``{"bits": BASE64, "n": N}``: N bits
packed most significant bit first, padding bits zero. NaN and infinities are rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from typing import Any

import numpy as np

_HEX = re.compile(r"-?0x[01]\.[0-9a-f]+p[+-][0-9]+\Z")


class Malformed(Exception):
    """The certificate is not a well-formed document of the format (exit code 2)."""


class Invalid(Exception):
    """The certificate is well formed but does not prove its claim (exit code 1)."""


def parse_float(value: Any, where: str) -> float:
    """Decode one exact float written by ``float.hex`` (canonical form only)."""
    if not isinstance(value, str) or not _HEX.match(value):
        raise Malformed(f"{where}: expected a float.hex string, got {str(value)[:40]!r}")
    number = float.fromhex(value)
    if not math.isfinite(number) or float.hex(number) != value:
        raise Malformed(f"{where}: {value!r} is not a canonical finite float.hex string")
    return number


def parse_array(value: Any, where: str, size: int | None = None) -> np.ndarray:
    """Decode a float64 vector (list of hex strings or ``{"f64le": base64}``)."""
    if isinstance(value, dict) and set(value) == {"bits", "n"}:
        return _parse_bits(value, where, size)
    if isinstance(value, dict):
        if set(value) != {"f64le"} or not isinstance(value["f64le"], str):
            raise Malformed(f"{where}: an encoded array is exactly {{'f64le': base64}}")
        try:
            raw = base64.b64decode(value["f64le"].encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise Malformed(f"{where}: bad base64 ({exc})") from None
        if len(raw) % 8:
            raise Malformed(f"{where}: {len(raw)} bytes is not a whole number of float64")
        array = np.frombuffer(raw, dtype="<f8").astype(np.float64)
        if not np.isfinite(array).all():
            raise Malformed(f"{where}: NaN or Inf in array")
    elif isinstance(value, list):
        array = np.array([parse_float(v, f"{where}[{i}]") for i, v in enumerate(value)])
        array = array.astype(np.float64).reshape(-1)
    else:
        raise Malformed(f"{where}: expected an array of numbers")
    if size is not None and array.size != size:
        raise Malformed(f"{where}: expected {size} numbers, got {array.size}")
    return array


def _parse_bits(value: dict, where: str, size: int | None) -> np.ndarray:
    n = parse_int(value["n"], f"{where}.n", 0)
    if not isinstance(value["bits"], str):
        raise Malformed(f"{where}.bits: expected base64 text")
    try:
        raw = base64.b64decode(value["bits"].encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise Malformed(f"{where}: bad base64 ({exc})") from None
    if len(raw) != (n + 7) // 8:
        raise Malformed(f"{where}: {len(raw)} bytes do not hold {n} bits")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))
    if bits[n:].any():
        raise Malformed(f"{where}: padding bits must be zero")
    array = bits[:n].astype(np.float64)
    if size is not None and array.size != size:
        raise Malformed(f"{where}: expected {size} numbers, got {array.size}")
    return array


def encode_array(array: np.ndarray, compact: bool = False) -> Any:
    """Encode a float64 vector as hex strings, or compactly (bits when all are 0 or 1)."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    if not np.isfinite(flat).all():
        raise ValueError("cannot encode NaN or Inf")
    if compact and np.all((flat == 0.0) | (flat == 1.0)):
        packed = np.packbits(flat.astype(np.uint8)).tobytes()
        return {"bits": base64.b64encode(packed).decode("ascii"), "n": int(flat.size)}
    if compact:
        return {"f64le": base64.b64encode(flat.astype("<f8").tobytes()).decode("ascii")}
    return [float.hex(float(v)) for v in flat]


def parse_int(value: Any, where: str, low: int = 0, high: int | None = None) -> int:
    """Decode a JSON integer in ``[low, high)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{where}: expected an integer, got {str(value)[:40]!r}")
    if value < low or (high is not None and value >= high):
        raise Malformed(f"{where}: {value} is out of range [{low}, {high})")
    return value


def field(obj: Any, key: str, where: str, kind: type | tuple[type, ...] | None = None) -> Any:
    """``obj[key]`` with a Malformed error naming ``where`` when absent or mistyped."""
    if not isinstance(obj, dict) or key not in obj:
        raise Malformed(f"{where}: missing field {key!r}")
    value = obj[key]
    if kind is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise Malformed(f"{where}.{key}: wrong type {type(value).__name__}")
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
