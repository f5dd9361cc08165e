"""Seeded mutation fuzzing of ``inspect``, ``extract``, ``restore`` (and, on side files, ``tune`` and
``enable-mtp``) on every fixture.

    python -m tests.fuzz --runs 10000 [--seed 1] [--jobs 2] [--save DIR]   # release check
    python -m tests.fuzz --seconds 50                                       # what CI runs (via test_fuzz.py)
    python -m tests.fuzz --runs 500 --family side                           # side-file cases only
    python -m tests.fuzz --runs 500 --family checkpoint                     # hostile checkpoint folders

Each run takes one fixture, applies one seeded mutation — bit flips in the
flatbuffer tables or the container header, a truncation, a u32 overwritten
with 0x7fffffff / 0xffffffff / 0x80000000, a copied or zeroed byte range —
and runs one command on it in a forked child (the CLI in-process, as
``python -m mtpsurgeon`` runs it). A share of the runs (:data:`SIDE_SHARE`) are
*side-file* cases instead (:mod:`fuzz_side`): the model's weights moved into a
file beside it, then a hostile group name, a missing or empty weights file, an
offset or length past its end, or a group naming the model itself. A run passes when:

* the exit code is 0, 1 or 2 (no signal, no other code);
* stderr has no ``Traceback`` and no ``internal error``;
* it ends within ``--timeout`` seconds and its peak RSS stays under ``--max-rss-mb``;
* every input's bytes and mtime are unchanged (for restore with ``--drafter`` /
  ``--base``, half the runs mutate that file instead of MODEL);
* the destination holds nothing at all (not even a temporary file) unless the exit code is 0;
* side-file cases: no leak — neither stdout, stderr nor any output holds the token of the
  sentinel file outside the model's folder, and the child opened no path in that folder
  nor ``/dev/zero`` (an audit hook on ``open``).

Run ``i`` of seed ``s`` is reproducible on its own: ``--seed s --only i --save DIR``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import fuzz_checkpoint  # noqa: E402
import fuzz_side  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
SPECIALS = (0x7FFFFFFF, 0xFFFFFFFF, 0x80000000)
MUTATIONS = ("bitflip_table", "bitflip_header", "truncate", "u32_special", "copy_range", "zero_range")
COMMANDS = ("inspect", "inspect_json", "extract", "restore")
#: Side-file cases also run the verbs that rewrite a base (they read every external weight).
SIDE_COMMANDS = COMMANDS + ("tune", "enable_mtp")
#: The share of runs that are side-file cases (``--family all``).
SIDE_SHARE = 0.4
#: ``checkpoint`` (:mod:`fuzz_checkpoint`: hostile Hugging Face folders for build-drafter / restore --config) is
#: not part of ``all``, so that the runs of earlier ``all`` campaigns stay reproducible.
FAMILIES = ("all", "bytes", "side", "checkpoint")


def fixtures() -> list[Path]:
    """Every model fixture (.tflite and .litertlm), in a stable order."""
    return sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".tflite", ".litertlm") and p.is_file())


# -- mutations ----------------------------------------------------------------------------------

def _table_offset(rng: random.Random, data: bytes | bytearray) -> int:
    """An offset biased towards flatbuffer tables: a flatbuffer is built back to front, so its
    tables sit near the front and bulk vectors (weights) near the end; in a container, near the
    front of the header or of a section."""
    n = len(data)
    if data[:8] == b"LITERTLM":
        starts = [32] + list(range(16384, n, 16384))
        base = rng.choice(starts)
        return min(n - 1, base + int(rng.expovariate(1 / 2048)))
    return min(n - 1, int(rng.expovariate(1 / max(64, n // 20))))


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One seeded mutation of ``data``; returns the new bytes and a description."""
    buf = bytearray(data)
    n = len(buf)
    kind = rng.choice(MUTATIONS)
    if kind == "bitflip_table":
        flips = []
        for _ in range(rng.randint(1, 8)):
            off = _table_offset(rng, buf)
            bit = rng.randrange(8)
            buf[off] ^= 1 << bit
            flips.append(f"{off}:{bit}")
        return bytes(buf), f"bitflip_table {' '.join(flips)}"
    if kind == "bitflip_header":
        end = min(n, 32 + 4096) if buf[:8] == b"LITERTLM" else min(n, 512)
        off = rng.randrange(end)
        bit = rng.randrange(8)
        buf[off] ^= 1 << bit
        return bytes(buf), f"bitflip_header {off}:{bit}"
    if kind == "truncate":
        keep = rng.randrange(n)
        return bytes(buf[:keep]), f"truncate {keep}"
    if kind == "u32_special":
        off = _table_offset(rng, buf) & ~3
        off = min(off, n - 4)
        value = rng.choice(SPECIALS)
        struct.pack_into("<I", buf, off, value)
        return bytes(buf), f"u32_special {off}={value:#x}"
    length = min(n, 1 + int(rng.expovariate(1 / 256)))
    src = _table_offset(rng, buf)
    src = min(src, n - length)
    if kind == "copy_range":
        dst = min(_table_offset(rng, buf), n - length)
        buf[dst : dst + length] = buf[src : src + length]
        return bytes(buf), f"copy_range {src}+{length}->{dst}"
    buf[src : src + length] = bytes(length)
    return bytes(buf), f"zero_range {src}+{length}"


# -- one run ------------------------------------------------------------------------------------

@dataclass
class Case:
    index: int
    fixture: Path
    mutation: str
    command: str
    args: list[str]
    input: Path  #: the mutated file
    dest: Path
    inputs: list[Path] = field(default_factory=list)  #: every input file (must stay unchanged)
    side: fuzz_side.SideFile | None = None  #: a side-file case: its sentinel and token


@dataclass
class Outcome:
    case: Case
    code: int | None  #: exit code, None when killed by a signal
    signal: int | None
    seconds: float
    rss_mb: float
    stderr: str
    problems: list[str] = field(default_factory=list)


def make_case(seed: int, index: int, files: list[Path], work: Path, family: str = "all") -> Case:
    """Run ``index`` of campaign ``seed``: deterministic in (seed, index, family) alone."""
    rng = random.Random(f"{seed}:{index}")
    fixture = files[index % len(files)]
    folder = work / f"run{index}"
    folder.mkdir(parents=True)
    inp = folder / "in" / fixture.name
    inp.parent.mkdir()
    side = None
    if family == "checkpoint":
        args, inputs, desc, ck = fuzz_checkpoint.make_checkpoint_case(folder, work, rng)
        return Case(index, ck, desc, args[0], args, ck, folder / "dest", inputs)
    if family == "side" or (family == "all" and rng.random() < SIDE_SHARE):
        data, side = fuzz_side.make_side_case(fixture.read_bytes(), inp, rng)
        desc = side.description
        if rng.random() < 0.2:  # and a byte mutation of the externalized model
            data, more = mutate(data, rng)
            desc += f" + {more}"
        command = rng.choice(SIDE_COMMANDS)
    else:
        data, desc = mutate(fixture.read_bytes(), rng)
        command = rng.choice(COMMANDS)
    inp.write_bytes(data)
    dest = folder / "dest"
    if command == "inspect":
        args = ["inspect", str(inp)]
    elif command == "inspect_json":
        args = ["inspect", str(inp), "--json"] + (["--tensors"] if rng.random() < 0.3 else [])
    elif command == "extract":
        args = ["extract", str(inp), "-o", str(dest / "x"), "--dtype", rng.choice(["raw", "f32", "bf16"])]
        args += rng.choice([[], [], ["--orphans"], ["--all"]])
    elif command == "tune":
        args = ["tune", str(inp), "-g", str(rng.choice([1, 2, 4])), "-o", str(dest / f"tuned{fixture.suffix}")]
    elif command == "enable_mtp":
        args = ["enable-mtp", str(inp), "-o", str(dest / f"enabled{fixture.suffix}"), "-g", str(rng.choice([1, 3]))]
    else:
        args = ["restore", str(inp), "-o", str(dest / f"out{fixture.suffix}")]
        extra = None
        if "no-drafter" in fixture.name:
            extra = ("--drafter", FIXTURES / "mtp_drafter.tflite")
        elif fixture.suffix == ".tflite" and "drafter" in fixture.name:
            extra = ("--base", FIXTURES / "gemma4-mini.litertlm")
        if extra is not None:
            option, path = extra
            other = folder / "in" / f"side-{path.name}"
            if rng.random() < 0.5:  # mutate the --drafter / --base file instead of MODEL
                other.write_bytes(mutate(path.read_bytes(), rng)[0])
                if side is None:
                    inp.write_bytes(fixture.read_bytes())
                    desc = f"{option} {desc}"
                else:
                    desc += f"; {option} mutated"
            else:
                other.write_bytes(path.read_bytes())
            args += [option, str(other)]
        if rng.random() < 0.3:
            args += ["--no-verify"]
    files = sorted(p for p in (folder / "in").iterdir() if fuzz_side.is_regular(p))  # never a FIFO's "bytes"
    if side is not None:
        files.append(side.outside / "secret.bin")
    return Case(index, fixture, desc, command, args, inp, dest, files, side)


def _child(args: list[str], out_fd: int, err_fd: int, timeout: float, max_rss_mb: int,
           watch: tuple[tuple[str, ...], int] | None = None) -> None:
    """In the forked child: run the CLI in-process and exit with its code (never returns).

    ``watch``: (forbidden folders, fd) for :func:`fuzz_side.watch_opens`.
    """
    code = 98
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        # under pytest sys.stdout/err are capture objects, not fds 1/2: write to the files for real
        sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
        if watch is not None:
            fuzz_side.watch_opens(*watch)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(int(timeout) + 1)
        limit = max_rss_mb * 4 << 20  # address space: RSS bound plus room for mappings
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from mtpsurgeon.cli.main import cli

        try:
            cli.main(args=args, prog_name="mtpsurgeon", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 99
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)


def run_case(case: Case, timeout: float = 120, max_rss_mb: int = 2048) -> Outcome:
    """Run one case in a forked child and check every invariant."""
    for p in case.inputs:
        os.utime(p, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    before = [(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in case.inputs]
    run = case.input.parent.parent
    out_path, err_path, opens_path = run / "stdout", run / "stderr", run / "opens"
    with open(out_path, "wb") as out, open(err_path, "wb") as err, open(opens_path, "wb") as opens:
        t0 = time.monotonic()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            watch = (case.side.forbidden, opens.fileno()) if case.side is not None else None
            _child(case.args, out.fileno(), err.fileno(), timeout, max_rss_mb, watch)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.monotonic() - t0
    stderr = err_path.read_text(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else None
    o = Outcome(case, None if sig else code, sig, seconds, usage.ru_maxrss / 1024, stderr)
    if sig is not None:
        o.problems.append("hang (killed by the timeout)" if sig == signal.SIGALRM else f"killed by signal {sig}")
    elif code not in (0, 1, 2):
        o.problems.append(f"exit code {code}")
    if "Traceback" in stderr:
        o.problems.append("traceback")
    if "internal error" in stderr:
        o.problems.append("internal error")
    if o.rss_mb > max_rss_mb:
        o.problems.append(f"peak RSS {o.rss_mb:.0f} MiB")
    after = [(hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in case.inputs]
    if after != before:
        o.problems.append("input changed")
    left = sorted(str(p.relative_to(case.dest)) for p in case.dest.rglob("*")) if case.dest.exists() else []
    if code != 0 and left:
        o.problems.append(f"left at the destination after exit {code}: {left[:5]}")
    if code == 0 and any(".partial-" in x for x in left):
        o.problems.append(f"temporary files left after success: {left[:5]}")
    if case.side is not None:
        holding = fuzz_side.leaks(case.side, [out_path, err_path, case.dest])
        if holding:
            o.problems.append(f"leak: the outside file's bytes are in {holding[:5]}")
        opened = sorted(set(opens_path.read_text(errors="replace").split()))
        if opened:
            o.problems.append(f"leak: opened {opened[:3]}")
    return o


# -- campaign -----------------------------------------------------------------------------------

@dataclass
class Summary:
    runs: int = 0
    seconds: float = 0.0
    codes: Counter = field(default_factory=Counter)
    by_command: Counter = field(default_factory=Counter)
    problems: list[Outcome] = field(default_factory=list)
    max_seconds: float = 0.0
    slowest: str = ""
    max_rss_mb: float = 0.0
    side_runs: int = 0
    side_codes: dict[str, Counter] = field(default_factory=dict)  #: side-file kind -> exit codes
    leaks: int = 0  #: runs whose outputs held the outside file's token or that opened it

    def add(self, o: Outcome) -> None:
        self.runs += 1
        code = o.code if o.code is not None else f"signal {o.signal}"
        self.codes[code] += 1
        self.by_command[o.case.command] += 1
        if o.case.side is not None:
            self.side_runs += 1
            self.side_codes.setdefault(o.case.side.kind, Counter())[code] += 1
            self.leaks += any(p.startswith("leak") for p in o.problems)
        if o.seconds > self.max_seconds:
            self.max_seconds = o.seconds
            self.slowest = f"run {o.case.index}: {o.case.fixture.name} {o.case.mutation} | {o.case.command}"
        self.max_rss_mb = max(self.max_rss_mb, o.rss_mb)
        if o.problems:
            self.problems.append(o)

    def lines(self) -> list[str]:
        kinds = Counter(p.split(" ")[0] for o in self.problems for p in o.problems)
        out = [f"runs {self.runs} in {self.seconds:.0f} s; exit codes {dict(sorted(self.codes.items(), key=str))}; "
               f"commands {dict(sorted(self.by_command.items()))}",
               f"slowest run {self.max_seconds:.1f} s ({self.slowest}); peak RSS {self.max_rss_mb:.0f} MiB",
               f"failing runs {len(self.problems)} {dict(kinds) if kinds else ''}".rstrip()]
        if self.side_runs:
            by_kind = "; ".join(f"{k} {dict(sorted(c.items(), key=str))}" for k, c in sorted(self.side_codes.items()))
            out.insert(2, f"side-file runs {self.side_runs}, leaks {self.leaks}; exit codes by kind: {by_kind}")
        for o in self.problems[:20]:
            c = o.case
            shown = c.fixture.relative_to(REPO) if c.fixture.is_relative_to(REPO) else c.fixture.name
            out.append(f"  run {c.index}: {shown} {c.mutation} | {' '.join(c.args[:1] + c.args[2:])} "
                       f"-> {'; '.join(o.problems)} | {o.stderr.strip().splitlines()[-1:] }")
        return out


def campaign(seed: int = 1, runs: int | None = None, seconds: float | None = None, jobs: int = 1,
             only: int | None = None, save: Path | None = None, timeout: float = 120, max_rss_mb: int = 2048,
             progress: bool = False, family: str = "all") -> Summary:
    """Run cases ``0..runs-1`` (or until ``seconds`` pass) of campaign ``seed``; ``jobs`` in parallel.

    ``family``: ``all`` (byte mutations and side-file cases), ``bytes`` or ``side`` only, or ``checkpoint``.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    import importlib

    for name in ("mtpsurgeon.cli.main", "mtpsurgeon.surgery.restore", "mtpsurgeon.extract.run"):
        importlib.import_module(name)  # import once, before forking

    files = fixtures()
    summary = Summary()
    t0 = time.monotonic()
    indices = [only] if only is not None else range(runs if runs is not None else 10**9)
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-fuzz-") as tmp:
        work = Path(tmp)
        pending: dict[int, tuple[Case, Path, Path, float]] = {}

        def start(case: Case):
            if jobs == 1:
                return run_case(case, timeout, max_rss_mb)
            pid = os.fork()
            if pid == 0:  # a worker: run the case, report through a file
                o = run_case(case, timeout, max_rss_mb)
                (case.dest.parent / "outcome").write_text(json.dumps([o.code, o.signal, o.seconds, o.rss_mb, o.problems]))
                os._exit(0)
            pending[pid] = case
            return None

        def finish(pid: int) -> Outcome:
            case = pending.pop(pid)
            raw = (case.dest.parent / "outcome")
            code, sig, secs, rss, problems = json.loads(raw.read_text()) if raw.exists() else (None, None, 0, 0, ["worker died"])
            return Outcome(case, code, sig, secs, rss, (case.dest.parent / "stderr").read_text(errors="replace"), problems)

        def record(o: Outcome) -> None:
            summary.add(o)
            if o.problems and save is not None:
                save.mkdir(parents=True, exist_ok=True)
                for p in o.case.inputs:
                    shutil.copyfile(p, save / f"run{o.case.index}-{p.name}")
            if not o.problems:
                shutil.rmtree(o.case.dest.parent, ignore_errors=True)
            if progress and summary.runs % 100 == 0:
                print(f"  {summary.runs} runs, {len(summary.problems)} failing, {time.monotonic() - t0:.0f} s",
                      file=sys.stderr, flush=True)

        for i in indices:
            if seconds is not None and time.monotonic() - t0 > seconds:
                break
            case = make_case(seed, i, files, work, family)
            o = start(case)
            if o is not None:
                record(o)
            while len(pending) >= jobs:
                pid, _ = os.wait()
                record(finish(pid))
        while pending:
            pid, _ = os.wait()
            record(finish(pid))
    summary.seconds = time.monotonic() - t0
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="number of runs (default: until --seconds)")
    ap.add_argument("--seconds", type=float, default=None, help="stop starting runs after this many seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", type=int, default=None, help="run just this case index (to reproduce a failure)")
    ap.add_argument("--save", type=Path, default=None, help="copy failing inputs into this folder")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--max-rss-mb", type=int, default=2048)
    ap.add_argument("--family", choices=FAMILIES, default="all",
                    help="byte mutations, side-file cases (external weights), both (default), or checkpoint "
                         "folders for build-drafter / restore --config")
    a = ap.parse_args(argv)
    if a.runs is None and a.seconds is None and a.only is None:
        a.runs = 1000
    s = campaign(a.seed, a.runs, a.seconds, a.jobs, a.only, a.save, a.timeout, a.max_rss_mb, progress=True,
                 family=a.family)
    print("\n".join(s.lines()))
    return 1 if s.problems else 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
