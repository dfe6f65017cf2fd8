"""The registry of the 25 policy levers, loaded from ``registry.toml``.

The registry is data: each provision of the policy is one :class:`Lever` with
its parameters, and each :class:`LeverParameter` carries its description, unit,
value when the lever is on (``default``), value when it is off (``off``),
allowed range and source. The model reads lever values only through
:meth:`LeverRegistry` helpers and :class:`sme_abm.policy.LeverState`.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SECTION_TITLES: dict[int, str] = {
    1: "Improve the basic system supporting the development of SMEs",
    2: "Uphold and improve the financial and taxation support system for SMEs",
    3: "Uphold and improve the financing promotion system for SMEs",
    4: "Establish and improve the innovation and development system for SMEs",
    5: "Improve and optimize the service system for SMEs",
    6: "Establish and improve the legal rights and interests protection system for SMEs",
    7: "Strengthen the organization and leadership system for promoting the development of SMEs",
}


class LeverParameter(BaseModel):
    """One tunable parameter of a lever."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    default: float
    off: float
    range: tuple[float, float]
    source: str = ""
    #: A money parameter of a budget lever (a grant budget, a subsidy amount or rate, the
    #: trainings bought): the only parameters lever 25's budget weights scale.
    money: bool = False

    @model_validator(mode="after")
    def _values_in_range(self) -> "LeverParameter":
        low, high = self.range
        if not low <= high:
            raise ValueError(f"range {self.range} is empty")
        for name in ("default", "off"):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name}={value} outside range {self.range}")
        return self


class Lever(BaseModel):
    """One provision of the policy as a switchable lever."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provision: int = Field(ge=1, le=25)
    section: int = Field(ge=1, le=7)
    key: str = Field(pattern=r"^p\d\d_[a-z0-9_]+$")
    title: str
    heading: str
    description: str = Field(min_length=20)
    mechanism: str = Field(min_length=20, description="Where and how the lever acts in the model.")
    budget: bool = False
    parameters: dict[str, LeverParameter]

    @model_validator(mode="after")
    def _money_only_in_budget_levers(self) -> "Lever":
        money = [name for name, param in self.parameters.items() if param.money]
        if money and not self.budget:
            raise ValueError(f"{self.key}: money parameters {money} in a lever that is not a budget lever")
        if self.budget and not money:
            raise ValueError(f"{self.key}: a budget lever needs at least one money parameter")
        return self

    @field_validator("parameters")
    @classmethod
    def _has_parameters(cls, value: dict[str, LeverParameter]) -> dict[str, LeverParameter]:
        if not value:
            raise ValueError("a lever needs at least one parameter")
        return value

    @property
    def main_parameter(self) -> str:
        """The first parameter, shown in tables and swept in screenings."""
        return next(iter(self.parameters))


class LeverRegistry(BaseModel):
    """All 25 levers, in provision order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lever: list[Lever]

    @model_validator(mode="after")
    def _exactly_provisions_1_to_25(self) -> "LeverRegistry":
        numbers = [lever.provision for lever in self.lever]
        if sorted(numbers) != list(range(1, 26)):
            raise ValueError(f"registry must hold provisions 1..25 once each, got {numbers}")
        for lever in self.lever:
            if not lever.key.startswith(f"p{lever.provision:02d}_"):
                raise ValueError(f"lever key {lever.key} does not match provision {lever.provision}")
        return self

    @property
    def levers(self) -> list[Lever]:
        return sorted(self.lever, key=lambda lever: lever.provision)

    @property
    def keys(self) -> list[str]:
        return [lever.key for lever in self.levers]

    def by_key(self, key: str) -> Lever:
        for lever in self.lever:
            if lever.key == key:
                return lever
        raise KeyError(key)

    def by_provision(self, provision: int) -> Lever:
        return self.by_key(self.keys[provision - 1])


@lru_cache(maxsize=1)
def load_registry() -> LeverRegistry:
    """Load and validate the packaged lever registry (cached)."""
    text = resources.files(__package__).joinpath("registry.toml").read_text(encoding="utf-8")
    return LeverRegistry.model_validate(tomllib.loads(text))


__all__ = ["Lever", "LeverParameter", "LeverRegistry", "SECTION_TITLES", "load_registry"]
