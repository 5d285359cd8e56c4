"""The offline GPU fleet planner (``streamwise plan``): the paper's profiles, a simulator and a search.

Modules, from inputs to the command (each imports only modules listed above it):

* ``paper_profiles``: stage latency/power profiles (the paper's CSVs or a local YAML).
* ``simulator``: the discrete-event simulator and the allocation accounting it bills by.
* ``calibration``: the paper's sequential formulas against its published rows.
* ``chains``: option menus along one chunk's chain of stages; the fastest first chunk.
* ``covering``: the covering proxy (replica counts as a linear problem), MILP and greedy.
* ``local_search``: simulation-driven repair, trimming and hill-climbing.
* ``plan_result``: :class:`~fleet.plan_result.Plan`, what every search returns.
* ``burst``, ``startup_pool``: the two plan families beside the covering proxy's.
* ``planner``: :func:`~fleet.planner.plan`, the search over all of them.
* ``report``: the ``streamwise plan`` options, run and printed report.
"""
