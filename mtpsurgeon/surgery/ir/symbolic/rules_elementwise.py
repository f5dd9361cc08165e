"""Element-wise operators: unary ones keep the shape, n-ary ones broadcast."""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.registry import rule, same_as_input

UNARY = ("ABS", "CAST", "CEIL", "COS", "DEQUANTIZE", "ELU", "EXP", "FLOOR", "GELU", "HARD_SWISH", "L2_NORMALIZATION",
         "LEAKY_RELU", "LOG", "LOGISTIC", "LOGICAL_NOT", "LOG_SOFTMAX", "NEG", "ONES_LIKE", "QUANTIZE", "RELU",
         "RELU6", "RELU_N1_TO_1", "ROUND", "RSQRT", "SIGN", "SIN", "SOFTMAX", "SQRT", "SQUARE", "TANH", "ZEROS_LIKE",
         "CUMSUM")
BINARY = ("ADD", "SUB", "MUL", "DIV", "POW", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "FLOOR_DIV", "FLOOR_MOD",
          "PRELU", "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "LOGICAL_AND",
          "LOGICAL_OR", "ATAN2", "BITWISE_XOR", "RIGHT_SHIFT")

rule(*UNARY)(same_as_input)


@rule(*BINARY)
def broadcast_binary(ctx: RuleContext):
    return [ctx.broadcast(ctx.dims(0), ctx.dims(1))]


@rule("SELECT_V2")
def select_v2(ctx: RuleContext):
    return [ctx.broadcast(ctx.dims(0), ctx.dims(1), ctx.dims(2))]


@rule("SELECT")
def select(ctx: RuleContext):
    x, y = ctx.dims(1), ctx.dims(2)
    if len(x) != len(y):
        ctx.refuse("SELECT operands differ in rank")
    out = [ctx.same(a, b, "SELECT operands") for a, b in zip(x, y)]
    c = ctx.dims(0)
    if c and c != out and not (len(c) == 1 and out and c[0] == out[0]):
        ctx.refuse("SELECT condition matches neither the operands' shape nor their first dim")
    return [out]
