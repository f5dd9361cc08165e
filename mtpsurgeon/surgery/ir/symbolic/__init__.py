"""Symbolic shape inference on the IR: shapes as expressions in T (a signature's token count).

    shapes = infer_shapes(model, "verify")
    shapes.t0                      # T's value in the file (4)
    shapes.shape(tensor)           # [Dim(1), Dim(T), Dim(64)]
    shapes.t_constants             # RESHAPE shapes / SLICE sizes that encode T (2*T for heads x T)

    shapes.readings(tensor)        # a constant the converter shared, read as [1, T, 4, 32] and [1, 4, T, 32]

Modules: ``expr`` (Dim polynomials and their row-major layout), ``seeds``
(where T comes from), ``context`` (what a rule sees), ``layout`` (where T sits
inside a merged dim), ``registry`` + ``rules_*`` (one shape rule per operator
type), ``infer`` (the driver, recursing into called graphs).
"""
from mtpsurgeon.surgery.ir.symbolic.context import ConstantUse, OptionUse, SymbolicShapeError
from mtpsurgeon.surgery.ir.symbolic.expr import Dim
from mtpsurgeon.surgery.ir.symbolic.infer import SymbolicShapes, infer_shapes
from mtpsurgeon.surgery.ir.symbolic.registry import RULES

__all__ = ["ConstantUse", "Dim", "OptionUse", "RULES", "SymbolicShapeError", "SymbolicShapes", "infer_shapes"]
