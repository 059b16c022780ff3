"""The small configurations are reproducible: the same corpus, models and data on every machine that prepares them.

A small attempt's normalised score divides by its configuration's measured start and reference:
those constants hold only if every workstation prepares the same starting solution. The corpus
was read from the running interpreter's standard library: another patch version or distribution
(Debian's 3.11.2 gives 431 modules and 1.37 MB of training text where 3.11.7 gives 443 and 1.49 MB)
trained another model.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from pathlib import Path

import pytest

from environments.common import corpus

# The shipped corpus's splits (CPython 3.11.7's docstrings): the bytes every machine trains and scores on.
SPLITS = {
    "train.bin": "62390122f6ea4c83445e6b92830c3893cb667dfc4f19d0ae1dd79c944f3a1e58",
    "val.bin": "7f307fda9b4f49c1c466d13b7eb06e9f8b405a5dd6aebab36569ea131f19de89",
    "dev.bin": "66a4323b123c2fc279210c087c256b1486d673c2346d209c811b9ee4288acb70",
    "test.bin": "339ed6998b8a6f1d9983e720d7616c5650fff6a958815725cc7111e5da48a7e3",
}


def test_the_corpus_is_the_same_bytes_whatever_python_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another machine's interpreter: another version and a standard library with other modules in it.
    other_stdlib = tmp_path / "lib" / "python3.11"
    (other_stdlib / "json").mkdir(parents=True)
    (other_stdlib / "json" / "__init__.py").write_text('"""A standard library split into distribution packages."""\n')
    monkeypatch.setattr(sysconfig, "get_paths", lambda *a, **k: {"stdlib": str(other_stdlib)})
    monkeypatch.setattr(sys, "version_info", (3, 11, 2, "final", 0))
    built = corpus.build(tmp_path / "cache")
    assert {name: hashlib.sha256((built.root / name).read_bytes()).hexdigest() for name in SPLITS} == SPLITS
    assert built.meta["source_sha256"] == corpus.SOURCE_SHA256


def test_a_corpus_source_that_is_not_the_shipped_file_is_refused(tmp_path: Path) -> None:
    changed = tmp_path / "source.jsonl.gz"
    changed.write_bytes(corpus.SOURCE.read_bytes()[:-1])
    with pytest.raises(corpus.CorpusSourceError, match="SHA-256 differs"):
        next(corpus.source_documents(changed))
    with pytest.raises(corpus.CorpusSourceError, match="missing"):
        next(corpus.source_documents(tmp_path / "absent.gz"))
