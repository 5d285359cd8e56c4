"""Episode records in SQLite, next to the media directory: what survives a restart.

Each episode is one row: its request, status and figures, transcript and timeline
as JSON. Writes are single transactions (SQLite's atomic commit, WAL journal), so
a crash leaves either the old row or the new one, never half of each.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS episodes (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL
)
"""
#: Who did what to which episode; rows outlive the episode they name (a deletion is kept).
AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    at REAL NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    episode TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
)
"""


class StoreError(RuntimeError):
    """The episode database cannot be read or written; the message says which file and why."""


class EpisodeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._db.execute(AUDIT_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the episode database: {exc}") from exc
        self._lock = threading.Lock()

    def save(self, episode_id: str, created_at: float, status: str, record: dict[str, Any]) -> None:
        data = json.dumps(record, separators=(",", ":"), allow_nan=False, default=str)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO episodes (id, created_at, status, record) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET status = excluded.status, record = excluded.record",
                    (episode_id, created_at, status, data),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot save episode {episode_id}: {exc}") from exc

    def load_all(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT record FROM episodes ORDER BY created_at").fetchall()
        records = []
        for (data,) in rows:
            try:
                records.append(json.loads(data))
            except json.JSONDecodeError:
                continue  # a damaged row is skipped, never fatal: the others still load
        return records

    def delete(self, episode_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM episodes WHERE id = ?", (episode_id,))

    def audit(self, at: float, principal: str, action: str, episode_id: str, detail: str = "") -> None:
        """Record an action by its principal's name (never a key's secret)."""
        try:
            with self._lock:
                self._db.execute("INSERT INTO audit (at, principal, action, episode, detail) VALUES (?, ?, ?, ?, ?)",
                                 (at, principal, action, episode_id, detail))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot record {action} of episode {episode_id}: {exc}") from exc

    def audit_of(self, episode_id: str) -> list[dict[str, Any]]:
        """The episode's audit trail, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT at, principal, action, detail FROM audit WHERE episode = ? ORDER BY rowid",
                                    (episode_id,)).fetchall()
        return [{"at": at, "principal": who, "action": action, "detail": detail} for at, who, action, detail in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
