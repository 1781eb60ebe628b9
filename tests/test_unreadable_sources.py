"""Every file people author is refused the same way when it cannot be read at all: a missing file and a
file that is not UTF-8 text each give one `file:1:1: ...` line with the same wording, whichever loader
(the errors of every loader are InvalidSource)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paysentry.alerts.loader import load_routes
from paysentry.analytics.tariffs import load_tariffs
from paysentry.analytics.validation import load_validation_config
from paysentry.connectors.csvmap import load_mapping
from paysentry.desk.approvals import load_approvals
from paysentry.yamlsource import InvalidSource
from rules.loader import check_ruleset


def _rules(path: Path) -> Any:
    _, errors = check_ruleset(path)
    raise InvalidSource(errors)


LOADERS: dict[str, Callable[[Path], Any]] = {
    "rules": _rules,
    "routes": load_routes,
    "approvals": load_approvals,
    "csv mapping": load_mapping,
    "tariffs": load_tariffs,
    "validation": load_validation_config,
}


@pytest.mark.parametrize("loader", LOADERS.values(), ids=LOADERS.keys())
def test_a_missing_file_and_one_not_in_utf8_are_refused_in_the_same_words(
    loader: Callable[[Path], Any], tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InvalidSource) as refused:
        loader(missing)
    # a rules path may be a directory of files, so the rules loader says what it looked for
    reason = "no such file or directory" if loader is _rules else "cannot read: No such file or directory"
    assert str(refused.value).splitlines() == [f"{missing}:1:1: {reason}"]

    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InvalidSource) as refused:
        loader(latin)
    assert str(refused.value).splitlines() == [f"{latin}:1:1: not UTF-8 text (invalid continuation byte at byte 9)"]
