"""The README's Python snippets run as written (in a scratch directory)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_snippets():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_snippet_runs(index, tmp_path, monkeypatch):
    code = BLOCKS[index]
    if "DATASETS.register(\"my_table\")" in code:
        import torch

        # the registration example needs the user's X and y; give it small ones
        namespace = {"X": torch.randn(40, 3), "y": torch.randint(0, 2, (40,))}
        code = code.replace('register("my_table")', 'register("readme_table")')
    else:
        namespace = {}
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md block {index}", "exec"), namespace)
    if "readme_table" in code:
        from deepnotes.core.registry import DATASETS

        splits = DATASETS.create("readme_table", seed=0)
        assert splits.num_classes == 2 and len(splits.train) + len(splits.val) + len(splits.test) == 40
        DATASETS._entries.pop("readme_table")
