"""The offline GPU fleet planner (``streamwise plan``): the paper's profiles, a simulator and a MILP."""
