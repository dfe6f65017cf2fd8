"""SMEs are Mesa agents that read their own rows of the population arrays."""

from __future__ import annotations

import numpy as np
import pytest

from sme_abm import SME, Bank, CentralBank, Government, Guarantor, SMEEconomy


def test_agents_by_type_and_rows_stay_in_step_through_entry_and_exit():
    model = SMEEconomy(n_smes=2_000, rng=3)
    model.run(24)
    smes = model.agents_by_type[SME]
    assert len(smes) == model.smes.size
    assert model.recorder.timeseries()["exits"].sum() > 0  # rows were compacted
    ids = np.array(smes.get("firm_id"))
    assert set(ids.tolist()) == set(model.smes.firm_id.tolist())
    # each row's agent moved with its row, and rows vacated by exits hold no agent
    assert [agent.firm_id for agent in model.smes.agent] == model.smes.firm_id.tolist()
    assert all(agent is None for agent in model.smes._buffers["agent"][model.smes.size:])
    exited = int(model.exits()["firm_id"].iloc[0])
    with pytest.raises(LookupError):
        model.sme_agent(exited)
    assert len(model.agents) == model.smes.size + model.banks.size + model.guarantors.size + 2
    assert len(model.agents_by_type[Bank]) == model.banks.size
    assert len(model.agents_by_type[Guarantor]) == model.guarantors.size
    assert len(model.agents_by_type[Government]) == 1 and len(model.agents_by_type[CentralBank]) == 1


def test_agentset_queries_match_arrays():
    model = SMEEconomy(n_smes=1_500, rng=4)
    model.run(12)
    smes = model.agents_by_type[SME]
    assert np.isclose(smes.agg("debt", sum), model.smes.debt.sum(), rtol=1e-12)
    micro = smes.select(lambda a: a.size_class == 0)
    assert len(micro) == int((model.smes.size_class == 0).sum())
    by_sector = smes.groupby("sector_name").agg("employment", sum)
    for index, name in enumerate(model.sector_names):
        assert np.isclose(by_sector[name], model.smes.employment[model.smes.sector == index].sum())


def test_agent_writes_go_to_its_row():
    model = SMEEconomy(n_smes=100, rng=1)
    firm_id = int(model.smes.firm_id[10])
    agent = model.sme_agent(firm_id)
    agent.capital = 123.0
    assert model.smes.capital[model.smes.row_of(firm_id)] == 123.0


def test_arrays_only_mode_has_no_sme_agents_and_same_results():
    with_agents = SMEEconomy(n_smes=1_000, rng=9)
    arrays_only = SMEEconomy(n_smes=1_000, rng=9, simulation__mesa_agents=False)
    with_agents.run(12)
    arrays_only.run(12)
    assert len(arrays_only.agents_by_type.get(SME, [])) == 0
    with pytest.raises(LookupError):
        arrays_only.sme_agent(int(arrays_only.smes.firm_id[0]))
    assert with_agents.timeseries().equals(arrays_only.timeseries())


def test_registry_compaction_keeps_agents_order_and_results(monkeypatch):
    import sme_abm.model as model_module

    reference = SMEEconomy(n_smes=1_500, rng=5)
    reference.run(24)
    monkeypatch.setattr(model_module, "REGISTRY_COMPACTION_CHURN", 0.005)  # compact almost every month
    compacted = SMEEconomy(n_smes=1_500, rng=5)
    compactions = []
    original = compacted._compact_registry
    monkeypatch.setattr(compacted, "_compact_registry", lambda: (compactions.append(1), original()))
    compacted.run(24)
    assert len(compactions) >= 12
    assert compacted.timeseries().equals(reference.timeseries())
    smes = compacted.agents_by_type[SME]
    assert len(smes) == compacted.smes.size == len(compacted.agents) - compacted.banks.size - compacted.guarantors.size - 2
    assert smes.get("firm_id") == reference.agents_by_type[SME].get("firm_id")  # same agents, same order
    gone = compacted.smes.agent[0]
    compacted.remove_smes(np.arange(compacted.smes.size) == 0)  # removal still works on the rebuilt tables
    assert gone not in compacted.agents and gone not in compacted.agents_by_type[SME]


def test_sme_agents_created_in_one_pass_are_what_mesa_would_create(monkeypatch):
    """The batched registration (:meth:`SMEEconomy._create_sme_agents`) leaves every agent,
    unique id and registry table as creating the agents one by one through Mesa does."""

    def one_by_one(model, firm_ids):
        return [SME(model, firm_id) for firm_id in firm_ids]

    def state(model):
        agents = list(model.agents)
        smes = [sorted((k, v) for k, v in vars(a).items() if k != "model") for a in model.agents_by_type[SME]]
        return ([(type(a).__name__, a.unique_id) for a in agents], smes, list(model.agents_by_type),
                all(a.model is model for a in agents))

    batched = SMEEconomy(n_smes=300, rng=2)
    batched.run(6)
    monkeypatch.setattr(SMEEconomy, "_create_sme_agents", one_by_one)
    reference = SMEEconomy(n_smes=300, rng=2)
    reference.run(6)
    assert state(batched) == state(reference)
    assert batched.timeseries()["entries"].sum() > 0
    # agents whose last reference goes leave the registry through its weak references, as Mesa's do
    agent = batched.sme_agent(int(batched.smes.firm_id[0]))
    assert agent in batched.agents_by_type[SME]


def test_agents_made_one_by_one_when_mesa_sets_other_attributes(monkeypatch):
    """If an SME made by SME(...) carries attributes the one-pass creation would not
    set (another Mesa version, a subclass), every entrant is made by SME(...)."""
    original = SME.__init__

    def with_extra(self, model, firm_id):
        original(self, model, firm_id)
        self.extra = firm_id

    monkeypatch.setattr(SME, "__init__", with_extra)
    model = SMEEconomy(n_smes=500, rng=2)
    model.run(6)
    assert model.timeseries()["entries"].sum() > 0
    assert all(agent.extra == agent.firm_id for agent in model.smes.agent)
