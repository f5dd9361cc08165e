"""Quantized test models and an independent reference dequantizer.

The reference works element by element with Python ints, written from the
schema's description (low bits first, two's complement), sharing no code
with mtpsurgeon's unpacking or dequantization.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelkit import OP, T, Kit


# -- independent packing / unpacking (Python ints) ---------------------------------

def pack_bits(values, bits: int) -> bytes:
    """Pack ints ``bits`` wide, the first value in the lowest bits of each byte."""
    per = 8 // bits
    out = bytearray((len(values) + per - 1) // per)
    for i, v in enumerate(values):
        out[i // per] |= (int(v) & ((1 << bits) - 1)) << (bits * (i % per))
    return bytes(out)


def unpack_ref(data: bytes, bits: int, count: int, signed: bool = True) -> list[int]:
    """Reference unpacking: element i is bits [bits*(i%per), ...) of byte i//per."""
    per = 8 // bits
    vals = []
    for i in range(count):
        u = (data[i // per] >> (bits * (i % per))) & ((1 << bits) - 1)
        if signed and u >= 1 << (bits - 1):
            u -= 1 << bits
        vals.append(u)
    return vals


def ref_dequant(q: list[int], shape, scales, zps, axis: int | None) -> np.ndarray:
    """f = float32(scale * (q - zp)) per element; ``axis`` None means per-tensor."""
    idx = np.indices(shape).reshape(len(shape), -1).T if shape else [()]
    out = np.empty(len(q), dtype=np.float32)
    for i, (v, ix) in enumerate(zip(q, idx)):
        c = 0 if axis is None else int(ix[axis])
        out[i] = np.float32(np.float64(np.float32(scales[c])) * (v - int(zps[c])))
    return out.reshape(shape)


def ref_block_dequant(q: list[int], shape, block_scales_f16: np.ndarray, block: int) -> np.ndarray:
    """Blockwise reference: element (r, c) uses scale[r, c // block], zero point 0."""
    rows, cols = shape
    out = np.empty(shape, dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            s = float(block_scales_f16[r, c // block])
            out[r, c] = np.float32(s * q[r * cols + c])
    return out


# -- the model ----------------------------------------------------------------------

@dataclass
class Expect:
    """What a constant tensor of the test model must dequantize to."""

    name: str
    dtype: str
    shape: tuple
    stored: bytes
    values: np.ndarray  #: float32 reference (or the stored floats / ints)


def quant_model(path: Path, seed: int = 0) -> tuple[Path, dict[str, Expect]]:
    """One subgraph holding every storage/quantization case the dump must handle."""
    rng = np.random.default_rng(seed)
    k = Kit()
    sg = k.subgraph()
    exp: dict[str, Expect] = {}

    def add(name, shape, ttype, tname, stored, values, **q):
        k.tensor(sg, name, shape, ttype, stored, **q)
        exp[name] = Expect(name, tname, tuple(shape), stored, values)

    # INT8 per-channel along dim 0, zero points 0
    q = rng.integers(-128, 128, size=12).tolist()
    s = [0.01, 0.02, 0.5, 3.0]
    add("w8.q0", (4, 3), T.INT8, "INT8", np.array(q, np.int8).tobytes(),
        ref_dequant(q, (4, 3), s, [0] * 4, 0), scale=s, zero_point=[0] * 4, qdim=0)
    # INT8 per-channel along dim 1 with nonzero zero points
    q = rng.integers(-128, 128, size=15).tolist()
    s, z = [0.1, 0.25, 0.003, 1.5, 7.0], [1, -2, 0, 3, 5]
    add("w8.q1", (3, 5), T.INT8, "INT8", np.array(q, np.int8).tobytes(),
        ref_dequant(q, (3, 5), s, z, 1), scale=s, zero_point=z, qdim=1)
    # INT4 per-channel, odd element count (15)
    q = rng.integers(-8, 8, size=15).tolist()
    s = [0.125, 0.3, 0.07]
    add("w4.pc", (3, 5), T.INT4, "INT4", pack_bits(q, 4),
        ref_dequant(q, (3, 5), s, [0] * 3, 0), scale=s, zero_point=[0] * 3, qdim=0)
    # INT4 per-tensor, rank 1, odd count, extremes included
    q = [-8, 7, 0, -1, 1, -7, 3]
    add("w4.pt", (7,), T.INT4, "INT4", pack_bits(q, 4),
        ref_dequant(q, (7,), [0.5], [0], None), scale=[0.5], zero_point=[0])
    # INT2 per-channel (21 elements)
    q = rng.integers(-2, 2, size=21).tolist()
    s = [0.2, 0.4, 0.9]
    add("w2.pc", (3, 7), T.INT2, "INT2", pack_bits(q, 2),
        ref_dequant(q, (3, 7), s, [0] * 3, 0), scale=s, zero_point=[0] * 3, qdim=0)
    # UINT8 per-tensor, zero point 128
    q = rng.integers(0, 256, size=6).tolist()
    add("u8.pt", (2, 3), T.UINT8, "UINT8", np.array(q, np.uint8).tobytes(),
        ref_dequant(q, (2, 3), [0.5], [128], None), scale=[0.5], zero_point=[128])
    # INT16 per-channel
    q = rng.integers(-32768, 32768, size=8).tolist()
    s = [1e-4, 3e-3]
    add("i16.pc", (2, 4), T.INT16, "INT16", np.array(q, np.int16).tobytes(),
        ref_dequant(q, (2, 4), s, [0, 0], 0), scale=s, zero_point=[0, 0], qdim=0)
    # INT4 blockwise: [4, 64], block 32, FLOAT16 scales [4, 2]
    q = rng.integers(-8, 8, size=256).tolist()
    bs = (rng.uniform(0.01, 0.2, size=(4, 2))).astype(np.float16)
    scales_idx = k.tensor(sg, "w4.block_scales", (4, 2), T.FLOAT16, bs.tobytes())
    exp["w4.block_scales"] = Expect("w4.block_scales", "FLOAT16", (4, 2), bs.tobytes(), bs.astype(np.float32))
    add("w4.block", (4, 64), T.INT4, "INT4", pack_bits(q, 4),
        ref_block_dequant(q, (4, 64), bs, 32), blockwise=(scales_idx, 32))
    # F32 norm weight carrying spurious quantization (naive dequant gives zeros)
    norm = (1.0 + rng.standard_normal(8)).astype(np.float32)
    add("layers.0.input_layernorm.weight", (8,), T.FLOAT32, "FLOAT32", norm.tobytes(), norm,
        scale=[0.0], zero_point=[0])
    # FLOAT16 and plain FLOAT32
    h = rng.standard_normal((3, 4)).astype(np.float16)
    add("f16", (3, 4), T.FLOAT16, "FLOAT16", h.tobytes(), h.astype(np.float32))
    w = rng.standard_normal((2, 2)).astype(np.float32)
    add("f32", (2, 2), T.FLOAT32, "FLOAT32", w.tobytes(), w)
    # unquantized INT32 constant: kept as integers
    ints = np.array([3, -4], np.int32)
    add("shape_const", (2,), T.INT32, "INT32", ints.tobytes(), ints)
    # activation without data: skipped
    x = k.tensor(sg, "x", (1, 4))
    sg.inputs, sg.outputs = [x], [x]
    return k.save(path), exp


def dequantize_model(path: Path, weight: str, seed: int = 1) -> tuple[Path, bytes, list]:
    """x -> nothing; DEQUANTIZE(weight) is the only op, its output the model output.

    ``weight`` is 'int8' (per-channel qdim 0) or 'int4' (per-channel qdim 0).
    Returns the path, stored bytes and scales.
    """
    rng = np.random.default_rng(seed)
    k = Kit()
    sg = k.subgraph()
    shape = (6, 10)
    s = rng.uniform(0.001, 0.1, size=6).astype(np.float32).tolist()
    if weight == "int8":
        q = rng.integers(-127, 128, size=60).tolist()
        stored, ttype = np.array(q, np.int8).tobytes(), T.INT8
    else:
        q = rng.integers(-8, 8, size=60).tolist()
        stored, ttype = pack_bits(q, 4), T.INT4
    w = k.tensor(sg, "w", shape, ttype, stored, scale=s, zero_point=[0] * 6, qdim=0)
    y = k.tensor(sg, "y", shape, T.FLOAT32)
    k.op(sg, OP.DEQUANTIZE, [w], [y])
    sg.inputs, sg.outputs = [], [y]
    k.signature("serving_default", 0, {}, {"y": y})
    return k.save(path), stored, s


def blockwise_fc_model(path: Path, out_f: int = 4, in_f: int = 64, block: int = 32, seed: int = 3
                       ) -> tuple[Path, list[int], np.ndarray]:
    """y = FC(x, W) with W an INT4 blockwise weight [out, in] (zero points -1 = none, as
    ai-edge-quantizer writes). Feeding x = I gives y = W^T as the runtime dequantizes it."""
    from modelkit import fc_options

    rng = np.random.default_rng(seed)
    q = rng.integers(-8, 8, size=out_f * in_f).tolist()
    bs = rng.uniform(0.01, 0.2, size=(out_f, in_f // block)).astype(np.float16)
    k = Kit()
    sg = k.subgraph()
    x = k.tensor(sg, "x", [in_f, in_f])
    si = k.tensor(sg, "w_scales", bs.shape, T.FLOAT16, bs.tobytes())
    w = k.tensor(sg, "w", [out_f, in_f], T.INT4, pack_bits(q, 4), blockwise=(si, block))
    sg.tensors[w].quantization.details.zeroPoints = -1
    y = k.tensor(sg, "y", [in_f, out_f])
    k.op(sg, OP.FULLY_CONNECTED, [x, w, -1], [y], *fc_options())
    sg.inputs, sg.outputs = [x], [y]
    return k.save(path), q, bs
