"""Build a LiteRT-LM drafter from a Hugging Face ``gemma4_assistant`` checkpoint.

    from mtpsurgeon.surgery.drafter import build_drafter, write_built
    built = build_drafter("assistant/", "model.litertlm", quant="int4c")
    write_built(built, "model-mtp.litertlm")

Modules: ``spec`` (the one semantic description, read from config.json +
safetensors), ``emit`` (the description as a graph, via ``surgery.ir.layers``),
``quantize`` (numpy, bit-exact with ai-edge-quantizer), ``base_interface``
(KV inputs the base dictates), ``build`` (gate with the link checks, write).
"""
from mtpsurgeon.surgery.drafter.build import BuildResult, BuiltDrafter, build_drafter, write_built
from mtpsurgeon.surgery.drafter.refusal import BuildRefused
from mtpsurgeon.surgery.drafter.spec import DrafterSpec, load_spec

__all__ = ["BuildRefused", "BuildResult", "BuiltDrafter", "DrafterSpec", "build_drafter", "load_spec", "write_built"]
