"""The seeded mutation campaign (tests/fuzz.py), bounded to about a minute for CI.

Release checks run it longer: ``python -m tests.fuzz --runs 10000 --jobs 2``.
"""
from __future__ import annotations

import random

import fuzz


def test_mutations_are_seeded_and_change_the_bytes():
    data = (fuzz.FIXTURES / "mtp_drafter.tflite").read_bytes()
    a = [fuzz.mutate(data, random.Random(f"1:{i}")) for i in range(50)]
    b = [fuzz.mutate(data, random.Random(f"1:{i}")) for i in range(50)]
    assert a == b
    assert {d.split()[0] for _, d in a} == set(fuzz.MUTATIONS)
    assert all(m != data for m, _ in a)


def test_campaign_on_every_fixture():
    files = fuzz.fixtures()
    assert len(files) >= 10
    summary = fuzz.campaign(seed=20261129, seconds=50, jobs=2, timeout=120)
    print("\n".join(summary.lines()))
    assert summary.runs >= len(files), summary.lines()  # every fixture mutated at least once
    assert set(summary.by_command) == set(fuzz.COMMANDS) or summary.runs < 40
    assert not summary.problems, "\n".join(summary.lines())
