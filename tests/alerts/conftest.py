"""Alerting tests. The twilio library (9.x) still passes aiohttp's deprecated BasicAuth; that warning is
theirs, not ours."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore:BasicAuth is deprecated:DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore:The 'auth' parameter is deprecated:DeprecationWarning")
