"""What the bench model is: sections and their bytes, base weight bytes read per
token, dimensions, toolchain versions (written to OUTDIR/bench.json)."""

import importlib.metadata as md

from ai_edge_litert import schema_py_generated as schema

WEIGHT_TYPES = {schema.TensorType.INT8, schema.TensorType.INT4, schema.TensorType.FLOAT32, schema.TensorType.FLOAT16}


def describe(container, config, size) -> dict:
    from fixtures.build import pack

    sections, base, drafter = [], None, None
    for i, dtype, items, data in pack.section_bytes(container):
        role = items.get("model_type")
        sections.append({"index": i, "data_type": dtype, "model_type": role, "bytes": len(data)})
        if role == "tf_lite_prefill_decode":
            base = (len(data), fc_weight_bytes(data))
        elif role == "tf_lite_mtp_drafter":
            drafter = len(data)
    assert base and drafter, "bench model lacks a prefill_decode or drafter section"
    return {
        "dimensions": {
            "hidden": config.hidden_size,
            "intermediate": config.intermediate_size,
            "layers": config.num_hidden_layers,
            "layer_types": list(config.layer_types),
            "heads": config.num_attention_heads,
            "kv_heads": config.num_key_value_heads,
            "vocab": config.vocab_size,
            "grown_from": {"hidden": 64, "intermediate": 128, "layers": 2},
        },
        "sections": sections,
        "base_section_bytes": base[0],
        "base_weight_bytes_per_token": base[1],
        "drafter_section_bytes": drafter,
        "drafter_to_base_ratio": round(drafter / base[0], 5),
        "file_bytes": sum(s["bytes"] for s in sections),
    }


def fc_weight_bytes(tflite: bytes) -> int:
    """Bytes of the distinct constant weight buffers the `decode` signature's
    FULLY_CONNECTED operators read (what one decoded token streams from memory)."""
    m = schema.Model.GetRootAsModel(tflite, 0)
    sig = next(m.SignatureDefs(i) for i in range(m.SignatureDefsLength()) if m.SignatureDefs(i).SignatureKey() == b"decode")
    sg = m.Subgraphs(sig.SubgraphIndex())
    seen = {}
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        code = m.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != schema.BuiltinOperator.FULLY_CONNECTED:
            continue
        t = sg.Tensors(op.Inputs(1))
        b = m.Buffers(t.Buffer())
        n = b.Size() if b.Offset() > 1 else b.DataLength()
        if n:
            seen[t.Buffer()] = n
    return sum(seen.values())


def versions() -> dict:
    return {p: md.version(p) for p in ("torch", "litert-torch", "ai-edge-litert", "ai-edge-quantizer",
                                       "litert-lm-builder", "litert-lm-api", "transformers")}
