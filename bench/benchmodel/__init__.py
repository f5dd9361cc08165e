"""The bench model: the jax fixture family's trained base and drafter, grown to
real proportions by function-preserving transformations (see grow.py) and
exported, quantized and packed with Google's toolchain (see build.py).

Run through `python bench/make_bench_model.py OUTDIR [--scale full|tiny]`."""
