"""The README's walkthrough commands run as written (keeps the README honest)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

from conftest import REPO


def walkthrough_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## The three commands on a fixture", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("mtpsurgeon ")]


def test_walkthrough_runs_as_written(tmp_path):
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    commands = walkthrough_commands()
    assert [c.split()[1] for c in commands] == ["inspect", "extract", "restore"]
    outputs = []
    for command in commands:
        args = shlex.split(command)[1:]
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *args], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, (command, p.stderr)
        outputs.append(p.stdout)
    assert "MTP: HIDDEN" in outputs[0] and "section_untagged" in outputs[0]
    assert (tmp_path / "drafter" / "config.json").exists()
    assert (tmp_path / "drafter" / "untagged-drafter.section5.untagged.tflite").exists()
    assert (tmp_path / "gemma4-mini-mtp.litertlm").exists()
    assert "re-tag section 5" in outputs[2]
