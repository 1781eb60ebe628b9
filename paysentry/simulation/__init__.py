"""The synthetic ERP payment-stream simulator (see `paysentry.simulate` for what it produces)."""

from paysentry.simulation.anomalies import normalise_invoice
from paysentry.simulation.config import (
    DEFAULT_COMPANIES,
    TYPOLOGIES,
    ChannelHabit,
    CompanyProfile,
    SimulationConfig,
)

__all__ = [
    "DEFAULT_COMPANIES",
    "TYPOLOGIES",
    "ChannelHabit",
    "CompanyProfile",
    "SimulationConfig",
    "normalise_invoice",
]
