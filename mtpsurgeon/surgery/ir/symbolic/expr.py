"""Dimension expressions: polynomials in the symbol T with integer coefficients.

    T = Dim.symbol(); d = 2 * T * 32          # 64*T
    d.at(4) == 256; d.is_const is False; str(d) == "64*T"

Sizes in exported LLM graphs are integers, c*T (T tokens, heads*T after a
reshape), sums (T+1 after a concatenation) and, rarely, products (T*T). A
polynomial covers all of them exactly and keeps equality decidable.

A dim may also carry its *layout*: the row-major factors it was merged from,
outermost first (a reshape of [4, T] to one dim gives 4*T with layout (4, T),
which is not (T, 4)). Layout is not part of equality; it tells a later reshape
where T sits inside a merged dim (see ``rules_reshape``).
"""
from __future__ import annotations

from typing import Iterable, Union


class Dim:
    """An immutable polynomial sum(c_k * T**k), k >= 0, integer c_k."""

    __slots__ = ("_terms", "_hash", "_layout")

    def __init__(self, terms: dict[int, int] | None = None) -> None:
        self._terms = tuple(sorted((k, c) for k, c in (terms or {}).items() if c != 0))
        self._hash = hash(self._terms)
        self._layout: tuple[Dim, ...] | None = None

    # -- construction -------------------------------------------------------------
    @classmethod
    def const(cls, value: int) -> "Dim":
        return cls({0: int(value)})

    @classmethod
    def symbol(cls) -> "Dim":
        return cls({1: 1})

    @classmethod
    def monomial(cls, coeff: int, power: int) -> "Dim":
        return cls({power: coeff})

    # -- queries --------------------------------------------------------------------
    @property
    def terms(self) -> dict[int, int]:
        return dict(self._terms)

    @property
    def is_const(self) -> bool:
        return all(k == 0 for k, _ in self._terms)

    @property
    def depends_on_t(self) -> bool:
        return not self.is_const

    @property
    def degree(self) -> int:
        return max((k for k, _ in self._terms), default=0)

    def as_monomial(self) -> tuple[int, int] | None:
        """(coeff, power) when the polynomial is a single term (0 is (0, 0))."""
        if not self._terms:
            return 0, 0
        return (self._terms[0][1], self._terms[0][0]) if len(self._terms) == 1 else None

    def at(self, t: int) -> int:
        """The value at T = t."""
        return sum(c * t ** k for k, c in self._terms)

    # -- layout ---------------------------------------------------------------------------
    @property
    def layout(self) -> "tuple[Dim, ...] | None":
        """Row-major factors, outermost first (constants merged, 1s dropped), or None when unknown.

        A constant, T itself and a sum such as T+1 are their own layout; a
        product such as 4*T has one only when it was built from its factors.
        """
        if self._layout is not None:
            return self._layout
        if self.is_const:
            return () if self.at(0) == 1 else (self.plain(),)
        if self.as_monomial() is None or self._terms == ((1, 1),):
            return (self.plain(),)
        return None

    def plain(self) -> "Dim":
        """The same polynomial without a recorded layout."""
        return Dim(dict(self._terms))

    def with_layout(self, factors: "Iterable[Dim]") -> "Dim":
        """This polynomial with the given row-major factors (their product must equal it)."""
        atoms: list[Dim] = []
        for f in factors:
            sub = f.layout
            if sub is None:
                return self.plain()
            for a in sub:
                if a.is_const and atoms and atoms[-1].is_const:
                    atoms[-1] = Dim.const(atoms[-1].at(0) * a.at(0))
                else:
                    atoms.append(a)
        out = self.plain()
        assert product_plain(atoms) == out, (atoms, out)
        out._layout = tuple(atoms)
        return out

    def same_layout(self, other: "Dim") -> bool:
        return self.layout == other.layout

    # -- arithmetic -------------------------------------------------------------------
    def __add__(self, other: "DimLike") -> "Dim":
        o = as_dim(other)
        terms = self.terms
        for k, c in o._terms:
            terms[k] = terms.get(k, 0) + c
        return Dim(terms)

    __radd__ = __add__

    def __neg__(self) -> "Dim":
        return Dim({k: -c for k, c in self._terms})

    def __sub__(self, other: "DimLike") -> "Dim":
        return self + (-as_dim(other))

    def __rsub__(self, other: "DimLike") -> "Dim":
        return as_dim(other) - self

    def __mul__(self, other: "DimLike") -> "Dim":
        """Product; ``Dim * Dim`` keeps the layout (self outer, other inner), ``Dim * int`` does not."""
        o = as_dim(other)
        out = self._times(o)
        return out.with_layout([self, o]) if isinstance(other, Dim) else out

    __rmul__ = __mul__  # only reached with an int on the left: no layout

    def _times(self, o: "Dim") -> "Dim":
        terms: dict[int, int] = {}
        for k1, c1 in self._terms:
            for k2, c2 in o._terms:
                terms[k1 + k2] = terms.get(k1 + k2, 0) + c1 * c2
        return Dim(terms)

    def exact_div(self, n: int) -> "Dim | None":
        """self / n when every coefficient is divisible by the integer n, else None."""
        if n == 0 or any(c % n for _, c in self._terms):
            return None
        return Dim({k: c // n for k, c in self._terms})

    # -- comparison / display -----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Dim.const(other)
        return isinstance(other, Dim) and self._terms == other._terms

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        if not self._terms:
            return "0"
        parts = []
        for k, c in sorted(self._terms, reverse=True):
            sym = "" if k == 0 else ("T" if k == 1 else f"T^{k}")
            body = str(abs(c)) if not sym else (sym if abs(c) == 1 else f"{abs(c)}*{sym}")
            parts.append(("-" if c < 0 else "+") + body)
        s = "".join(parts)
        return s[1:] if s.startswith("+") else s

    def __repr__(self) -> str:
        return f"Dim({self})"


DimLike = Union[Dim, int]


def as_dim(x: DimLike) -> Dim:
    return x if isinstance(x, Dim) else Dim.const(int(x))


def product(dims: Iterable[DimLike]) -> Dim:
    """The product, with the layout of the factors in order (row-major merge)."""
    out = Dim.const(1)
    for d in dims:
        out = out * as_dim(d)
    return out


def product_plain(dims: Iterable[Dim]) -> Dim:
    """The product without layout."""
    out = Dim.const(1)
    for d in dims:
        out = out._times(d)
    return out


def consts(values: Iterable[int]) -> list[Dim]:
    return [Dim.const(int(v)) for v in values]


def show(dims: Iterable[Dim]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def evaluate(dims: Iterable[Dim], t: int) -> list[int]:
    return [d.at(t) for d in dims]
