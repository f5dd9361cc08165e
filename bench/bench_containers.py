"""Multi-GB .litertlm containers: mtpsurgeon beside peek, dd and cp (issue 11).

For each size (default 0.5, 1, 2 and 4 GB) builds, with the official
litert-lm-builder, two containers from the fixture base (the sections of
``fixtures/hidden/no-drafter.litertlm``: LLM metadata, tokenizer,
prefill_decode, embedder), a 40 MB TFLite ``tf_lite_aux`` section (one ADD
of a 10M-float constant: the size of a real Gemma 4 drafter section, which
is 42-44 MB) plus eight GenericBinaryData filler sections that make up the
size:

  * ``graft.litertlm``  — no drafter section (like ``hidden/no-drafter``);
  * ``retag.litertlm``  — ``fixtures/mtp_drafter.tflite`` appended as a TFLite
    section whose ``model_type`` item is then deleted from the header
    (like ``hidden/untagged-drafter``; the builder cannot write that itself).

Then runs, each in its own process (wall time, and peak RSS from GNU
``/usr/bin/time -f %M``):

  inspect       ``mtpsurgeon inspect graft.litertlm``       vs ``litert-lm-peek``
  extract       ``mtpsurgeon extract … --section mtp_drafter`` (the fixture's
                191 KB drafter) and ``--section aux`` (40 MB), on the re-tagged
                output, each vs ``dd`` of the same byte range
  graft         ``mtpsurgeon restore graft.litertlm --drafter fixtures/mtp_drafter.tflite``
                vs ``cp`` of the input
  re-tag        ``mtpsurgeon restore retag.litertlm``        vs ``cp``

two 200,000-tensor .tflite files through ``inspect`` and ``inspect --json``:
a valid chain of 100,000 ADD operators, each adding its own constant, and
the same tensors with no operators (100,000 orphan constants); plus the
fixed cost of one call: the interpreter alone (``python -c pass``), start-up
(``mtpsurgeon --version``) and ``extract --section`` of the fixture's 191 KB
drafter minus ``dd`` of it.

Each command and its anchor run in turn ``--repeat`` times (default 3) and
the fastest run of each counts (the machine is shared); outputs are deleted
before every run, untimed; the page cache is warm (every input was just
written). One markdown table, ratios from this run. Everything is deleted at
the end (a 4 GB size needs about 20 GB of free disk at its peak).

    python bench/bench_containers.py [--sizes 0.5,1,2,4] [--dir /tmp] [--repeat 3] [--no-200k]
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
DRAFTER = FIXTURES / "mtp_drafter.tflite"
BASE = FIXTURES / "hidden" / "no-drafter.litertlm"
FILLERS = 8
BIG_SECTION = 40 * 10**6  #: bytes of the drafter-sized TFLite section
GB = 10**9
TIME = "/usr/bin/time"  # GNU time, for the peak RSS of each command


def _tool(name: str) -> str:
    """A console script of the running interpreter's environment (mtpsurgeon, litert-lm-peek)."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        sys.exit(f"{name} not found next to {sys.executable} or on PATH")
    return found


def _run_once(cmd: list[str], rss_file) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MB, CPU seconds: user + system) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.run([TIME, "-f", "%M %U %S", "-o", rss_file.name, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    rss_file.seek(0)
    rss, user, system = rss_file.read().split()[-3:]
    return wall, int(rss) * 1024 / 1e6, float(user) + float(system)  # KiB -> MB


def measure(*cmds: list[str], repeat: int, clean: tuple[Path, ...] = ()) -> list[tuple[float, float, float]]:
    """(fastest wall seconds, its peak RSS in MB, its CPU seconds) of each command, run in turn ``repeat`` times.

    Interleaving (a, b, a, b, …) lets an anchor and the command compared to
    it see the same load on a shared machine. The ``clean`` paths are removed
    before every run (untimed), so no run pays for deleting an old output.
    Peak RSS comes from GNU time's ``%M``: a child forked straight from this
    (large) Python process would inherit its high-water mark across exec.
    """
    best: list[tuple[float, float, float] | None] = [None] * len(cmds)
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss_file:
        for _ in range(repeat):
            for i, cmd in enumerate(cmds):
                for p in clean:
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink(missing_ok=True)
                got = _run_once(cmd, rss_file)
                if best[i] is None or got[0] < best[i][0]:
                    best[i] = got
    return best


# ------------------------------------------------------------------ building
def _filler(path: Path, size: int) -> None:
    block = os.urandom(1 << 24)
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)


def build_containers(work: Path, size: int) -> tuple[Path, Path, int]:
    """(graft input, re-tag input, sections in the re-tag input) of about ``size`` bytes."""
    from litert_lm_builder import litertlm_builder as B

    unpacked = work / "unpacked"
    base_bytes = BASE.stat().st_size
    filler = work / "filler.bin"
    big = work / "big.tflite"
    build_big_model(big, BIG_SECTION)
    _filler(filler, max(1 << 20, (size - base_bytes - BIG_SECTION) // FILLERS))
    out = []
    for name, drafter in (("graft", False), ("retag", True)):
        if unpacked.exists():
            shutil.rmtree(unpacked)
        b = B.LitertLmFileBuilder.unpack(str(BASE), str(unpacked))
        b.add_tflite_model(str(big), B.TfLiteModelType.AUX)
        for _ in range(FILLERS):
            b.add_generic_binary_data(str(filler))
        if drafter:
            b.add_tflite_model(str(DRAFTER), B.TfLiteModelType.MTP_DRAFTER)
        path = work / f"{name}.litertlm"
        with open(path, "wb") as f:
            b.build(f)
        out.append(path)
        sections = len(b._sections)
    filler.unlink()
    big.unlink()
    shutil.rmtree(unpacked)
    sys.path.insert(0, str(REPO))
    from fixtures.build.hide import untag_in_place  # the fixture generator's own untagging (header only)

    untag_in_place(out[1])
    return out[0], out[1], sections


def _int_vector(b, values: list[int]) -> int:
    """An int32 vector in flatbuffers builder ``b``."""
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b, offsets: list[int]) -> int:
    """A vector of table offsets in flatbuffers builder ``b``."""
    b.StartVector(4, len(offsets), 4)
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def build_big_model(path: Path, nbytes: int) -> None:
    """A valid .tflite of about ``nbytes``: y = x + c, c a FLOAT32 constant of ``nbytes // 4`` values."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as fb

    n = nbytes // 4
    b = flatbuffers.Builder(nbytes + (1 << 16))

    ivec, ovec = partial(_int_vector, b), partial(_offset_vector, b)

    data = b.CreateNumpyVector(np.frombuffer(np.random.default_rng(0).standard_normal(n, np.float32).tobytes(), np.uint8))
    fb.BufferStart(b)
    fb.BufferAddData(b, data)
    const_buffer = fb.BufferEnd(b)
    fb.BufferStart(b)
    empty = fb.BufferEnd(b)
    tensors = []
    for name, buffer in (("x", 0), ("c", 1), ("y", 0)):
        shape, nm = ivec([1, n]), b.CreateString(name)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        fb.TensorAddType(b, fb.TensorType.FLOAT32)
        fb.TensorAddBuffer(b, buffer)
        fb.TensorAddName(b, nm)
        tensors.append(fb.TensorEnd(b))
    ins, outs = ivec([0, 1]), ivec([2])
    fb.OperatorStart(b)
    fb.OperatorAddOpcodeIndex(b, 0)
    fb.OperatorAddInputs(b, ins)
    fb.OperatorAddOutputs(b, outs)
    op = fb.OperatorEnd(b)
    tvec, opvec, gin, gout, gname = ovec(tensors), ovec([op]), ivec([0]), ivec([2]), b.CreateString("main")
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tvec)
    fb.SubGraphAddOperators(b, opvec)
    fb.SubGraphAddInputs(b, gin)
    fb.SubGraphAddOutputs(b, gout)
    fb.SubGraphAddName(b, gname)
    graph = fb.SubGraphEnd(b)
    fb.OperatorCodeStart(b)
    fb.OperatorCodeAddDeprecatedBuiltinCode(b, fb.BuiltinOperator.ADD)
    fb.OperatorCodeAddBuiltinCode(b, fb.BuiltinOperator.ADD)
    fb.OperatorCodeAddVersion(b, 1)
    code = fb.OperatorCodeEnd(b)
    codes, graphs, bufs = ovec([code]), ovec([graph]), ovec([empty, const_buffer])
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, codes)
    fb.ModelAddSubgraphs(b, graphs)
    fb.ModelAddBuffers(b, bufs)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(b.Output())


def build_200k(path: Path, tensors: int = 200_000, orphans: bool = False) -> None:
    """A valid model of ``tensors`` tensors: x → ADD(c0) → ADD(c1) → … (one constant per ADD).

    With ``orphans``, no operators: x is the output and every constant is unused.

    Written straight with the flatbuffers builder and the runtime's generated
    schema (fast, and independent of mtpsurgeon's writer).
    """
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as fb

    b = flatbuffers.Builder(1 << 24)
    adds = tensors // 2

    ivec, ovec = partial(_int_vector, b), partial(_offset_vector, b)

    shape = ivec([1, 4])
    payload = np.full(4, 1e-6, np.float32).tobytes()
    buffers = [fb.BufferStart(b) or fb.BufferEnd(b)]
    for _ in range(adds):
        data = b.CreateByteVector(payload)
        fb.BufferStart(b)
        fb.BufferAddData(b, data)
        buffers.append(fb.BufferEnd(b))
    tensor_offsets = []

    def tensor(name: str, buffer: int) -> int:
        n = b.CreateString(name)
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        fb.TensorAddType(b, fb.TensorType.FLOAT32)
        fb.TensorAddBuffer(b, buffer)
        fb.TensorAddName(b, n)
        return fb.TensorEnd(b)

    tensor_offsets.append(tensor("x", 0))  # tensor 0
    ops = []
    fb.AddOptionsStart(b)
    add_opts = fb.AddOptionsEnd(b)
    for i in range(adds):  # constant 2i+1, output 2i+2
        tensor_offsets.append(tensor(f"layers.{i}.bias", i + 1))
        tensor_offsets.append(tensor(f"layers.{i}.out", 0))
        if orphans:
            continue
        ins, outs = ivec([2 * i, 2 * i + 1]), ivec([2 * i + 2])
        fb.OperatorStart(b)
        fb.OperatorAddOpcodeIndex(b, 0)
        fb.OperatorAddInputs(b, ins)
        fb.OperatorAddOutputs(b, outs)
        fb.OperatorAddBuiltinOptionsType(b, fb.BuiltinOptions.AddOptions)
        fb.OperatorAddBuiltinOptions(b, add_opts)
        ops.append(fb.OperatorEnd(b))
    last = 0 if orphans else 2 * adds
    tvec, opvec, gin, gout = ovec(tensor_offsets), ovec(ops), ivec([0]), ivec([last])
    gname = b.CreateString("main")
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tvec)
    fb.SubGraphAddOperators(b, opvec)
    fb.SubGraphAddInputs(b, gin)
    fb.SubGraphAddOutputs(b, gout)
    fb.SubGraphAddName(b, gname)
    graph = fb.SubGraphEnd(b)

    def tensor_map(name: str, index: int) -> int:
        n = b.CreateString(name)
        fb.TensorMapStart(b)
        fb.TensorMapAddName(b, n)
        fb.TensorMapAddTensorIndex(b, index)
        return fb.TensorMapEnd(b)

    sin, sout = ovec([tensor_map("x", 0)]), ovec([tensor_map("y", last)])
    key = b.CreateString("serving_default")
    fb.SignatureDefStart(b)
    fb.SignatureDefAddInputs(b, sin)
    fb.SignatureDefAddOutputs(b, sout)
    fb.SignatureDefAddSignatureKey(b, key)
    fb.SignatureDefAddSubgraphIndex(b, 0)
    sig = fb.SignatureDefEnd(b)
    fb.OperatorCodeStart(b)  # kept with orphans too: an unused operator code is valid
    fb.OperatorCodeAddDeprecatedBuiltinCode(b, fb.BuiltinOperator.ADD)
    fb.OperatorCodeAddBuiltinCode(b, fb.BuiltinOperator.ADD)
    fb.OperatorCodeAddVersion(b, 1)
    code = fb.OperatorCodeEnd(b)
    codes, graphs, bufs, sigs = ovec([code]), ovec([graph]), ovec(buffers), ovec([sig])
    desc = b.CreateString("bench: 200k tensors")
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddOperatorCodes(b, codes)
    fb.ModelAddSubgraphs(b, graphs)
    fb.ModelAddDescription(b, desc)
    fb.ModelAddBuffers(b, bufs)
    fb.ModelAddSignatureDefs(b, sigs)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    path.write_bytes(b.Output())


def _section_range(path: Path, model_type: str) -> tuple[int, int]:
    sys.path.insert(0, str(REPO))
    from mtpsurgeon.formats.open import open_file

    c = open_file(path)
    s = c.find(model_type)
    return s.begin, s.size


# ------------------------------------------------------------------ running
def _size(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10**6 else f"{n / 1e3:.0f} KB"


#: extract --section of the 191 KB drafter minus dd of it, per size: the per-call fixed cost
fixed: list[float] = []


def bench_size(work: Path, size: int, repeat: int, rows: list) -> None:
    surgeon, peek = _tool("mtpsurgeon"), _tool("litert-lm-peek")
    t0 = time.perf_counter()
    graft_in, retag_in, nsec = build_containers(work, size)
    gb = graft_in.stat().st_size / GB
    label = f"{gb:.2f} GB, {nsec} sections"
    print(f"built {label} containers in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    out = work / "out.litertlm"
    copy = work / "copy.litertlm"

    def row(op: str, ours: tuple[float, float, float], anchor_name: str, anchor: tuple[float, float, float]) -> None:
        rows.append((label, op, ours[0], ours[2], ours[1], anchor_name, anchor[0]))
        print(f"  {op}: {ours[0]:.3f} s / {ours[1]:.0f} MB vs {anchor_name} {anchor[0]:.3f} s", file=sys.stderr, flush=True)

    cp, graft = measure(["cp", str(graft_in), str(copy)],
                        [surgeon, "restore", str(graft_in), "--drafter", str(DRAFTER), "-o", str(out)],
                        repeat=repeat, clean=(copy, out, out.with_suffix(".safetensors")))
    peek_t, inspect = measure([peek, "--litertlm_file", str(graft_in)], [surgeon, "inspect", str(graft_in)], repeat=repeat)
    row("inspect", inspect, "litert-lm-peek", peek_t)
    row("restore: graft", graft, "cp", cp)
    cp_r, retag = measure(["cp", str(retag_in), str(copy)], [surgeon, "restore", str(retag_in), "-o", str(out)],
                          repeat=repeat, clean=(copy, out, out.with_suffix(".safetensors")))
    row("restore: re-tag", retag, "cp", cp_r)
    copy.unlink(missing_ok=True)
    extracted = work / "extracted"
    for model_type, name in (("tf_lite_mtp_drafter", "mtp_drafter"), ("tf_lite_aux", "aux")):
        begin, length = _section_range(out, model_type)
        dd, extract = measure(["dd", f"if={out}", f"of={work / 'dd.tflite'}", "bs=4M", f"skip={begin}", f"count={length}",
                               "iflag=skip_bytes,count_bytes", "status=none"],
                              [surgeon, "extract", str(out), "--section", name, "-o", str(extracted)],
                              repeat=repeat, clean=(work / "dd.tflite", extracted))
        row(f"extract --section {name} ({_size(length)})", extract, "dd", dd)
        if name == "mtp_drafter":
            fixed.append(extract[0] - dd[0])
    for p in (graft_in, retag_in, out, work / "dd.tflite"):
        p.unlink(missing_ok=True)
    for p in work.glob("out*"):
        p.unlink()
    shutil.rmtree(extracted, ignore_errors=True)


def bench_fixed(repeat: int, rows: list) -> None:
    """What every call pays whatever the file: the interpreter, start-up, and extract --section's overhead."""
    surgeon = _tool("mtpsurgeon")
    (bare,) = measure([sys.executable, "-c", "pass"], repeat=repeat)
    rows.append(("fixed cost per call", "python -c pass (the interpreter alone)", bare[0], bare[2], bare[1], "", None))
    (version,) = measure([surgeon, "--version"], repeat=repeat)
    rows.append(("fixed cost per call", "mtpsurgeon --version (start-up)", version[0], version[2], version[1], "", None))
    if fixed:
        rows.append(("fixed cost per call", "extract --section: 191 KB extract − dd, min over sizes", min(fixed), None, None,
                     "", None))


def bench_200k(work: Path, repeat: int, rows: list) -> None:
    surgeon = _tool("mtpsurgeon")
    for orphans in (False, True):
        path = work / ("200k-orphans.tflite" if orphans else "200k.tflite")
        t0 = time.perf_counter()
        build_200k(path, orphans=orphans)
        print(f"built {path.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        kind = "100,000 orphan constants" if orphans else "100,000 ADD ops"
        label = f"200,000 tensors, {kind} ({path.stat().st_size / 1e6:.1f} MB)"
        out = work / "200k.json"
        (plain,) = measure([surgeon, "inspect", str(path)], repeat=repeat)
        rows.append((label, "inspect", plain[0], plain[2], plain[1], "", None))
        (js,) = measure(["sh", "-c", f'"{surgeon}" inspect --json "{path}" > "{out}"'], repeat=repeat)
        rows.append((label, f"inspect --json ({out.stat().st_size / 1e6:.1f} MB of JSON)", js[0], js[2], js[1], "", None))
        path.unlink()
        out.unlink()


def print_table(rows: list) -> None:
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}\n")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| container | operation | wall s | CPU s | peak RSS MB | anchor | anchor s | × anchor |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    for label, op, wall, cpu, rss, anchor, awall in rows:
        w = f"{wall:.3f}" if wall is not None else ""
        c = f"{cpu:.2f}" if cpu is not None else ""
        r = f"{rss:.0f}" if rss is not None else ""
        a = f"{awall:.3f}" if awall is not None else ""
        ratio = f"{wall / awall:.2f}" if wall is not None and awall else ""
        print(f"| {label} | {op} | {w} | {c} | {r} | {anchor} | {a} | {ratio} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="0.5,1,2,4", help="container sizes in GB (default 0.5,1,2,4)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: the system temp folder)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per command; the fastest counts (default 3)")
    ap.add_argument("--no-200k", action="store_true", help="skip the 200,000-tensor model")
    args = ap.parse_args()
    sizes = [int(float(s) * GB) for s in args.sizes.split(",") if s]
    scratch = Path(tempfile.mkdtemp(prefix="mtpsurgeon-bench-", dir=args.dir))
    need = max(sizes, default=0) * 5.2
    free = shutil.disk_usage(scratch).free
    if free < need:
        shutil.rmtree(scratch)
        sys.exit(f"not enough disk in {scratch.parent}: {free / GB:.1f} GB free, need {need / GB:.1f} GB")
    rows: list = []
    try:
        for size in sizes:
            bench_size(scratch, size, args.repeat, rows)
        bench_fixed(args.repeat, rows)
        if not args.no_200k:
            bench_200k(scratch, args.repeat, rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_table(rows)


if __name__ == "__main__":
    main()
