"""A pure-numpy runner for the guard's own ONNX file, for platforms without onnxruntime (some phones).

It reads the protobuf by hand (no onnx package) and interprets the graph node by node, with
exactly the operators the guard's exported, int8-quantized MiniLM uses. It is several times
slower than onnxruntime and keeps the matrix weights as float32 (about 60 MB more memory),
but it gives the same verdicts. Any other ONNX file is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GuardError

# ONNX TensorProto data types -> numpy
_DTYPES: dict[int, Any] = {
    1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_, 11: np.float64
}  # fmt: skip


# ---------------------------------------------------------------- protobuf, just enough of it


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a message; length-delimited values are memoryviews."""
    pos, end = 0, len(buf)
    val: Any
    while pos < end:
        key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 1:
            val, pos = buf[pos : pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wire == 5:
            val, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield num, wire, val


def _packed_varints(val: Any, wire: int) -> list[int]:
    if wire == 0:
        return [val]
    out, pos = [], 0
    while pos < len(val):
        v, pos = _varint(val, pos)
        out.append(v)
    return out


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw = 1, "", None
    floats: list[float] = []
    ints: list[int] = []
    for num, wire, val in _fields(buf):
        if num == 1:
            dims += [_signed(v) for v in _packed_varints(val, wire)]
        elif num == 2:
            dtype = val
        elif num == 4:
            floats += list(np.frombuffer(val, "<f4")) if wire == 2 else [float(np.frombuffer(val, "<f4")[0])]
        elif num in (5, 7):
            ints += [_signed(v) for v in _packed_varints(val, wire)]
        elif num == 8:
            name = bytes(val).decode()
        elif num == 9:
            raw = bytes(val)
    np_type = _DTYPES.get(dtype)
    if np_type is None:
        raise ValueError(f"unsupported tensor type {dtype}")
    if raw is not None:
        arr = np.frombuffer(raw, dtype=np.dtype(np_type).newbyteorder("<")).astype(np_type)
    elif floats:
        arr = np.array(floats, dtype=np_type)
    else:
        arr = np.array(ints, dtype=np_type)
    return name, arr.reshape(dims)


def _attribute(buf: memoryview) -> tuple[str, Any]:
    name, value, floats, ints = "", None, [], []  # type: tuple[str, Any, list[float], list[int]]
    for num, wire, val in _fields(buf):
        if num == 1:
            name = bytes(val).decode()
        elif num == 2:
            value = float(np.frombuffer(val, "<f4")[0])
        elif num == 3:
            value = _signed(val)
        elif num == 4:
            value = bytes(val).decode()
        elif num == 5:
            value = _tensor(val)[1]
        elif num == 7:
            floats += list(np.frombuffer(val, "<f4")) if wire == 2 else [float(np.frombuffer(val, "<f4")[0])]
        elif num == 8:
            ints += [_signed(v) for v in _packed_varints(val, wire)]
    if value is None:
        value = ints if ints else floats
    return name, value


class _Node:
    __slots__ = ("op", "inputs", "outputs", "attrs")

    def __init__(self, buf: memoryview) -> None:
        self.inputs: list[str] = []
        self.outputs: list[str] = []
        self.op = ""
        self.attrs: dict[str, Any] = {}
        for num, _, val in _fields(buf):
            if num == 1:
                self.inputs.append(bytes(val).decode())
            elif num == 2:
                self.outputs.append(bytes(val).decode())
            elif num == 4:
                self.op = bytes(val).decode()
            elif num == 5:
                k, v = _attribute(val)
                self.attrs[k] = v


# ---------------------------------------------------------------- operators


def _erf_fast(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Numerical Recipes erfc Chebyshev fit), vectorised."""
    z = np.abs(x).astype(np.float64)
    t = 1.0 / (1.0 + 0.5 * z)
    coef = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
            -0.82215223, 0.17087277)  # fmt: skip
    poly = np.zeros_like(z)
    for c in reversed(coef[1:]):
        poly = (poly + c) * t
    poly = poly + coef[0] - z * z
    r = 1.0 - t * np.exp(poly)
    return np.where(x >= 0, r, -r).astype(x.dtype)


def _quantize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DynamicQuantizeLinear: uint8, scale and zero point from the tensor's range (0 always included)."""
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    scale = np.float32((hi - lo) / 255.0) if hi > lo else np.float32(1.0)
    zp = np.uint8(np.clip(np.rint(-lo / scale), 0, 255))
    q = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
    return q, np.array(scale, np.float32), np.array(zp, np.uint8)


def _layernorm(x: np.ndarray, scale: np.ndarray, bias: Any, axis: int, eps: float) -> np.ndarray:
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * scale + bias).astype(np.float32)


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _reshape(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(shape.tolist())]
    return x.reshape(dims)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return (a // b).astype(a.dtype)
    return np.divide(a, b).astype(np.result_type(a, b))


def _gather(data: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    return np.take(data, idx, axis=axis)


def _reduce(fn: Callable[..., np.ndarray], x: np.ndarray, axes: Any, keepdims: int) -> np.ndarray:
    ax = None if axes is None or len(axes) == 0 else tuple(int(a) for a in np.asarray(axes).ravel())
    return fn(x, axis=ax, keepdims=bool(keepdims))


# ---------------------------------------------------------------- the runner


class NumpyOnnx:
    """Runs one ONNX graph in numpy. run(outputs, feeds) mirrors onnxruntime.InferenceSession.run."""

    def __init__(self, path: Path) -> None:
        try:
            data = memoryview(Path(path).read_bytes())
            graph = next(val for num, _, val in _fields(data) if num == 7)
            self.nodes: list[_Node] = []
            self.init: dict[str, np.ndarray] = {}
            for num, _, val in _fields(graph):
                if num == 1:
                    self.nodes.append(_Node(val))
                elif num == 5:
                    name, arr = _tensor(val)
                    self.init[name] = arr
        except (StopIteration, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise GuardError(f"the guard's model file is damaged or not ONNX: {path}") from exc
        unknown = {n.op for n in self.nodes} - set(_OPS)
        if unknown or not self.nodes:
            raise GuardError(f"the guard's model file uses operators the numpy fallback lacks: {sorted(unknown)}")
        # Quantized weights are dequantized-free: MatMulInteger's int8 B is kept as float32 minus its zero point.
        self._prepare_weights()

    def _prepare_weights(self) -> None:
        for node in self.nodes:
            if node.op == "MatMulInteger" and node.inputs[1] in self.init:
                b = self.init[node.inputs[1]]
                bzp = self.init.get(node.inputs[3], np.zeros((), b.dtype)) if len(node.inputs) > 3 else 0
                if b.dtype != np.float32:
                    self.init[node.inputs[1]] = b.astype(np.float32) - np.float32(bzp)
                node.attrs["_b_centred"] = True

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        env: dict[str, Any] = dict(self.init)
        env.update(feeds)
        env[""] = None
        for node in self.nodes:
            args = [env[i] if i else None for i in node.inputs]
            result = _OPS[node.op](node, *args)
            if not isinstance(result, tuple):
                result = (result,)
            for name, value in zip(node.outputs, result, strict=False):
                env[name] = value
        return [env[o] for o in outputs]


def _op_matmul_integer(node: _Node, a: np.ndarray, b: np.ndarray, azp: Any = None, bzp: Any = None) -> np.ndarray:
    a32 = a.astype(np.float32) - (np.float32(azp) if azp is not None else np.float32(0))
    if not node.attrs.get("_b_centred"):
        b = b.astype(np.float32) - (np.float32(bzp) if bzp is not None else np.float32(0))
    return np.rint(np.matmul(a32, b)).astype(np.int32)


_OPS: dict[str, Callable[..., Any]] = {
    "Constant": lambda n: np.asarray(n.attrs["value"]),
    "Mul": lambda n, a, b: a * b,
    "Add": lambda n, a, b: a + b,
    "Sub": lambda n, a, b: a - b,
    "Div": lambda n, a, b: _div(a, b),
    "Unsqueeze": lambda n, x, axes: np.expand_dims(x, tuple(int(a) % (x.ndim + len(axes)) for a in axes)),
    "Cast": lambda n, x: x.astype(_DTYPES[n.attrs["to"]]),
    "MatMulInteger": _op_matmul_integer,
    "DynamicQuantizeLinear": lambda n, x: _quantize(x),
    "Concat": lambda n, *xs: np.concatenate([np.asarray(x) for x in xs], axis=n.attrs["axis"]),
    "Reshape": lambda n, x, s: _reshape(x, s),
    "Transpose": lambda n, x: np.transpose(x, n.attrs.get("perm") or None),
    "Gather": lambda n, x, i: _gather(x, i, n.attrs.get("axis", 0)),
    "Shape": lambda n, x: np.array(x.shape, np.int64),
    "LayerNormalization": lambda n, x, s, b=None: _layernorm(
        x, s, 0 if b is None else b, n.attrs.get("axis", -1), n.attrs.get("epsilon", 1e-5)
    ),
    "MatMul": lambda n, a, b: np.matmul(a, b),
    "Softmax": lambda n, x: _softmax(x, n.attrs.get("axis", -1)),
    "Erf": lambda n, x: _erf_fast(x),
    "ReduceSum": lambda n, x, axes=None: _reduce(np.sum, x, axes, n.attrs.get("keepdims", 1)),
    "ReduceL2": lambda n, x, axes=None: np.sqrt(
        _reduce(np.sum, x * x, axes if axes is not None else n.attrs.get("axes"), n.attrs.get("keepdims", 1))
    ),
    "DequantizeLinear": lambda n, x, s, zp=None: (
        (x.astype(np.float32) - (0 if zp is None else zp.astype(np.float32))) * s
    ).astype(np.float32),
    "Clip": lambda n, x, lo=None, hi=None: x if lo is None and hi is None else np.clip(x, lo, hi),
    "Range": lambda n, a, b, d: np.arange(a, b, d, dtype=np.result_type(a)),
}
