"""Helpers shared by tests: an API wrapper and token makers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from litestar.testing import TestClient

from engagement.settings import Settings


def user_token(settings: Settings, user_id: int, *, expires_in: float = 3600,
               secret: str | None = None, **claims: Any) -> str:
    payload = {"sub": str(user_id), "exp": int(time.time() + expires_in), **claims}
    return jwt.encode(payload, secret or settings.jwt_secret, algorithm="HS256")


class Api:
    """Thin wrapper over the test client speaking the contract's paths."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.internal = {"Authorization": f"Bearer {settings.service_token}"}

    def put_project(self, project_id: int, *, owner_id: int = 1, is_private: bool = False,
                    created_at: datetime | None = None) -> Any:
        created = created_at or datetime.now(UTC) - timedelta(days=1)
        return self.client.put(f"/api/v1/internal/projects/{project_id}", headers=self.internal,
                               json={"owner_id": owner_id, "is_private": is_private,
                                     "created_at": created.isoformat()})

    def view(self, project_id: int, source: str | None = None, *, session: str | None = "s1",
             user: int | None = None, headers: dict[str, str] | None = None) -> Any:
        h = dict(headers or {})
        if session is not None:
            h["X-Session-Key"] = session
        if user is not None:
            h["Authorization"] = f"Bearer {user_token(self.settings, user)}"
        body = {"source": source} if source else None
        self.client.cookies.clear()
        return self.client.post(f"/api/v1/projects/{project_id}/track-view/", json=body, headers=h)

    def click(self, project_id: int, source: str = "explore_trending",
              position: int | None = None, *, session: str = "s1",
              user: int | None = None) -> Any:
        h = {"X-Session-Key": session}
        if user is not None:
            h["Authorization"] = f"Bearer {user_token(self.settings, user)}"
        body: dict[str, Any] = {"project_id": project_id, "source": source}
        if position is not None:
            body["position"] = position
        return self.client.post("/api/v1/projects/track-click/", json=body, headers=h)

    def like(self, project_id: int, user_id: int, action: str = "like") -> Any:
        return self.client.post("/api/v1/internal/likes/", headers=self.internal,
                                json={"project_id": project_id, "user_id": user_id,
                                      "action": action})

    def import_events(self, **kinds: list[dict[str, Any]]) -> Any:
        return self.client.post("/api/v1/internal/events/import", headers=self.internal,
                                json=kinds)


def run_retention(db: Any, settings: Settings, profile: str) -> None:
    """Raw retention as the profile runs it with `settings`' raw_retention_days: the
    retention job, or on timescale the TimescaleDB retention policies `engagement migrate`
    sets from the settings, each run once with CALL run_job (not waiting for the workers)."""
    from engagement.db.migrations import migrate
    from scheduler.jobs import JobContext, run_job

    if profile != "timescale":
        run_job("retention", JobContext(settings, profile))
        return
    migrate(settings)
    jobs = db.execute("SELECT job_id FROM timescaledb_information.jobs "
                      "WHERE proc_name = 'policy_retention'").fetchall()
    assert len(jobs) == 4
    for (job_id,) in jobs:
        db.execute("CALL run_job(%s)", (job_id,))


@contextmanager
def serving(settings: Settings, project_id: int = 1) -> Iterator[Api]:
    """An app of its own for these settings, with one project registered."""
    from service.app import create_app

    with TestClient(create_app(settings)) as client:
        api = Api(client, settings)
        api.put_project(project_id)
        yield api
