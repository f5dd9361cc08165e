"""Lift a one-token graph to T tokens held as T contiguous blocks (the batched `verify` from `decode`).

The lifted value of a tensor x of the one-token graph holds the T per-token values of x: x's shape with
one dim ``axis`` multiplied by T, the token index outside that dim's own index. With only unit dims before
``axis`` the T blocks lie one after the other and changing between such shapes is a RESHAPE; otherwise
(attention with several KV heads stacks the tokens' query rows inside each head) moving T is a TRANSPOSE
(:meth:`TokenLifter.as_blocks`).
Each rule in :mod:`~mtpsurgeon.surgery.token_block_rules` emits ops that compute, block by block,
exactly what the one-token graph computes for that token, and refuses (:class:`NotLiftable`, naming the
op) when it cannot prove it. Values that do not depend on the token (weights, caches) stay shared.

A refusal is lazy: an op that cannot be lifted marks its outputs, and only a signature output that
needs such a value refuses the whole lift. So the position arithmetic that only feeds a cache write's
start index (a scalar per token) never needs a batched form: the cache-write rule evaluates it for the
first token alone (:meth:`first_row`) and writes all T rows from there.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Union

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir import Graph, Model, Node, Tensor
from mtpsurgeon.surgery.ir.symbolic.context import label


class NotLiftable(SurgeryError):
    """This graph cannot be proven to lift to T token blocks (the message names the op)."""


@dataclass
class Lifted:
    """T blocks of one token's value: ``tensor`` has ``shape`` with dim ``axis`` multiplied by T, the token
    index outside that dim's own index (see :func:`contiguous`)."""

    tensor: Tensor
    shape: list[int]
    axis: int


Value = Union[Lifted, Tensor]


def block_axes(shape: list[int]) -> list[int]:
    """The dims that can take the factor T: those with only unit dims before them."""
    out: list[int] = []
    for a, d in enumerate(shape):
        out.append(a)
        if d != 1:
            break
    return out


def contiguous(shape: list[int], axis: int) -> bool:
    """T on ``axis`` keeps each block whole (only unit dims before it); otherwise T sits inside a block,
    outside dim ``axis`` and inside the dims before it."""
    return all(d == 1 for d in shape[:axis])


def prefer(cands: list[int], current: list[int], shape: list[int]) -> int:
    """The candidate axis most values already use (fewest layout ops), then a contiguous one, then the first."""
    return max(cands, key=lambda a: (current.count(a), contiguous(shape, a), -a))


class TokenLifter:
    """Lifts the nodes of ``src`` (a one-token graph) into ``dst`` for ``tokens`` tokens."""

    def __init__(self, model: Model, src: Graph, dst: Graph, tokens: int, position: Tensor | None = None,
                 bodies: dict | None = None) -> None:
        self.model, self.src, self.dst, self.T = model, src, dst, tokens
        self.position = position  #: the one-token graph's position input (cache writes start from it)
        self.lifted: dict[int, Lifted] = {}
        self.shared: dict[int, Tensor] = {}
        self.failed: dict[int, str] = {}
        self.bodies: dict = {} if bodies is None else bodies  #: lifted composite bodies, shared with sub-lifters
        self._first: dict[int, Tensor] = {}
        self._consts: dict[int, Tensor] = {}
        self._producer = {id(t): n for n in src.nodes for t in n.outputs if t is not None}
        self._inputs = {id(t) for t in src.inputs}

    def is_data(self, t: Tensor) -> bool:
        """Stored data: a constant, or an empty one (a RESHAPE's [] shape) that nothing produces."""
        return t.is_constant or (id(t) not in self._producer and id(t) not in self._inputs)

    # -- values ------------------------------------------------------------------------------
    def val(self, t: Tensor) -> Value:
        """The lifted or shared value of a ``src`` tensor (a constant is copied in once, sharing its data)."""
        if id(t) in self.lifted:
            return self.lifted[id(t)]
        if id(t) in self.shared:
            return self.shared[id(t)]
        if self.is_data(t):
            return self.const(t)
        raise NotLiftable(f"tensor {label(t)} is read before anything produces it")

    def const(self, t: Tensor) -> Tensor:
        """``t`` in ``dst`` (its Buffer shared, no data copied; blockwise scale tensors follow it)."""
        if id(t) not in self._consts:
            c = copy.copy(t)
            self.dst.tensors.append(c)
            self._consts[id(t)] = c
            for f in ("block_scales", "block_zero_points"):
                ref = getattr(t, f)
                if ref is not None:
                    setattr(c, f, self.const(ref))
        return self._consts[id(t)]

    def int_const(self, like: Tensor | None, values: list[int], tag: str) -> Tensor:
        dtype = np.int32 if like is None else like.numpy().dtype
        name = f"{like.name if like is not None else 'verify'};{tag}"
        return self.dst.add_constant(name, np.asarray(values, dtype=dtype))

    def new_tensor(self, like: Tensor, shape: list[int], tag: str = "") -> Tensor:
        t = copy.copy(like)
        t.name, t.shape, t.shape_signature = like.name + tag, list(shape), None
        t.buffer, t.external_buffer, t.block_scales, t.block_zero_points = None, 0, None, None
        self.dst.tensors.append(t)
        return t

    def blocks(self, shape: list[int], axis: int) -> list[int]:
        s = list(shape)
        s[axis] *= self.T
        return s

    def put(self, t: Tensor, shape: list[int], axis: int) -> Tensor:
        """A new lifted tensor for ``src`` tensor ``t`` (block ``shape``, T on ``axis``)."""
        out = self.new_tensor(t, self.blocks(shape, axis))
        self.lifted[id(t)] = Lifted(out, list(shape), axis)
        return out

    def reshape(self, x: Tensor, shape: list[int], tag: str) -> Tensor:
        if list(x.shape) == list(shape):
            return x
        out = self.new_tensor(x, shape, tag)
        opts = fb.ReshapeOptionsT()
        opts.newShape = list(shape)
        self.emit("RESHAPE", [x, self.int_const(None, list(shape), f"{tag}/shape")], [out], opts)
        return out

    def as_blocks(self, v: Lifted, shape: list[int], axis: int) -> Tensor:
        """``v`` laid out as block ``shape`` with T on ``axis``: a RESHAPE between contiguous layouts, and
        a TRANSPOSE of the token dim (in the view with T as a dim of its own) where T sits inside a block."""
        if int(np.prod(shape)) != int(np.prod(v.shape)) or not 0 <= axis < len(shape):
            raise NotLiftable(f"{label(v.tensor)}: blocks of {v.shape} cannot be viewed as {shape}")
        if v.shape == list(shape) and v.axis == axis:
            return v.tensor
        if contiguous(v.shape, v.axis) and contiguous(shape, axis):
            return self.reshape(v.tensor, self.blocks(shape, axis), f";blocks{axis}")
        if v.shape == list(shape):
            return self._move(v.tensor, list(shape), v.axis, axis)
        front = v.tensor if contiguous(v.shape, v.axis) else self._move(v.tensor, v.shape, v.axis, 0)
        if contiguous(shape, axis):
            return self.reshape(front, self.blocks(shape, axis), f";blocks{axis}")
        return self._move(front, list(shape), 0, axis)

    def _move(self, x: Tensor, shape: list[int], src: int, dst: int) -> Tensor:
        """Blocks of ``shape`` with T before dim ``src`` -> with T before dim ``dst`` (one TRANSPOSE)."""
        if len(shape) + 1 > 6:
            raise NotLiftable(f"{label(x)}: rank {len(shape)} plus the token dim exceeds 6")
        view = self.reshape(x, [*shape[:src], self.T, *shape[src:]], f";T@{src}")
        perm = list(range(len(shape) + 1))
        perm.insert(dst, perm.pop(src))
        moved = self.new_tensor(x, [*shape[:dst], self.T, *shape[dst:]], f";T@{dst}")
        self.emit("TRANSPOSE", [view, self.int_const(None, perm, f"{moved.name}/perm")], [moved],
                  fb.TransposeOptionsT())
        return self.reshape(moved, self.blocks(shape, dst), f";blocks{dst}")

    def contiguous_blocks(self, v: Lifted) -> Tensor:
        """``v`` as T whole blocks one after the other (what a RESHAPE of the block needs)."""
        return v.tensor if contiguous(v.shape, v.axis) else self._move(v.tensor, v.shape, v.axis, 0)

    def emit(self, op: str, inputs: list[Tensor | None], outputs: list[Tensor], options=None) -> Node:
        return self.dst.add_node(op, inputs, outputs, options)

    def copy_node(self, n: Node, inputs: list[Tensor | None], outputs: list[Tensor], called: dict | None = None) -> Node:
        c = copy.copy(n)
        c.inputs, c.outputs, c.intermediates = list(inputs), list(outputs), []
        c.called = dict(n.called if called is None else called)
        self.dst.nodes.append(c)
        return c

    # -- driving -------------------------------------------------------------------------------
    def run(self, rules: dict[str, Callable[["TokenLifter", Node], None]]) -> None:
        """Lift every node of ``src`` with ``rules`` (op name -> rule; see token_block_rules.RULES)."""
        for n in self.src.nodes:
            self._step(n, rules)

    def _step(self, n: Node, rules: dict[str, Callable[["TokenLifter", Node], None]]) -> None:
        skip = FIRST_ROW_SLOTS.get(n.op, ())
        ins = [t for k, t in enumerate(n.inputs) if t is not None and k not in skip]
        bad = next((self.failed[id(t)] for t in ins if id(t) in self.failed), None)
        if bad is None and n.intermediates:
            bad = f"{n.op} {label(n.outputs[0])} has intermediate tensors"
        if bad is None:
            try:
                per_token = any(id(t) in self.lifted for t in ins)
                if n.op in rules and (per_token or n.called):
                    rules[n.op](self, n)
                elif per_token:
                    raise NotLiftable(f"{n.op} {label(n.outputs[0])}: no batched form of this op is known")
                else:
                    self._shared_node(n)
                return
            except NotLiftable as exc:
                bad = str(exc)
        for t in n.outputs:
            if t is not None:
                self.failed[id(t)] = bad

    def _shared_node(self, n: Node) -> None:
        """A node that reads no per-token value: copied as it is."""
        if n.called:
            raise NotLiftable(f"{n.op} {label(n.outputs[0])} calls a subgraph")
        outs = [None if t is None else self.new_tensor(t, t.shape) for t in n.outputs]
        self.copy_node(n, [None if t is None else self.val(t) for t in n.inputs], outs)
        for t, o in zip(n.outputs, outs):
            if t is not None:
                self.shared[id(t)] = o

    def result(self, t: Tensor) -> Value:
        """The value of a ``src`` output, or the refusal that kept it from being lifted."""
        if id(t) in self.failed:
            raise NotLiftable(self.failed[id(t)])
        return self.val(t)

    # -- the first token alone -------------------------------------------------------------------
    def first_row(self, t: Tensor) -> Tensor:
        """``t``'s value for the first token only, computed with the one-token graph's own ops."""
        if self.is_data(t):
            return self.const(t)
        if id(t) in self._first:
            return self._first[id(t)]
        if id(t) in self.shared:
            return self.shared[id(t)]
        n = self._producer.get(id(t))
        if id(t) in self.lifted and n is None:  # a token input: slice out block 0
            v = self.lifted[id(t)]
            opts = fb.SliceOptionsT()
            out = self.new_tensor(t, v.shape, ";first")
            full = self.as_blocks(v, v.shape, v.axis)
            self.emit("SLICE", [full, self.int_const(None, [0] * len(v.shape), "first/begin"),
                                self.int_const(None, list(v.shape), "first/size")], [out], opts)
        elif n is not None and not n.called:
            outs = [None if o is None else self.new_tensor(o, o.shape, ";first") for o in n.outputs]
            self.copy_node(n, [None if x is None else self.first_row(x) for x in n.inputs], outs)
            out = outs[n.outputs.index(t)]
        else:
            raise NotLiftable(f"{label(t)} has no first-token form")
        self._first[id(t)] = out
        return out


#: input slots a rule evaluates for the first token alone, so a value without a batched form is fine there
#: (a cache write's start index)
FIRST_ROW_SLOTS: dict[str, tuple[int, ...]] = {"DYNAMIC_UPDATE_SLICE": (2,)}
