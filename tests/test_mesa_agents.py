"""SMEs are Mesa agents that read their own rows of the population arrays."""

from __future__ import annotations

import weakref

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


def test_only_entrants_that_start_become_agents(monkeypatch):
    """A start-up its owners cannot fund is called off before it trades and never becomes a
    Mesa agent: the agents made are the set-up's firms and the entrants that started, and
    every live row has its own agent."""
    made = []
    real = SMEEconomy._create_sme_agents
    monkeypatch.setattr(SMEEconomy, "_create_sme_agents",
                        lambda self, firm_ids: made.extend(firm_ids) or real(self, firm_ids))
    model = SMEEconomy(n_smes=2_000, rng=3, simulation__burn_in_months=0,
                       economy__entrant_owner_wealth=0.75, economy__entrant_owner_wealth_dispersion=0.0)
    model.run(24)
    ts = model.timeseries()
    assert ts["entries_unfunded"].sum() > 10 and ts["entries"].sum() > 10
    assert len(made) == len(set(made)) == 2_000 + ts["entries"].sum()
    assert [agent.firm_id for agent in model.smes.agent] == model.smes.firm_id.tolist()
    assert len(model.agents_by_type[SME]) == model.smes.size


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
    import sme_abm.mesa_registry as mesa_registry

    reference = SMEEconomy(n_smes=1_500, rng=5)
    reference.run(24)
    if reference.sme_registry.name != "mesa-3.3":
        pytest.skip("compaction belongs to Mesa 3.3's batched registry")
    monkeypatch.setattr(mesa_registry, "REGISTRY_COMPACTION_CHURN", 0.005)  # compact almost every month
    compactions = []
    original = mesa_registry.Mesa33Registry.compact
    monkeypatch.setattr(mesa_registry.Mesa33Registry, "compact", lambda self: (compactions.append(1), original(self)))
    compacted = SMEEconomy(n_smes=1_500, rng=5)
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
        smes = [sorted((k, v) for k, v in vars(a).items() if k not in ("model", "_model_ref")) for a in model.agents_by_type[SME]]
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


def _plain(value):
    """Attribute values made comparable with ``==`` (arrays, such as the government's queue of
    support cases, as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value.tolist() if isinstance(value, np.ndarray) else value


def _registry_state(model):
    """Every agent's type, id and attributes, and the SME AgentSet's contents, in order."""
    agents = [(type(a).__name__, a.unique_id,
               sorted((k, _plain(v)) for k, v in vars(a).items()
                      if k not in ("model", "_model_ref", "_store")))  # references to the model's books
              for a in model.agents]
    smes = [(a.unique_id, a.firm_id) for a in model.agents_by_type[SME]]
    return agents, smes, list(model.agents_by_type)


def test_fast_and_public_registry_paths_give_identical_agents_and_outputs(monkeypatch):
    """Whatever path the Mesa installed here allows (Mesa 3.3's batched one, or the public
    calls), forcing Mesa's public ``SME(...)`` / ``agent.remove()`` gives the same agents,
    the same ``agents_by_type[SME]`` and the same outputs."""
    fast = SMEEconomy(n_smes=800, rng=6)
    fast.run(18)
    monkeypatch.setattr(SMEEconomy, "fast_mesa_registry", False)
    public = SMEEconomy(n_smes=800, rng=6)
    public.run(18)
    assert public.sme_registry.name == "public"
    assert fast.timeseries()["exits"].sum() > 0 and fast.timeseries()["entries"].sum() > 0
    assert _registry_state(fast) == _registry_state(public)
    assert fast.timeseries().equals(public.timeseries())
    assert fast.exits().equals(public.exits())


def test_registry_path_follows_the_installed_mesa():
    """Mesa 3.3's layout takes the batched path; any other Mesa (3.4 and later keep
    agents in hard-keyed sets and count ids on the model) takes Mesa's public calls."""
    import mesa

    model = SMEEconomy(n_smes=50, rng=1)
    major_minor = tuple(int(part) for part in mesa.__version__.split(".")[:2])
    assert model.sme_registry.name == ("mesa-3.3" if major_minor == (3, 3) else "public")


def test_no_deprecated_mesa_api(recwarn):
    """A short model, its agent queries and a batch run raise none of Mesa's
    DeprecationWarnings or FutureWarnings (``seed=``, AgentSet indexing, old schedulers).
    Warnings raised inside Mesa, or attributed by Mesa to our calls, count; other
    libraries' are not ours to fix here."""
    import warnings
    from pathlib import Path

    import mesa

    roots = (str(Path(mesa.__file__).parent), str(Path(__file__).parents[1] / "sme_abm"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SMEEconomy(n_smes=300, rng=2)
        model.run(6)
        smes = model.agents_by_type[SME]
        smes.select(lambda a: a.size_class == 0).agg("employment", sum)
        list(smes)[:3]  # not smes[:3]: AgentSet indexing is deprecated from Mesa 3.4
        model.agents.groupby(type).count()
    ours = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))
            and str(w.filename).startswith(roots)]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


def test_stackcheck_compares_bit_for_bit(tmp_path):
    """``make test-latest`` compares the pinned and newest stacks with this: identical
    runs agree, and one last-bit difference in one column is found and named."""
    from sme_abm import stackcheck

    frame = SMEEconomy(n_smes=200, rng=1).run(3).timeseries()
    assert stackcheck.compare(frame, frame.copy()) == []
    nudged = frame.copy()
    nudged.loc[2, "tax_revenue"] = np.nextafter(nudged.loc[2, "tax_revenue"], np.inf)
    assert stackcheck.compare(frame, nudged) == ["tax_revenue: differs"]
    assert stackcheck.compare(frame, frame.iloc[:2]) != []


def test_a_dropped_model_is_freed_with_its_agents() -> None:
    """A model nobody refers to is freed (issue 19 item 1: a dashboard server kept every closed
    session's model, about 6 MB at 10,000 SMEs). Two references kept it: the agents' object
    column, which the garbage collector cannot look into, held agents that held their model
    (now a weak reference), and Mesa 3.3's class-level ``Agent._ids`` keyed by the model
    (now weakly keyed)."""
    import gc
    import weakref

    import mesa

    from sme_abm import SMEEconomy

    gc.collect()
    before = len(getattr(mesa.Agent, "_ids", ()))
    model = SMEEconomy(n_smes=200, rng=3)
    model.step()
    agent = next(iter(model.agents_by_type[SME]))
    assert agent.model is model and agent.unique_id >= 1
    alive = weakref.ref(model)
    del model, agent
    gc.collect()
    assert alive() is None, "the model outlived every reference to it"
    assert len(getattr(mesa.Agent, "_ids", ())) == before


def test_an_agent_that_dies_leaves_both_agent_sets() -> None:
    """The batched registry keeps one weak reference per agent for both of Mesa 3.3's weak
    tables (the SME AgentSet and the all-agents one); an agent whose last strong reference
    goes still leaves both, as with Mesa's reference per table, and the model keeps stepping."""
    import gc

    model = SMEEconomy(n_smes=300, rng=4)
    model.run(2)
    if model.sme_registry.name != "mesa-3.3":
        pytest.skip("the shared reference belongs to Mesa 3.3's batched registry")
    smes, everyone = model.agents_by_type[SME], model.agents
    agent = model.smes.agent[-1]  # made by the batched path (the first SME is made by SME(...))
    assert weakref.getweakrefcount(agent) == 1
    n_smes, n_all = len(smes), len(everyone)
    del getattr(model, "_agents")[agent]  # drop the model's strong references, not through Mesa
    model.smes.agent[-1] = None
    del agent
    gc.collect()
    assert (len(smes), len(everyone)) == (n_smes - 1, n_all - 1)
    assert None not in list(smes) and None not in list(everyone)
