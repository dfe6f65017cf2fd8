"""sme-abm: an agent-based model of a national SME support system.

The public API (see ``docs/api.md``)::

    import sme_abm
    config = sme_abm.load_config("configs/baseline.toml")
    result = sme_abm.run(config, n_smes=2_000, steps=24)
    result.timeseries.plot(x="step", y="output")
"""

from .config import Config, load_config
from .errors import AccountingError, ConfigError, SmeAbmError
from .levers import load_registry
from .model import SMEEconomy
from .agents.sme import SME
from .agents.bank import Bank
from .agents.guarantor import Guarantor
from .agents.government import Government
from .agents.central_bank import CentralBank
from .runner import RunResult, run
from .sweep import load_experiment, reproduce, sweep

__version__ = "0.1.0"

__all__ = [
    "AccountingError",
    "Bank",
    "CentralBank",
    "Config",
    "ConfigError",
    "Government",
    "Guarantor",
    "RunResult",
    "SME",
    "SMEEconomy",
    "SmeAbmError",
    "load_config",
    "load_experiment",
    "load_registry",
    "reproduce",
    "run",
    "sweep",
    "__version__",
]
