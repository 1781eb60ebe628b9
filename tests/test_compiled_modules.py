"""The optional mypyc build (scripts/build_compiled.py) never leaves a compiled module older than its source:
a compiled module shadows its source, so an edit without a rebuild would run the old code."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
build_compiled = importlib.import_module("build_compiled")


def test_every_compiled_module_was_built_from_its_current_source() -> None:
    compiled = build_compiled.compiled_files()
    if not compiled:
        return  # plain Python: nothing can be stale
    manifest = build_compiled.MANIFEST
    assert manifest.exists(), f"compiled modules without {manifest.name}: run scripts/build_compiled.py (or --clean)"
    recorded = json.loads(manifest.read_text())
    stale = [module for module in build_compiled.MODULES
             if recorded.get(module) != build_compiled.source_digest(ROOT / module)]  # fmt: skip
    assert not stale, f"compiled from an older source: {stale}; run scripts/build_compiled.py (or --clean)"


def test_the_compiled_modules_are_the_ones_imported_when_present() -> None:
    compiled = {path.name.split(".")[0] for path in build_compiled.compiled_files()}
    for module in build_compiled.MODULES:
        name = module.removesuffix(".py").replace("/", ".")
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        assert spec.origin.endswith(".so") == (Path(module).stem in compiled)
