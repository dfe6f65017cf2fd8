"""Saved states: a model's whole state written to a folder of Parquet and JSON files,
and read back to continue bit for bit.

A state folder holds::

    state.json        format, package version, config (and the hash of its structural
                      part), the month, Mesa's step count, both random generators'
                      states, and every scalar, small array and dict of the model, the
                      government, the central bank and the ledger's balances
    smes.parquet      the SME columns, one row per live firm, in row order
    firm_index.parquet  firm id -> row (all ids ever issued)
    banks.parquet, guarantors.parquet   their books
    timeseries.parquet, exits.parquet, firm_panel.parquet   what the run has recorded

Never pickle: every value is a number, a string, a list or a table. A value of a
type this module does not know stops the save with a ``TypeError`` naming it, so
state added to the model later cannot be left out silently.

A state can be loaded under another config only if the *structural* part agrees
(everything but the levers, the shocks, the name and description, and the run's
length, seed, panel interval, agent mode and accounting switch): a warm start
changes the policy, not the economy. Otherwise, or if the package version differs,
loading raises :class:`~sme_abm.errors.ConfigError` (one line; exit 2 on the CLI).
"""

from __future__ import annotations

import json
import math
import shutil
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .atomic import staged_folder
from .config import as_saved, config_digest, validate_config
from .errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from .model import SMEEconomy

FORMAT = 1
#: Config parts a warm start may change.
POLICY_KEYS = ("levers", "shocks", "name", "description")
RUN_KEYS = ("steps", "seed", "panel_every", "mesa_agents", "check_accounting", "n_smes", "burn_in_months")
#: Model attributes that are not state (objects rebuilt from the config, Mesa's own
#: bookkeeping, the books saved as tables, per-step scratch).
NOT_STATE = {
    "config", "rng", "random", "registry", "ledger", "policy", "recorder", "smes", "banks", "guarantors",
    "central_bank", "government", "datacollector", "sme_registry", "step", "running", "steps",
    "step_stats", "materials_share", "normal_markup", "revenue_per_worker", "capital_output_ratio", "can_be_shut_down",
    "use_mesa_agents", "sector_names", "vat_levy_standard", "month_invoices", "month_desired_investment",
    # set afresh at the start of every step (shocks.apply_shocks) before anything reads it; saved,
    # it was a per-SME list in state.json whose parsing took 250 B per SME at the load's peak
    "shock_factor", "month_inter_sme_sales",
}
#: Mesa agents made at once when a state is loaded.
AGENT_BATCH = 1 << 16
AGENT_NOT_STATE = {"model", "unique_id", "pos", "fiscal_cost"}


@lru_cache(maxsize=1)
def _mesa_attributes() -> frozenset[str]:
    """What ``mesa.Model`` itself keeps on a model (Mesa 3.5 adds ``time``, ``scenario``,
    ``data_registry``, ``agent_id_counter``...): Mesa's bookkeeping, not the economy's.
    Mesa's step count is restored; its clock (``time``, Mesa 3.4+) starts again at 0."""
    import mesa

    return frozenset(vars(mesa.Model(rng=0)))


def structural_hash(config: Any) -> str:
    """Hash of the parts of a config a saved state depends on."""
    data = config.to_dict()
    for key in POLICY_KEYS:
        data.pop(key, None)
    for key in RUN_KEYS:
        data.get("simulation", {}).pop(key, None)
    return config_digest(data)


# -- values to JSON and back -------------------------------------------------------
def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return {"int": int(value)}
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return {"float": number if math.isfinite(number) else repr(number)}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot save {where}: an object array")
        return {"array": [_encode(v, where) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, dict):
        kind = "defaultdict" if isinstance(value, defaultdict) else "dict"
        if any(not isinstance(k, str) for k in value):
            raise TypeError(f"cannot save {where}: a dict with keys that are not text")
        return {kind: {k: _encode(v, f"{where}.{k}") for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(v, where) for v in value]}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} are not known to sme_abm.state")


def _decode(data: Any) -> Any:
    if data is None or isinstance(data, (bool, str)):
        return data
    if "dtype" in data:  # an array: {"array": [...], "dtype": "<f8"}
        return np.array([_decode(v) for v in data["array"]], dtype=np.dtype(data["dtype"]))
    (kind, payload), = data.items()  # every other value is tagged by its one key
    if kind == "int":
        return int(payload)
    if kind == "float":
        return float(payload)
    if kind == "dict":
        return {k: _decode(v) for k, v in payload.items()}
    if kind == "defaultdict":
        return defaultdict(float, {k: _decode(v) for k, v in payload.items()})
    if kind == "list":
        return [_decode(v) for v in payload]
    raise ValueError(f"unknown value kind {kind!r}")


def _attributes(obj: Any, skip: set[str], where: str) -> dict[str, Any]:
    return {k: _encode(v, f"{where}.{k}") for k, v in vars(obj).items()
            if k not in skip and not k.startswith("_")}


def _book_table(book: Any) -> pd.DataFrame:
    return pd.DataFrame({name: book.column(name).copy() for name in book.schema})


# -- save ------------------------------------------------------------------------
def save_state(model: "SMEEconomy", path: str | Path) -> Path:
    """Write ``model``'s whole state to the folder ``path`` (which must not exist yet,
    or be empty). Written to a temporary folder first, so a failed save leaves nothing."""
    from . import __version__

    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError("--save-state", str(target), "already exists and is not an empty folder")
    recorder = model.recorder
    header = {
        "format": FORMAT,
        "package_version": __version__,
        "config_hash": model.config.digest(),
        "structural_hash": structural_hash(model.config),
        "config": model.config.to_dict(),
        "month": model.month,
        "steps": int(model.steps),
        "rng": model.rng.bit_generator.state,
        "random": _encode(list(model.random.getstate()), "model.random"),
        "model": _attributes(model, NOT_STATE | _mesa_attributes(), "model"),
        "government": _attributes(model.government, AGENT_NOT_STATE, "government"),
        "central_bank": _attributes(model.central_bank, AGENT_NOT_STATE, "central_bank"),
        "ledger_balances": _encode(dict(model.ledger.balances), "ledger.balances"),
        "sme_next_id": int(model.smes.next_id),
        # the rules in force before month 0, from which the policy's changes phase in
        "policy_prior": model.policy.prior,
    }
    with staged_folder(target) as staging:
        _book_table(model.smes).to_parquet(staging / "smes.parquet", index=False)
        pd.DataFrame({"row": model.smes.row_of_id[: model.smes.next_id]}).to_parquet(
            staging / "firm_index.parquet", index=False)
        _book_table(model.banks).to_parquet(staging / "banks.parquet", index=False)
        _book_table(model.guarantors).to_parquet(staging / "guarantors.parquet", index=False)
        pd.DataFrame(recorder.rows).to_parquet(staging / "timeseries.parquet", index=False)
        exits = {name: np.concatenate([part[name] for part in recorder.exit_rows]) for name in recorder.exit_rows[0]} \
            if recorder.exit_rows else {}
        pd.DataFrame(exits).to_parquet(staging / "exits.parquet", index=False)
        if recorder.panel_file is None:
            model.firm_panel().to_parquet(staging / "firm_panel.parquet", index=False)
        elif recorder._panel_writer is None and recorder.panel_file.exists():  # a finished, streamed panel
            shutil.copyfile(recorder.panel_file, staging / "firm_panel.parquet")
        else:
            raise ValueError("cannot save a state while the firm panel is still streaming to a file")
        (staging / "state.json").write_text(json.dumps(header, indent=1, allow_nan=False))
    return target


# -- load ------------------------------------------------------------------------
def read_header(path: str | Path) -> dict[str, Any]:
    """The state's ``state.json``; ConfigError (one line) if it is not a state folder."""
    folder = Path(path)
    try:
        header = json.loads((folder / "state.json").read_text())
    except FileNotFoundError:
        raise ConfigError(str(folder), "--from-state", "is not a saved state (no state.json)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(str(folder), "--from-state", f"state.json cannot be read ({type(error).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ConfigError(str(folder), "--from-state", f"not a state of format {FORMAT}")
    return header


def check_compatible(header: dict[str, Any], config: Any, path: str | Path) -> None:
    from . import __version__

    if header.get("package_version") != __version__:
        raise ConfigError(str(path), "package_version",
                          f"state saved by sme-abm {header.get('package_version')}, this is {__version__}")
    if saved_structural_hash(header) != structural_hash(config):
        raise ConfigError(str(path), "config", "the state was saved under another economy "
                          "(only levers, shocks, name, description and simulation run settings may differ)")


def saved_structural_hash(header: dict[str, Any]) -> str | None:
    """The structural hash of the economy a state was saved under, as this version reads it.

    The state carries its whole config, every key with the value it had. Read by this version,
    a key added since takes its default, or its value before it existed if its default changed
    since (:func:`sme_abm.config.as_saved`), and a new option is off by default with outputs bit for
    bit unchanged (the CHANGELOG's rule), so the state describes the same economy it did; its
    hash as saved would refuse it only because the config has one more key. A key whose default
    changed is still caught: the saved config states the old value. A saved config this version
    cannot read (a key since removed, a value now out of range) falls back to the saved hash,
    which then refuses the state."""
    saved = header.get("config")
    if isinstance(saved, dict):
        try:
            return structural_hash(validate_config(as_saved(saved), "state.json"))
        except ConfigError:
            pass
    return header.get("structural_hash")


def _release_read_buffers() -> None:
    """Give the memory the Parquet reads used back before the Mesa agents are made: Arrow's
    allocator keeps freed pages for reuse (66 B per SME of a 200,000-SME state), and so does
    the C heap (:func:`sme_abm.heap.release_free_heap`)."""
    import pyarrow as pa

    from .heap import release_free_heap

    pa.default_memory_pool().release_unused()
    release_free_heap()


def restore_state(model: "SMEEconomy", path: str | Path, header: dict[str, Any]) -> None:
    """Fill a freshly built, empty ``model`` (made with ``state=``) from a state folder."""
    import pyarrow.parquet as pq

    from .agents.bank import Bank
    from .agents.guarantor import Guarantor

    folder = Path(path)
    try:
        # the SMEs are read column by column into the model's own buffers below, so a large
        # state never sits in memory twice (a whole table and its copy took 1.8 KB per SME)
        smes = pq.ParquetFile(folder / "smes.parquet")
        index = pd.read_parquet(folder / "firm_index.parquet")["row"].to_numpy()
        banks = pd.read_parquet(folder / "banks.parquet")
        guarantors = pd.read_parquet(folder / "guarantors.parquet")
        timeseries = pd.read_parquet(folder / "timeseries.parquet")
        exits = pd.read_parquet(folder / "exits.parquet")
        panel = pd.read_parquet(folder / "firm_panel.parquet")
    except (OSError, ValueError) as error:
        raise ConfigError(str(folder), "--from-state", f"a state table cannot be read ({type(error).__name__})") from None

    population = model.smes
    count = smes.metadata.num_rows
    population.append({}, count)
    try:
        for name in population.schema:
            setattr(population, name, smes.read(columns=[name]).column(0).to_numpy())
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(str(folder), "--from-state", f"a state table cannot be read ({type(error).__name__})") from None
    del smes
    _release_read_buffers()
    population.next_id = int(header["sme_next_id"])
    population.row_of_id = np.full(max(population.next_id, 1), -1, dtype=np.int32)
    population.row_of_id[: index.size] = index
    if model.use_mesa_agents and count:
        # in slices, so that the lists and tables a batch of agents needs on its way into Mesa's
        # registry stay small next to the registry itself
        for start in range(0, count, AGENT_BATCH):
            stop = min(start + AGENT_BATCH, count)
            population.agent[start:stop] = model.sme_registry.create(population.firm_id[start:stop].tolist())
    for book, table, agent_class in ((model.banks, banks, Bank), (model.guarantors, guarantors, Guarantor)):
        # a column added since the state was saved starts at zero, its value in every
        # economy that could have saved it (the state's config is checked above)
        book.append({name: table[name].to_numpy() for name in book.schema if name in table}, len(table))
        for row in range(book.size):
            agent_class(model, row)

    for name, value in header["model"].items():
        setattr(model, name, _decode(value))
    for name, value in header["government"].items():
        setattr(model.government, name, _decode(value))
    for name, value in header["central_bank"].items():
        setattr(model.central_bank, name, _decode(value))
    model.ledger.balances.update(_decode(header["ledger_balances"]))
    model.month = int(header["month"])
    model.steps = int(header["steps"])
    model.policy.prior = header.get("policy_prior")
    model.rng.bit_generator.state = header["rng"]
    random_state = _decode(header["random"])
    model.random.setstate((random_state[0], tuple(random_state[1]), random_state[2]))

    recorder = model.recorder
    recorder.rows = timeseries.to_dict("records")
    if len(exits):
        recorder.exit_rows = [{name: exits[name].to_numpy() for name in exits.columns}]
    if len(panel):
        recorder.panel = [panel]
    model.ledger.open_step()
