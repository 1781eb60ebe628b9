"""Compile the core's hottest pure modules with mypyc, in place; optional (the Python sources stay the
reference, and without the compiled files everything runs as plain Python).

    .venv/bin/python scripts/build_compiled.py          # build (about ten minutes on 2 cores)
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
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = (
    "paysentry/core.py",
    "paysentry/replay.py",
    "paysentry/windows.py",
    "paysentry/event_time.py",
    "paysentry/money.py",
    "paysentry/timers.py",
    "models/features.py",
    "models/typology_features.py",
    "models/label_features.py",
    "models/flat_trees.py",
    "models/scorer.py",
    "models/scoring.py",
    "rules/ruleset.py",
)
# Left out: paysentry/state.py. mypyc 2.4.1 makes a dataclass's ClassVar (Entity.prefix, .sharded,
# .memory) a read-only instance attribute that the generated __init__ then assigns, so the first entity
# created fails; the whole state module would need its class metadata moved out of the classes.
MANIFEST = ROOT / "compiled-modules.json"
_PACKAGES = ("paysentry", "models", "rules")
_SUFFIX = ".cpython-*.so"
# mypyc's shared runtime library is a top-level module: it goes where the interpreter finds it from any
# directory (the console scripts run from anywhere), the environment's site-packages. Other compiled
# packages keep theirs there too (mypy does), so only the one this build wrote, named in the manifest, is ours.
RUNTIME_DIR = Path(sysconfig.get_paths()["purelib"])
_RUNTIME_KEY = "mypyc runtime library"


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _compiled_modules(root: Path) -> list[Path]:
    return [path for module in MODULES for path in (root / module).parent.glob(Path(module).stem + _SUFFIX)]


def compiled_files() -> list[Path]:
    """The compiled modules of MODULES in this tree and the runtime library the build installed."""
    found = _compiled_modules(ROOT)
    runtime = json.loads(MANIFEST.read_text()).get(_RUNTIME_KEY) if MANIFEST.exists() else None
    if runtime and (RUNTIME_DIR / runtime).exists():
        found.append(RUNTIME_DIR / runtime)
    return found


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
        for path in _compiled_modules(work):
            shutil.copy2(path, ROOT / path.relative_to(work))
        (runtime,) = work.glob("*__mypyc" + _SUFFIX)  # one compilation group, one runtime library
        shutil.copy2(runtime, RUNTIME_DIR / runtime.name)
    manifest = {module: source_digest(ROOT / module) for module in MODULES}
    manifest[_RUNTIME_KEY] = runtime.name
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"compiled {len(MODULES)} modules: {', '.join(MODULES)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = parser.parse_args()
    clean() if args.clean else build()


if __name__ == "__main__":
    main()
