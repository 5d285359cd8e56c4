"""The episode runtime: ``plan/`` (tiers and profiles), ``stages/`` (script -> speech -> video) and ``playout/``.

``config.py`` holds the workflow and deployment files, ``segments.py`` the data that
flows between stages, ``spans.py`` the timeline every task records on.
"""
