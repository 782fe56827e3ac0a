"""Reading untrusted .npz files member by member, in bounded memory.

Each member's .npy header (shape, dtype) is read from the zip stream first, without inflating its data, and
checked before anything is allocated: a numeric dtype (object arrays, i.e. pickles, are refused), a declared size
that matches the member's uncompressed size in the zip directory (a header declaring more data than the member
holds is corrupt) and that is within the per-array limit (``max_array_bytes``, else ``$EDGEACT_MAX_ARRAY_BYTES``,
else 4 GiB). Data is then inflated in chunks straight into the array.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from tokenize import TokenError
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from edgeact.errors import CalibrationDataError, UsageError

DEFAULT_MAX_ARRAY_BYTES = 4 * 2**30
MAX_ARRAY_BYTES_ENV = "EDGEACT_MAX_ARRAY_BYTES"
NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
CHUNK_BYTES = 1 << 18
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
# what a broken zip or deflate stream raises while it is read
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


def parse_byte_size(text: str, source: str = MAX_ARRAY_BYTES_ENV) -> int:
    """``"8589934592"``, ``"8GiB"``, ``"500MB"`` as a positive number of bytes; a UsageError naming ``source``."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    unit = found.group(2).lower() if found else ""
    if not found or unit not in _UNITS or float(found.group(1)) * _UNITS[unit] < 1:
        raise UsageError(f"{source}={text!r}: expected a positive number of bytes, such as 8589934592 or 8GiB")
    return int(float(found.group(1)) * _UNITS[unit])


def array_byte_limit(max_array_bytes: int | None = None) -> int:
    """The largest array a data file may declare: ``max_array_bytes``, else $EDGEACT_MAX_ARRAY_BYTES, else 4 GiB."""
    if max_array_bytes is not None:
        if isinstance(max_array_bytes, bool) or not isinstance(max_array_bytes, int) or max_array_bytes < 1:
            raise UsageError(f"max_array_bytes={max_array_bytes!r}: expected a positive number of bytes")
        return max_array_bytes
    text = os.environ.get(MAX_ARRAY_BYTES_ENV)
    return parse_byte_size(text) if text else DEFAULT_MAX_ARRAY_BYTES


def _size(count: int) -> str:
    return f"{count} bytes" if count < 2**20 else f"{count} bytes, {count / 2**30:.3g} GiB"


@dataclass(frozen=True)
class ArrayHeader:
    """One member's .npy header: what the array will be, checked before it is read."""

    member: str
    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _parse_header(stream: IO[bytes], member: str, where: str) -> ArrayHeader:
    """The header at the start of a .npy stream (nothing after it is read)."""
    try:
        version = npy_format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
        read = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = read(stream)
    except (ValueError, SyntaxError, TypeError, TokenError, RecursionError) as exc:  # bad magic, literal or dtype
        raise CalibrationDataError(f"{where}: not a .npy array ({exc})") from exc
    if dtype.hasobject:
        raise CalibrationDataError(f"{where}: holds Python objects (dtype {dtype}); pickled data is refused, "
                                   "save numeric arrays")
    if dtype.kind not in NUMERIC_KINDS or dtype.itemsize == 0:
        raise CalibrationDataError(f"{where}: dtype {dtype} is not a numeric array")
    if any(dim < 0 for dim in shape):
        raise CalibrationDataError(f"{where}: header declares a negative dimension, shape {list(shape)}")
    return ArrayHeader(member, tuple(shape), dtype, fortran_order)


def _member_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limit: int) -> ArrayHeader:
    """A member's header, checked against the member's stored size and against ``limit``."""
    try:
        with archive.open(info) as stream:
            header = _parse_header(stream, info.filename, where)
            offset = stream.tell()
    except _ZIP_ERRORS as exc:
        raise CalibrationDataError(f"{where}: cannot be read ({exc})") from exc
    declared = header.nbytes
    if offset + declared != info.file_size:
        raise CalibrationDataError(
            f"{where}: corrupt: its header declares shape {list(header.shape)} {header.dtype} ({_size(declared)} "
            f"of data) but the member holds {_size(max(0, info.file_size - offset))}")
    if declared > limit:
        raise CalibrationDataError(
            f"{where}: shape {list(header.shape)} {header.dtype} is {_size(declared)}, over the limit of "
            f"{_size(limit)} per array; if the data is genuine, raise the limit with --max-array-bytes 16GiB "
            f"(or {MAX_ARRAY_BYTES_ENV}=16GiB)")
    return header


def _open_zip(path: Path) -> zipfile.ZipFile:
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        raise CalibrationDataError(f"{path}: is a .npy file (one unnamed array); calibration data is an .npz "
                                   "keyed by the model's input names, e.g. numpy.savez(path, x=array)")
    return zipfile.ZipFile(path)


def read_headers(path: Path, limit: int) -> dict[str, ArrayHeader]:
    """Every member's header by array name (``x.npy`` holds ``x``), nothing inflated beyond the headers."""
    try:
        with _open_zip(path) as archive:
            headers: dict[str, ArrayHeader] = {}
            for info in archive.infolist():
                where = f"{path}: member {info.filename!r}"
                if not info.filename.endswith(".npy"):
                    raise CalibrationDataError(f"{where}: is not a .npy array (an .npz holds only NAME.npy members)")
                name = info.filename.removesuffix(".npy")
                if name in headers:
                    raise CalibrationDataError(f"{where}: appears twice in the archive")
                headers[name] = _member_header(archive, info, where, limit)
    except _ZIP_ERRORS as exc:
        raise CalibrationDataError(f"{path}: not a readable .npz file ({exc})") from exc
    if not headers:
        raise CalibrationDataError(f"{path}: holds no arrays")
    return headers


def _read_payload(stream: IO[bytes], header: ArrayHeader, where: str) -> np.ndarray:
    """The data after a parsed header, inflated chunk by chunk into the array (native byte order)."""
    shape = header.shape[::-1] if header.fortran_order else header.shape
    array = np.empty(shape, dtype=header.dtype)
    buffer = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    while filled < len(buffer):
        got = stream.readinto(buffer[filled : filled + CHUNK_BYTES])
        if not got:
            raise CalibrationDataError(f"{where}: data ends after {filled} of {len(buffer)} bytes")
        filled += got
    if stream.read(1):  # reading to the end also checks the member's CRC
        raise CalibrationDataError(f"{where}: holds more data than its header declares")
    if not header.dtype.isnative:
        array = array.byteswap(inplace=True).view(header.dtype.newbyteorder("="))
    return array.T if header.fortran_order else array


def _read_member(archive: zipfile.ZipFile, header: ArrayHeader, where: str) -> np.ndarray:
    try:
        with archive.open(header.member) as stream:
            if _parse_header(stream, header.member, where) != header:
                raise CalibrationDataError(f"{where}: changed while it was being read")
            return _read_payload(stream, header, where)
    except (KeyError, *_ZIP_ERRORS) as exc:  # gone, or its compressed data or CRC is broken
        raise CalibrationDataError(f"{where}: cannot be read ({exc})") from exc


def read_arrays(path: Path, headers: dict[str, ArrayHeader], names: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of ``path``, each checked again against its header from :func:`read_headers`."""
    try:
        with _open_zip(path) as archive:
            return {name: _read_member(archive, headers[name], f"{path}: member {headers[name].member!r}")
                    for name in names}
    except _ZIP_ERRORS as exc:
        raise CalibrationDataError(f"{path}: not a readable .npz file ({exc})") from exc


def read_npz(path: str | Path, names: Iterable[str] | None = None,
             max_array_bytes: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz (all, or ``names``), checked as :mod:`this module <edgeact.calibration.npz>` says."""
    path = Path(path)
    headers = read_headers(path, array_byte_limit(max_array_bytes))
    wanted = list(headers) if names is None else list(names)
    missing = sorted(set(wanted) - set(headers))
    if missing:
        raise CalibrationDataError(f"{path}: has no arrays {missing}; it holds {sorted(headers)}")
    return read_arrays(path, headers, wanted)
