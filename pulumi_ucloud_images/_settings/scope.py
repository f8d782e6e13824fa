"""The region and project a lookup runs in, decided in one place for every face.

The rule: a query's own ``region`` and ``project_id`` beat the settings'. :func:`settings_for` resolves the
settings for a query with that rule (so a missing region or key is said with every place looked at), and
:func:`lookup_scope` reads the scope of a lookup from a query and its settings (settings a caller resolved,
or built, alike), raising the one missing-region error when neither names a region.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._query import ImageQuery
from .settings import Settings, missing_region, resolve_settings

__all__ = ["Scope", "lookup_scope", "region_of", "settings_for"]


class Scope(NamedTuple):
    region: str
    project_id: str | None


def settings_for(query: ImageQuery, *, require_region: bool = True, **sources: Any) -> Settings:
    """The settings a lookup of ``query`` runs with. ``sources`` are :func:`resolve_settings`'s keywords; a
    ``region`` or ``project_id`` among them (such as an emulator's demo region) only backs the query's up."""
    backup_region, backup_project = sources.pop("region", None), sources.pop("project_id", None)
    region, project_id = region_of(query, backup_region), query.project_id or backup_project
    return resolve_settings(**sources, region=region, project_id=project_id, require_region=require_region)


def region_of(query: ImageQuery, configured: str | None) -> str | None:
    """The region a lookup of ``query`` runs in when the settings name ``configured`` (both may be unset)."""
    return query.region or configured


def lookup_scope(query: ImageQuery, settings: Settings) -> Scope:
    """The region and project a lookup of ``query`` with ``settings`` runs in."""
    region = region_of(query, settings.region)
    if region is None:
        raise missing_region(settings.region_looked_at)
    return Scope(region, query.project_id or settings.project_id)
