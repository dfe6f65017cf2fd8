"""A Solara dashboard for sme-abm: levers, live charts, comparison, results, export.

Start it with ``sme-abm dashboard`` (see ``docs/dashboard.md``). The page is in
:mod:`sme_abm.dashboard.app`; the logic without UI is in
:mod:`sme_abm.dashboard.session` and :mod:`sme_abm.dashboard.results`.
"""
