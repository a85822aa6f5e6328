"""The README and the code point nowhere outside the project, and the README's examples of
command output are what the commands print."""

from __future__ import annotations

import re
from pathlib import Path

from litevit.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Paths of the authors' working notes, which a user's clone does not have.
OUTSIDE = re.compile(r"shared/reference|\bmodels\.md|(?<!docs/)\btensorrt\.md|ecosystem\.md|/work/")
TEXT_SUFFIXES = {".md", ".py", ".toml", ".txt", ".cpp", ".h", ".cu", ".cmake", ".json", ".yml", ".yaml", ""}


def _project_files() -> list[Path]:
    files = [README, ROOT / "pyproject.toml"]
    for folder in (
        "docs",
        "litevit",
        "export",
        "runtime",
        "serve",
        "plugins",
        "calibration",
        "tests",
        "benchmarks",
        ".ci",
    ):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts
        ]
    return [p for p in files if p != Path(__file__).resolve()]


def test_nothing_points_outside_the_project():
    found = []
    for path in _project_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_readme_links_into_the_project_exist():
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README.read_text())
    assert "docs/tensorrt.md" in links and "docs/model-figures.md" in links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing


def test_readme_shows_what_litevit_info_prints(capsys):
    block = re.search(r"```text\n\$ litevit info ([^\n]+)\n(.*?)\n```", README.read_text(), re.S)
    assert block, "the README's Models section shows a `litevit info` run"
    assert main(["info", *block.group(1).split()]) == 0
    assert capsys.readouterr().out.rstrip("\n") == block.group(2)


def test_the_readme_python_example_prints_params_macs_and_flops():
    import torch

    import litevit

    assert (
        "print(litevit.count_model(model))  # lvt_seg at 1x3x512x704: params, GMACs, GFLOPs"
        in README.read_text()
    )
    with torch.device("meta"):
        model = litevit.create_model("lvt_seg", img_size=(512, 704))
    printed = str(litevit.count_model(model))
    assert re.fullmatch(r"lvt_seg at 1x3x512x704: [\d.]+ M parameters, [\d.]+ GMACs, [\d.]+ GFLOPs", printed)
