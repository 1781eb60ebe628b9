"""Compile the core's hottest pure modules with mypyc, in place; optional (the Python sources stay the
reference, and without the compiled files everything runs as plain Python).

    .venv/bin/python scripts/build_compiled.py          # build (about a minute on 2 cores)
    .venv/bin/python scripts/build_compiled.py --clean  # back to plain Python

The compiled modules decide exactly as the sources (bench/core_throughput.py --compare checks the
decisions' digest). A compiled module shadows its source, so the build records each source's SHA-256
in `compiled-modules.json`; tests/test_compiled_modules.py fails while a compiled module is older than
its source (rebuild, or --clean).

mypyc is run in a copy of the tree without pyproject.toml, whose metadata setuptools' build step
refuses; the copy gets the project's mypy settings on the command line instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "paysentry/windows.py",
    "models/features.py",
    "models/typology_features.py",
    "models/label_features.py",
    "models/flat_trees.py",
)
MANIFEST = ROOT / "compiled-modules.json"
_PACKAGES = ("paysentry", "models", "rules")
_SUFFIX = ".cpython-*.so"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_files(root: Path = ROOT) -> list[Path]:
    """The compiled modules of MODULES and mypyc's shared runtime library, as found in `root`."""
    found = [path for module in MODULES for path in (root / module).parent.glob(Path(module).stem + _SUFFIX)]
    return found + sorted(root.glob("*__mypyc" + _SUFFIX))


def clean() -> None:
    for path in compiled_files():
        path.unlink()
    MANIFEST.unlink(missing_ok=True)


def build() -> None:
    clean()
    with tempfile.TemporaryDirectory(prefix="paysentry-mypyc-") as tmp:
        work = Path(tmp)
        for package in _PACKAGES:
            shutil.copytree(ROOT / package, work / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        command = [sys.executable, "-m", "mypyc", "--ignore-missing-imports", "--check-untyped-defs", *MODULES]
        subprocess.run(command, cwd=work, check=True)
        for path in compiled_files(work):
            shutil.copy2(path, ROOT / path.relative_to(work))
    MANIFEST.write_text(json.dumps({module: source_digest(ROOT / module) for module in MODULES}, indent=2) + "\n")
    print(f"compiled {len(MODULES)} modules: {', '.join(MODULES)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    clean() if args.clean else build()


if __name__ == "__main__":
    main()
