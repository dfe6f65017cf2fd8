"""Mesa's bookkeeping of SME agents: how they enter and leave the model's registry.

Some 1% of firms enter and leave every month, so at 10^5-10^6 firms the per-agent
calls of Mesa's public API (``SME(model, ...)`` and ``agent.remove()``) are a large
share of a step. Mesa 3.3 lays its registry out in a way that lets a batch of agents
be registered and deregistered in one pass each; that fast path depends on Mesa's
private attributes, so it is used only where the layout is exactly the one it was
written for, detected once per model. Everywhere else (Mesa 3.4 and later, a
subclass that sets other attributes, a logger at DEBUG level), the public calls are
used, for creation, removal and compaction alike.

Use :func:`registry_for` to get the right one for a model; both give the same agents,
the same ``unique_id`` s and the same ``agents_by_type`` contents, in the same order
(``tests/test_mesa_agents.py`` checks it on every Mesa the project supports).
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:  # pragma: no cover
    from .agents.sme import SME

class WeakIdCounters(weakref.WeakKeyDictionary):
    """Mesa 3.3's ``Agent._ids`` (model -> ``itertools.count(1)``), keyed weakly.

    Mesa 3.3 keeps each model's ``unique_id`` counter in a class-level ``defaultdict``
    keyed by the model itself, so every model ever built stays alive for the life of
    the process: about 6-8 MB per 10,000-SME model, which is what a dashboard server
    kept of every closed session, and what a sweep worker kept of every run. Keyed
    weakly, a model's counter goes with the model; ids are the same (1, 2, ... per model).
    """

    def __getitem__(self, model: Any) -> Any:
        try:
            return super().__getitem__(model)
        except KeyError:
            counter = itertools.count(1)
            self[model] = counter
            return counter


def release_models_with_their_agent_ids() -> None:
    """Make ``mesa.Agent._ids`` a :class:`WeakIdCounters` where it is Mesa 3.3's strong
    ``defaultdict`` (later Mesa keeps the counter on the model; nothing to do there)."""
    ids = getattr(mesa.Agent, "_ids", None)
    if isinstance(ids, defaultdict) and not isinstance(ids, WeakIdCounters):
        weak = WeakIdCounters()
        for model, counter in list(ids.items()):
            weak[model] = counter
        mesa.Agent._ids = weak  # type: ignore[attr-defined]


release_models_with_their_agent_ids()

#: Share of the registry's agents that may leave before its hash tables are rebuilt.
REGISTRY_COMPACTION_CHURN = 0.25

#: The attributes Mesa 3.3's ``Agent.__init__`` and ``SME.__init__`` set, and nothing else.
_MESA33_AGENT_ATTRIBUTES = {"_model_ref", "unique_id", "pos", "firm_id"}  # ``model`` is SME's weak property


class PublicRegistry:
    """SME agents made with ``SME(model, firm_id)`` and removed with ``agent.remove()``:
    Mesa's public API, correct on every Mesa version."""

    name = "public"

    def __init__(self, model: mesa.Model, agent_class: type["SME"]) -> None:
        self.model = model
        self.agent_class = agent_class

    def create(self, firm_ids: list[int]) -> list["SME"]:
        make = self.agent_class
        return [make(self.model, firm_id) for firm_id in firm_ids]

    def remove(self, agents: list["SME"]) -> None:
        for agent in agents:
            agent.remove()


class Mesa33Registry(PublicRegistry):
    """Batched registration on Mesa 3.3's layout.

    What ``mesa.Agent.__init__`` and ``Model.register_agent`` do for each agent (its
    attributes, the next ``unique_id`` of the model's counter, one entry in each of
    the model's agent dict and the weak dictionaries of the SME and all-agents
    ``AgentSet`` s, in the same order), and what ``Agent.remove`` undoes, with the
    per-agent calls taken out. Made only by :func:`registry_for`, which has checked
    the layout.
    """

    name = "mesa-3.3"

    def __init__(self, model: mesa.Model, agent_class: type["SME"], counter: Any) -> None:
        super().__init__(model, agent_class)
        self.counter = counter
        self.churn = 0  # agents removed since the tables were last rebuilt

    def _tables(self) -> tuple[dict, Any, Any]:
        model = self.model
        return (getattr(model, "_agents"), model.agents_by_type[self.agent_class]._agents,
                getattr(model, "_all_agents")._agents)

    def create(self, firm_ids: list[int]) -> list["SME"]:
        registry, type_set, all_set = self._tables()
        cls, counter = self.agent_class, self.counter
        # what ``agent.model = model`` stores (the model's one plain weak reference, which
        # CPython hands out again for every weakref.ref(model)), set without the property call
        model_ref = weakref.ref(self.model)
        new: list["SME"] = list(map(cls.__new__, itertools.repeat(cls, len(firm_ids))))
        for agent, firm_id in zip(new, firm_ids):
            agent._model_ref = model_ref
            agent.unique_id = next(counter)
            agent.pos = None
            agent.firm_id = int(firm_id)
        registry.update(dict.fromkeys(new))
        for table in (type_set, all_set):
            table.data.update(dict.fromkeys(map(weakref.ref, new, itertools.repeat(table._remove))))
        return new

    def remove(self, agents: list["SME"]) -> None:
        registry, type_set, all_set = self._tables()
        type_refs, all_refs = type_set.data, all_set.data
        for agent in agents:
            key = weakref.ref(agent)
            del registry[agent]
            del type_refs[key]
            del all_refs[key]
        self.churn += len(agents)
        if self.churn > REGISTRY_COMPACTION_CHURN * len(registry):
            self.compact()

    def compact(self) -> None:
        """Rebuild the registry's hash tables without the slots of departed agents.

        A Python dict keeps a slot for every key ever inserted until it resizes, and
        then sizes itself for three times its live keys. With ~1% of firms replaced every
        month, Mesa 3.3's three registry dicts all resized together after about five
        years, to 2^22 slots at a million firms: 120 MB at once. Copying them once a
        quarter of the population has turned over keeps them at the size a fresh model
        has (same keys, same agents, same order; ~0.1 s at 10^6).
        """
        model = self.model
        setattr(model, "_agents", dict(getattr(model, "_agents")))  # one table at a time
        for agent_set in (model.agents_by_type[self.agent_class], getattr(model, "_all_agents")):
            agent_set._agents.data = dict(agent_set._agents.data)
        self.churn = 0


def _mesa33_layout(model: mesa.Model, agent_class: type, first: Any) -> Any:
    """The model's ``unique_id`` counter if its registry is laid out as in Mesa 3.3 and
    ``first`` (an agent made by ``agent_class(...)``) carries only the attributes the
    batched creation sets; None otherwise."""
    registry = getattr(model, "_agents", None)
    type_set = getattr(model.agents_by_type.get(agent_class), "_agents", None)
    all_set = getattr(getattr(model, "_all_agents", None), "_agents", None)
    ids = getattr(mesa.Agent, "_ids", None)
    if not (isinstance(registry, dict) and isinstance(getattr(type_set, "data", None), dict)
            and isinstance(getattr(all_set, "data", None), dict) and callable(getattr(type_set, "_remove", None))
            and callable(getattr(all_set, "_remove", None)) and ids is not None):
        return None
    if set(vars(first)) != _MESA33_AGENT_ATTRIBUTES or first not in registry:
        return None
    if vars(first)["_model_ref"] is not weakref.ref(model):  # what the batched creation stores
        return None
    logger = getattr(mesa.model, "_mesa_logger", None)
    if logger is not None and logger.isEnabledFor(logging.DEBUG):
        return None  # Mesa logs each registration; the public path keeps those lines
    return ids[model]


class LazyRegistry:
    """Decides on the first batch of SMEs: its first agent is made by ``SME(...)`` and
    the layout it left behind picks the registry for the rest of the model's life."""

    def __init__(self, model: mesa.Model, agent_class: type["SME"], fast: bool = True) -> None:
        self.model, self.agent_class, self.fast = model, agent_class, fast
        self.chosen: PublicRegistry | None = None

    @property
    def name(self) -> str:
        return self.chosen.name if self.chosen is not None else "undecided"

    def create(self, firm_ids: list[int]) -> list["SME"]:
        if self.chosen is not None:
            return self.chosen.create(firm_ids)
        if not firm_ids:
            return []
        first = self.agent_class(self.model, firm_ids[0])
        counter = _mesa33_layout(self.model, self.agent_class, first) if self.fast else None
        self.chosen = (Mesa33Registry(self.model, self.agent_class, counter) if counter is not None
                       else PublicRegistry(self.model, self.agent_class))
        return [first] + self.chosen.create(firm_ids[1:])

    def remove(self, agents: list["SME"]) -> None:
        (self.chosen or PublicRegistry(self.model, self.agent_class)).remove(agents)


def registry_for(model: mesa.Model, agent_class: type["SME"], fast: bool = True) -> LazyRegistry:
    """The SME registry of ``model``: Mesa 3.3's batched one where its layout is found,
    Mesa's public calls otherwise (or always, with ``fast=False``)."""
    return LazyRegistry(model, agent_class, fast)


__all__ = ["PublicRegistry", "Mesa33Registry", "LazyRegistry", "registry_for", "REGISTRY_COMPACTION_CHURN"]
