"""What a principal may do with an episode: list it, watch it, manage it.

- *manage* (details for its owner, timeline, delete, re-run, share links): the owner
  and admins. An episode without an owner (from before owners were recorded) is the
  admins' alone.
- *watch* (play it, its transcript, captions, archive, reporting viewer stats):
  anyone for ``public`` and ``unlisted`` episodes, who hold the link; for ``private``
  ones only those who may manage it, or a valid share link.
- *list*: without a key, ``public`` episodes; with one, the episodes it may manage.

Whoever may not watch an episode is told it does not exist (404), never 403: its
existence does not leak. In open mode the one principal is an admin: everything works.
"""
from __future__ import annotations

from server.access import Principal
from server.episodes.episode import Episode


def can_manage(principal: Principal | None, episode: Episode) -> bool:
    if principal is None:
        return False
    return principal.admin or (episode.owner is not None and episode.owner == principal.name)


def can_watch(principal: Principal | None, episode: Episode, shared: bool = False) -> bool:
    """``shared``: the request carries a valid share link of this episode."""
    return episode.visibility != "private" or shared or can_manage(principal, episode)


def listed(principal: Principal | None, episode: Episode) -> bool:
    if principal is None:
        return episode.visibility == "public"
    return can_manage(principal, episode)
