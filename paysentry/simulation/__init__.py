"""The synthetic ERP payment-stream simulator (see `paysentry.simulate` for what it produces)."""

from paysentry.invoices import normalise_invoice  # the core's: the simulator's duplicates must match it
from paysentry.simulation.config import (
    DEFAULT_COMPANIES,
    TYPOLOGIES,
    ChannelHabit,
    SimulatedCompany,
    SimulationConfig,
)

__all__ = [
    "DEFAULT_COMPANIES",
    "TYPOLOGIES",
    "ChannelHabit",
    "SimulatedCompany",
    "SimulationConfig",
    "normalise_invoice",
]
