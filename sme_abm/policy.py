"""Effective lever values: what the model reads each step.

For a parameter with configured value ``v`` and counterfactual value ``off``,
the effective value is ``off + intensity * (v - off)``. A lever that is off
has intensity 0. A lever that is on has intensity ``1 - exp(-(t + 1) / lag)``:
its rules phase in with the lag set by lever 24 (organisation and leadership),
which itself takes full effect when on. After a burn-in the rules in force before
month 0 are the burn-in's (``PolicyState.prior``), and what phases in is the change
from them, ``prior + intensity * (v - prior)``: rules already in force do not start
again from nothing (without a prior, ``prior`` is ``off``). How much of each programme reaches
firms, and when, is lever 24's other channel, the administration's capacity to
process support cases (:func:`sme_abm.agents.government.process_support_cases`).
The money parameters of budget levers (``money = true`` in the registry: grant
budgets, subsidy amounts) are further scaled by the budget weights that lever 25
(policy evaluation) reallocates during a run; their other parameters are not.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import TYPE_CHECKING, Mapping

from .levers import LeverRegistry, load_registry

if TYPE_CHECKING:  # pragma: no cover
    from .config import Config

ORGANISATION = "p24_organisation"


class LeverValues(SimpleNamespace):
    """The effective parameter values of one lever this step."""


class PolicyState(SimpleNamespace):
    """One attribute per lever key, each a namespace of effective parameter values.

    ``model.policy.p13_financing_guarantee.fee_cap`` is the fee cap in force
    this step; ``model.policy.intensity[key]`` is the lever's intensity.
    """

    #: Type of each lever's namespace (tests swap in one that records reads).
    values_type: type[SimpleNamespace] = LeverValues

    def __init__(self, config: "Config", registry: LeverRegistry | None = None) -> None:
        super().__init__()
        self._config = config
        self._registry = registry or load_registry()
        self.intensity: dict[str, float] = {}
        #: Each lever's parameter values in force before month 0 (a burn-in's policy), from
        #: which this policy's changes phase in; None: the policy starts from nothing (``off``).
        self.prior: dict[str, dict[str, float]] | None = None
        self.update(0, {})

    @classmethod
    def baseline(cls, registry: LeverRegistry | None = None) -> "PolicyState":
        """The baseline policy fully in force: every lever on at its registry default, at
        intensity 1, whatever a config says.

        The economy's starting state is built under it (:meth:`SMEEconomy._initialise`), so
        every variant of a study starts from the same economy and a lever's setting acts
        only through the policy in force from month 0 on.
        """
        state = cls.__new__(cls)
        SimpleNamespace.__init__(state)
        state._config = None
        state._registry = registry or load_registry()
        state.intensity = {}
        state.prior = None
        for lever in state._registry.levers:
            state.intensity[lever.key] = 1.0
            setattr(state, lever.key, cls.values_type(**{name: param.default
                                                         for name, param in lever.parameters.items()}))
        return state

    def in_force(self) -> dict[str, dict[str, float]]:
        """Every lever's parameter values when this policy is fully in force: the configured
        values of the levers that are on, the ``off`` values of those that are off (the
        baseline policy: every registry default)."""
        if self._config is None:
            return {lever.key: dict(vars(getattr(self, lever.key))) for lever in self._registry.levers}
        out = {}
        for lever in self._registry.levers:
            settings = self._config.lever(lever.key)
            out[lever.key] = {name: (min(max(getattr(settings, name), param.range[0]), param.range[1])
                                     if settings.enabled else param.off)
                              for name, param in lever.parameters.items()}
        return out

    def update(self, step: int, budget_weights: Mapping[str, float]) -> None:
        """Recompute every lever's effective parameters for ``step``."""
        if self._config is None:
            return  # the baseline policy (:meth:`baseline`) is fixed, fully in force
        config, registry = self._config, self._registry
        organisation = config.lever(ORGANISATION)
        org_on = 1.0 if organisation.enabled else 0.0
        org_params = registry.by_key(ORGANISATION).parameters
        lag = _blend(org_params["implementation_lag_months"].off, organisation.implementation_lag_months, org_on)
        ramp = 1.0 - math.exp(-(step + 1) / lag) if lag > 0 else 1.0
        for lever in registry.levers:
            settings = config.lever(lever.key)
            if not settings.enabled:
                intensity = 0.0
            elif lever.key == ORGANISATION:
                intensity = 1.0
            else:
                intensity = ramp
            self.intensity[lever.key] = intensity
            weight = budget_weights.get(lever.key, 1.0) if lever.budget else 1.0
            values = {}
            for name, param in lever.parameters.items():
                low, high = param.range
                # lever 25 moves money between programmes, not their other settings
                scale = weight if param.money else 1.0
                if self.prior is None or not settings.enabled or lever.key == ORGANISATION:
                    value = _blend(param.off, getattr(settings, name), intensity * scale)
                else:  # the change from the rules in force before month 0 phases in
                    value = _blend(param.off, _blend(self.prior[lever.key][name], getattr(settings, name), intensity),
                                   scale)
                values[name] = min(max(value, low), high)
            setattr(self, lever.key, self.values_type(**values))


def _blend(off: float, on: float, intensity: float) -> float:
    return off + intensity * (on - off)
