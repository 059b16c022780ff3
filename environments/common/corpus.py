"""An offline text corpus: the docstrings of Python 3.11.7's standard library, byte-level tokens, train/val split.

Source and licence: the text was extracted with `ast` from CPython 3.11.7's standard library
(`Lib/`, under the Python Software Foundation License, PSF-2.0) and ships beside this module as
`stdlib_docstrings.jsonl.gz` (one JSON line per module: its path and its docstrings); nothing is
downloaded and nothing is read from the interpreter that runs this. The corpus used to be built
from the running interpreter's own `Lib/`, and that made it depend on what was installed: another
patch version, or a distribution that splits the standard library into packages (Debian's
python3-tk, python3-distutils, ...), gave other text, another trained model and another starting
score on a machine of the same kind. The shipped file is checked against SOURCE_SHA256 before use.
`python environments/common/corpus.py --write-source` rewrites it from the running interpreter
(then every small configuration's constants must be measured again).

Each module goes to validation when a hash of its relative path says so (about 1 in 10).

Validation is split again, by the same hash, into `dev.bin` and `test.bin` (about half each; `val.bin`
is the two together, unchanged). An environment that scores a model on held-out text gives the
expert `dev.bin` (as their `data/val.bin`) and evaluates on `test.bin`, which stays in the
configuration's protected cache: a score computed on text the expert can read could be bought by
training on it. `train.bin` and `val.bin` are what they were before the split (FORMAT 1), so models
trained on them and text taken from them don't change.

Tokens: byte-level (a token is one UTF-8 byte, VOCAB_SIZE = 256), stored as uint16 arrays in
`train.bin` and `val.bin`, the layout nanoGPT uses for OpenWebText, so the full-scale data drops in.

API: `build(cache_dir) -> Corpus` (cached: a second call reads the files), `encode`, `decode`,
`load_tokens(path)`, and `remember(cache_dir, data_dir)` / `remembered(cache_dir)`: the start step
records which data it prepared, so a scorer reads those very files instead of building its own.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import shutil
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VOCAB_SIZE = 256
FORMAT = 3  # 2: val.bin also split into dev.bin (the expert's) and test.bin (held out); 3: from the shipped source
SOURCE = Path(__file__).resolve().with_name("stdlib_docstrings.jsonl.gz")
# The shipped source's digest: a truncated, converted (Git LFS pointer, line endings) or edited copy is refused.
SOURCE_SHA256 = "11612e6d1b2df71b5db58178ab88c1a1b6738826c0ceb83a4835e5e2fe988ae3"
SOURCE_PYTHON = "3.11.7"
SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}


@dataclass(frozen=True)
class Corpus:
    root: Path
    train_bin: Path
    val_bin: Path  # dev.bin and test.bin together
    dev_bin: Path  # the expert's validation split
    test_bin: Path  # held out: only scorers read it
    meta: dict[str, Any]

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])


def encode(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def decode(tokens: list[int] | np.ndarray) -> str:
    return bytes(int(t) for t in tokens if 0 <= int(t) < VOCAB_SIZE).decode("utf-8", errors="replace")


def load_tokens(path: Path | str) -> np.ndarray:
    """A read-only view of a uint16 token file (nanoGPT's layout)."""
    return np.memmap(path, dtype=np.uint16, mode="r")


class CorpusSourceError(RuntimeError):
    """The shipped source is missing or isn't the file this module was written for."""


def _stdlib_files() -> list[tuple[str, Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            if name.endswith(".py"):
                path = Path(folder) / name
                files.append((str(path.relative_to(root)), path))
    return sorted(files)


def _docstrings(source: str) -> list[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old modules
            tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= 40:
                out.append(doc)
    return out


def _is_validation(relative: str) -> bool:
    return hashlib.sha256(relative.encode()).digest()[0] < 26  # ~10 %


def _is_test(relative: str) -> bool:
    """Of the validation modules, the held-out half (the hash's first byte below 13: about 5 % of all)."""
    return hashlib.sha256(relative.encode()).digest()[0] < 13


def corpus_key(max_bytes: int) -> str:
    """The same on every machine: the source's digest, not the interpreter's version."""
    return hashlib.sha256(f"{FORMAT}:{SOURCE_SHA256}:{max_bytes}".encode()).hexdigest()[:12]


def source_documents(source: Path = SOURCE) -> Iterator[tuple[str, str]]:
    """(module path, its docstrings as one text) from the shipped source, in path order, after checking its digest."""
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise CorpusSourceError(f"The corpus source {source} is missing: it ships with the environments.") from None
    if hashlib.sha256(data).hexdigest() != SOURCE_SHA256:
        raise CorpusSourceError(f"The corpus source {source} is not the shipped file (its SHA-256 differs).")
    for line in gzip.decompress(data).decode("utf-8").splitlines():
        row = json.loads(line)
        yield str(row["module"]), str(row["text"])


def write_source(target: Path = SOURCE) -> str:
    """Extract the running interpreter's standard-library docstrings into `target`; returns its SHA-256.

    Byte-for-byte reproducible for one standard library (sorted paths, gzip without a timestamp).
    """
    lines = []
    for relative, path in _stdlib_files():
        docs = _docstrings(path.read_text(encoding="utf-8", errors="replace"))
        if docs:
            lines.append(json.dumps({"module": relative, "text": "\n\n".join(docs) + "\n\n"}, ensure_ascii=False))
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)
    _atomic_write(target, data)
    return hashlib.sha256(data).hexdigest()


def build(cache_dir: Path | str, *, max_bytes: int = 4_000_000) -> Corpus:
    """Build (or reuse) the corpus under `cache_dir/corpus-<key>`; at most `max_bytes` of training text."""
    root = Path(cache_dir) / f"corpus-{corpus_key(max_bytes)}"
    meta_path = root / "meta.json"
    if meta_path.exists():
        return _corpus(root, json.loads(meta_path.read_text()))
    train: list[str] = []
    dev: list[str] = []
    test: list[str] = []
    val: list[str] = []
    size = 0
    for relative, text in source_documents():
        if _is_validation(relative):
            val.append(text)
            (test if _is_test(relative) else dev).append(text)
        elif size < max_bytes:
            train.append(text)
            size += len(text.encode())
    root.mkdir(parents=True, exist_ok=True)
    meta = {
        "source": f"docstrings of Python {SOURCE_PYTHON}'s standard library (PSF License), extracted with ast",
        "source_sha256": SOURCE_SHA256,
        "vocab_size": VOCAB_SIZE,
        "tokenizer": "bytes (UTF-8)",
    }
    for name, texts in (("train", train), ("val", val), ("dev", dev), ("test", test)):
        data = np.frombuffer("".join(texts).encode("utf-8"), dtype=np.uint8).astype(np.uint16)
        _atomic_write(root / f"{name}.bin", data.tobytes())
        meta[f"{name}_tokens"] = int(data.size)
    _atomic_write(meta_path, json.dumps(meta, indent=2).encode())  # last: its presence means "complete"
    return _corpus(root, meta)


def _corpus(root: Path, meta: dict[str, Any]) -> Corpus:
    return Corpus(root, root / "train.bin", root / "val.bin", root / "dev.bin", root / "test.bin", meta)


def remember(cache_dir: Path | str, data_dir: Path | str) -> None:
    _atomic_write(Path(cache_dir) / "data.json", json.dumps({"data_dir": str(data_dir)}).encode())


def remembered(cache_dir: Path | str) -> Path | None:
    """The data folder the start step prepared for this configuration, or None if start never ran."""
    path = Path(cache_dir) / "data.json"
    return Path(json.loads(path.read_text())["data_dir"]) if path.exists() else None


def give_expert_data(doc: dict[str, Any], folder: Path) -> Path:
    """Put the expert's `train.bin` and `val.bin` in `folder`, from a start's configuration document.

    Returns the folder they come from (OpenWebText's, or the corpus's in the cache).

    Full scale (`paths.data_dir`): OpenWebText's own files, linked (gigabytes, read-only on the
    workstation). Small: this corpus's training split and its `dev.bin` as the expert's validation
    split, copied; never `test.bin`, the held-out text a scorer evaluates on. Files already there
    are kept (a workspace prepared again keeps what the expert has).
    """
    folder.mkdir(exist_ok=True)
    full = doc["paths"].get("data_dir")
    if full:
        sources = {"train.bin": Path(full) / "train.bin", "val.bin": Path(full) / "val.bin"}
    else:
        root = build(doc["cache_dir"], max_bytes=int(doc["params"].get("corpus_max_bytes", 4_000_000))).root
        remember(doc["cache_dir"], root)
        sources = {"train.bin": root / "train.bin", "val.bin": root / "dev.bin"}
    for name, source in sources.items():
        target = folder / name
        if target.exists() or target.is_symlink():
            continue
        if full:
            target.symlink_to(source)
        else:
            shutil.copy2(source, target)
    return sources["train.bin"].parent


def _atomic_write(path: Path, data: bytes) -> None:
    """Two starts building the same cache at once each write whole files; the last rename wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-source"]:
        sys.exit(f"usage: {sys.argv[0]} --write-source  (rewrites {SOURCE.name} from this interpreter's Lib/)")
    print(f"{SOURCE}: {write_source()} (Python {'.'.join(map(str, sys.version_info[:3]))}): set SOURCE_SHA256")
