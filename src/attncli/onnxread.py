"""Read the parts of an ONNX file a weight conversion needs, straight from its protobuf bytes.

Only what converting exported weights takes: initializers (name, shape, fp32/int64 data), nodes (name, op
type, inputs, outputs) and the tensor of Constant nodes. No dependency on the `onnx` package, whose
protobuf stack is far heavier than these ~150 lines. Field numbers are those of onnx/onnx.proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from attncli.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

# onnx.proto field numbers (stable since IR version 3).
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_OUTPUT = 1, 5, 12
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _NODE_OP_TYPE, _NODE_ATTRIBUTE = 1, 2, 3, 4, 5
_ATTR_NAME, _ATTR_T = 1, 5
_TENSOR_DIMS, _TENSOR_DATA_TYPE, _TENSOR_FLOAT_DATA, _TENSOR_INT64_DATA = 1, 2, 4, 7
_TENSOR_NAME, _TENSOR_RAW_DATA, _TENSOR_EXTERNAL_DATA = 8, 9, 13
_FLOAT, _INT64 = 1, 7  # TensorProto.DataType


class _Span:
    """A length-delimited field: its (start, end) offsets in the file's bytes."""

    __slots__ = ("start", "end")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at pos; return (value, next position)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int | _Span]]:
    """Yield (field number, varint value or span) for each field of the message in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            yield number, _Span(pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {pos}")


def _signed(value: int) -> int:
    """Two's-complement reading of a 64-bit varint (int64 fields store -1 as 2**64 - 1)."""
    return value - (1 << 64) if value >= 1 << 63 else value


@dataclass
class Tensor:
    """An initializer or Constant value: name, shape, ONNX data type and where its data lies."""

    name: str
    dims: tuple[int, ...]
    data_type: int
    _buf: memoryview = field(repr=False)
    _raw: _Span | None = field(default=None, repr=False)
    _floats: _Span | None = field(default=None, repr=False)
    _ints: list[int] = field(default_factory=list, repr=False)

    def numpy(self) -> "np.ndarray":
        """The tensor as a numpy array (float32 or int64), copied out of the file's bytes."""
        import numpy as np

        dtype = {_FLOAT: np.float32, _INT64: np.int64}.get(self.data_type)
        if dtype is None:
            raise ModelLoadError(f"ONNX tensor {self.name!r} has data type {self.data_type}",
                                 "only float32 and int64 tensors are read")
        if self._raw is not None:
            flat = np.frombuffer(self._buf[self._raw.start:self._raw.end], dtype=np.dtype(dtype).newbyteorder("<"))
        elif self._floats is not None:
            flat = np.frombuffer(self._buf[self._floats.start:self._floats.end], dtype="<f4")
        else:
            flat = np.asarray(self._ints, dtype=np.int64)
        return flat.astype(dtype).reshape(self.dims).copy()


@dataclass
class Node:
    """A graph node: name, op type, input and output value names, and a Constant's tensor if any."""

    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    value: Tensor | None = None


@dataclass
class Graph:
    """The initializers (by name) and nodes of an ONNX model's main graph."""

    initializers: dict[str, Tensor]
    nodes: list[Node]

    def constant(self, value_name: str) -> "np.ndarray | None":
        """The value of a Constant node's output or an initializer by value name; None if neither."""
        if value_name in self.initializers:
            return self.initializers[value_name].numpy()
        for node in self.nodes:
            if node.op_type == "Constant" and value_name in node.outputs and node.value is not None:
                return node.value.numpy()
        return None


def _text(buf: memoryview, span: _Span) -> str:
    """Decode a string field."""
    return bytes(buf[span.start:span.end]).decode("utf-8")


def _tensor(buf: memoryview, span: _Span) -> Tensor:
    """Parse a TensorProto."""
    dims: list[int] = []
    name, data_type = "", 0
    raw = floats = None
    ints: list[int] = []
    for number, value in _fields(buf, span.start, span.end):
        if number == _TENSOR_DIMS:
            if isinstance(value, _Span):  # packed repeated int64
                pos = value.start
                while pos < value.end:
                    dim, pos = _varint(buf, pos)
                    dims.append(_signed(dim))
            else:
                dims.append(_signed(value))
        elif number == _TENSOR_DATA_TYPE:
            data_type = int(value)  # type: ignore[arg-type]
        elif number == _TENSOR_NAME:
            name = _text(buf, value)  # type: ignore[arg-type]
        elif number == _TENSOR_RAW_DATA:
            raw = value
        elif number == _TENSOR_FLOAT_DATA and isinstance(value, _Span):
            floats = value
        elif number == _TENSOR_INT64_DATA:
            if isinstance(value, _Span):
                pos = value.start
                while pos < value.end:
                    item, pos = _varint(buf, pos)
                    ints.append(_signed(item))
            else:
                ints.append(_signed(value))
        elif number == _TENSOR_EXTERNAL_DATA:
            raise ModelLoadError("this ONNX file keeps its weights in external data files",
                                 "give the single-file export (weights inside the .onnx)")
    return Tensor(name, tuple(dims), data_type, buf, raw, floats, ints)  # type: ignore[arg-type]


def _node(buf: memoryview, span: _Span) -> Node:
    """Parse a NodeProto (and, for Constant nodes, the tensor of their `value` attribute)."""
    inputs: list[str] = []
    outputs: list[str] = []
    name = op_type = ""
    attrs: list[_Span] = []
    for number, value in _fields(buf, span.start, span.end):
        if number == _NODE_INPUT:
            inputs.append(_text(buf, value))  # type: ignore[arg-type]
        elif number == _NODE_OUTPUT:
            outputs.append(_text(buf, value))  # type: ignore[arg-type]
        elif number == _NODE_NAME:
            name = _text(buf, value)  # type: ignore[arg-type]
        elif number == _NODE_OP_TYPE:
            op_type = _text(buf, value)  # type: ignore[arg-type]
        elif number == _NODE_ATTRIBUTE:
            attrs.append(value)  # type: ignore[arg-type]
    tensor = None
    if op_type == "Constant":
        for attr in attrs:
            fields = list(_fields(buf, attr.start, attr.end))
            attr_name = next((_text(buf, v) for n, v in fields if n == _ATTR_NAME), "")  # type: ignore[arg-type]
            if attr_name == "value":
                tensor = next((_tensor(buf, v) for n, v in fields if n == _ATTR_T), None)  # type: ignore[arg-type]
    return Node(name, op_type, inputs, outputs, tensor)


def _graph_span(buf: memoryview) -> tuple[int, _Span]:
    """Offset of the ModelProto's graph field key and the span of the GraphProto it holds."""
    pos = 0
    while pos < len(buf):
        key_at = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(buf, pos)
            if number == _MODEL_GRAPH:
                return key_at, _Span(pos, pos + length)
            pos += length
        elif wire == 0:
            _, pos = _varint(buf, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            break
    raise ValueError("no graph in this file")


def read_graph(data: bytes) -> Graph:
    """Parse an ONNX file's bytes into its initializers and nodes."""
    buf = memoryview(data)
    try:
        _, graph = _graph_span(buf)
        initializers: dict[str, Tensor] = {}
        nodes: list[Node] = []
        for number, value in _fields(buf, graph.start, graph.end):
            if number == _GRAPH_NODE:
                nodes.append(_node(buf, value))  # type: ignore[arg-type]
            elif number == _GRAPH_INITIALIZER:
                tensor = _tensor(buf, value)  # type: ignore[arg-type]
                initializers[tensor.name] = tensor
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"not a readable ONNX file ({exc})", "check the file is a complete .onnx export") from exc
    return Graph(initializers, nodes)


def _encode_varint(value: int) -> bytes:
    """Encode a non-negative int as a base-128 varint."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    """Encode a length-delimited field."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def with_float_outputs(data: bytes, names: list[str]) -> bytes:
    """The same ONNX model with extra float32 graph outputs, so a runtime can return intermediate values."""
    buf = memoryview(data)
    key_at, graph = _graph_span(buf)
    extra = b""
    for name in names:
        tensor_type = _len_field(1, _encode_varint(1 << 3) + _encode_varint(_FLOAT))  # TypeProto.tensor_type.elem_type
        extra += _len_field(_GRAPH_OUTPUT, _len_field(1, name.encode("utf-8")) + _len_field(2, tensor_type))
    new_graph = bytes(buf[graph.start:graph.end]) + extra
    return bytes(buf[:key_at]) + _len_field(_MODEL_GRAPH, new_graph) + bytes(buf[graph.end:])
