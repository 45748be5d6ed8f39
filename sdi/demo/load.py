"""Load the demo into the registry through the normal ingestion path.

Idempotent: agencies, users and layers that exist are left alone, a layer gets
only the demo versions it lacks, and a layer is published only when this run
ingested into it or it was never published. A second run does nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import Connection

from sdi.demo.generate import demo_counts, generate_files
from sdi.errors import NotFoundError
from sdi.ingest import ingest_file
from sdi.registry import (
    Agency,
    LayerInput,
    User,
    create_agency,
    create_layer,
    create_user,
    get_agency,
    get_layer,
    get_licence,
    get_user_by_email,
    latest_version_number,
    publish,
)
from sdi.settings import Settings

__all__ = [
    "DEMO_AGENCIES",
    "DEMO_LAYERS",
    "DEMO_PASSWORD",
    "DEMO_PASSWORD_ENV",
    "DEMO_USERS",
    "DemoAgency",
    "DemoLayer",
    "DemoSummary",
    "DemoUser",
    "IngestedVersion",
    "demo_password",
    "load_demo",
]

LOGGER = logging.getLogger(__name__)

#: Password of every demo user unless ``SDI_DEMO_PASSWORD`` is set. Demo only:
#: it is public, so never load the demo into a server others can reach.
DEMO_PASSWORD = "sdi-demo-only"  # noqa: S105 (public on purpose, documented)
DEMO_PASSWORD_ENV = "SDI_DEMO_PASSWORD"  # noqa: S105 (a variable name)
_ACTOR = "demo"


@dataclass(frozen=True)
class DemoAgency:
    """A department of the demo."""

    code: str
    name_en: str
    name_zh: str
    contact_email: str


@dataclass(frozen=True)
class DemoUser:
    """A demo account; ``agency`` is None for the platform admin."""

    email: str
    role: str
    agency: str | None
    name: str


@dataclass(frozen=True)
class DemoLayer:
    """A demo layer: its registration and its files, one per version."""

    slug: str
    agency: str
    licence: str
    title_en: str
    title_zh: str
    abstract_en: str
    abstract_zh: str
    keywords: tuple[str, ...]
    theme: str
    key_column: str
    update_frequency: str
    files: tuple[str, ...]  # keys of generate_files(), version 1 first


DEMO_AGENCIES: tuple[DemoAgency, ...] = (
    DemoAgency("landsd", "Lands Department", "地政總署", "landsd-demo@example.com"),
    DemoAgency("td", "Transport Department", "運輸署", "td-demo@example.com"),
)

DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin@example.com", "platform_admin", None, "Demo platform admin"),
    DemoUser("landsd.admin@example.com", "agency_admin", "landsd", "LandsD demo admin"),
    DemoUser(
        "landsd.editor@example.com", "agency_editor", "landsd", "LandsD demo editor"
    ),
    DemoUser("td.admin@example.com", "agency_admin", "td", "TD demo admin"),
    DemoUser("td.editor@example.com", "agency_editor", "td", "TD demo editor"),
)

_NOT_REAL_EN = " Generated demonstration data, not real."
_NOT_REAL_ZH = "此為示範用的生成數據，並非真實資料。"

DEMO_LAYERS: tuple[DemoLayer, ...] = (
    DemoLayer(
        slug="landsd_buildings",
        agency="landsd",
        licence="hk-csdi",
        title_en="Buildings",
        title_zh="建築物",
        abstract_en="Building footprints with names, storeys, height and year built."
        + _NOT_REAL_EN,
        abstract_zh="建築物輪廓，附名稱、樓層數目、高度及落成年份。" + _NOT_REAL_ZH,
        keywords=("building", "footprint", "建築物"),
        theme="Buildings",
        key_column="BUILDINGID",
        update_frequency="monthly",
        files=("landsd_buildings_v1", "landsd_buildings_v2"),
    ),
    DemoLayer(
        slug="td_bus_stops",
        agency="td",
        licence="hk-datagovhk",
        title_en="Bus stops",
        title_zh="巴士站",
        abstract_en="Franchised bus stops with the routes serving them." + _NOT_REAL_EN,
        abstract_zh="專營巴士站及途經路線。" + _NOT_REAL_ZH,
        keywords=("transport", "bus", "巴士"),
        theme="Transport",
        key_column="STOP_ID",
        update_frequency="weekly",
        files=("td_bus_stops_v1",),
    ),
    DemoLayer(
        slug="td_roads",
        agency="td",
        licence="cc-by-4.0",
        title_en="Road centre-lines",
        title_zh="道路中線",
        abstract_en="Road centre-line segments with names and speed limits."
        + _NOT_REAL_EN,
        abstract_zh="道路中線段，附路名及車速限制。" + _NOT_REAL_ZH,
        keywords=("transport", "road", "道路"),
        theme="Transport",
        key_column="ROUTE_ID",
        update_frequency="quarterly",
        files=("td_roads_v1",),
    ),
)


def demo_password(env: Mapping[str, str] | None = None) -> str:
    """``SDI_DEMO_PASSWORD`` if set (``os.environ`` by default), else the default."""
    env = os.environ if env is None else env
    return env.get(DEMO_PASSWORD_ENV) or DEMO_PASSWORD


@dataclass(frozen=True)
class IngestedVersion:
    """A version this run ingested."""

    layer: str
    number: int
    features: int
    diff: dict[str, Any]


@dataclass
class DemoSummary:
    """What :func:`load_demo` did; ``str()`` gives the report ``sdi demo`` prints."""

    agencies_created: list[str] = field(default_factory=list)
    users_created: list[str] = field(default_factory=list)
    layers_created: list[str] = field(default_factory=list)
    ingested: list[IngestedVersion] = field(default_factory=list)
    published: list[tuple[str, int]] = field(default_factory=list)
    #: Where new users' password came from: "default", the variable or "argument".
    credentials: str = "default"

    @property
    def changed(self) -> bool:
        """Whether this run changed anything."""
        return bool(
            self.agencies_created
            or self.users_created
            or self.layers_created
            or self.ingested
            or self.published
        )

    def __str__(self) -> str:
        lines = []
        if not self.changed:
            lines.append("Demo already loaded; nothing to do.")
        if self.agencies_created:
            lines.append("Created agencies: " + ", ".join(self.agencies_created))
        if self.layers_created:
            lines.append("Created layers: " + ", ".join(self.layers_created))
        for v in self.ingested:
            stats = ", ".join(f"{k} {n}" for k, n in v.diff.items())
            lines.append(
                f"Ingested {v.layer} version {v.number}: {v.features:,} features"
                + (f" ({stats})" if stats else "")
            )
        for slug, number in self.published:
            lines.append(f"Published {slug} version {number}")
        lines.append("Demo users (demo only, never on a public server):")
        for user in DEMO_USERS:
            new = " (new)" if user.email in self.users_created else ""
            where = f", {user.agency}" if user.agency else ""
            lines.append(f"  {user.email:28} {user.role}{where}{new}")
        if not self.users_created:
            lines.append(
                "  passwords: as set when the users were created "
                f"(default {DEMO_PASSWORD}, or {DEMO_PASSWORD_ENV})"
            )
        elif self.credentials == "default":
            lines.append(
                f"  password of the new users: {DEMO_PASSWORD} "
                f"(set {DEMO_PASSWORD_ENV} to choose another)"
            )
        elif self.credentials == DEMO_PASSWORD_ENV:
            lines.append(
                f"  password of the new users: the value of {DEMO_PASSWORD_ENV}"
            )
        else:
            lines.append("  password of the new users: as given")
        return "\n".join(lines)


Progress = Callable[[str], None]


def _agency(conn: Connection[Any], spec: DemoAgency, summary: DemoSummary) -> Agency:
    try:
        return get_agency(conn, spec.code)
    except NotFoundError:
        summary.agencies_created.append(spec.code)
        return create_agency(
            conn, spec.code, spec.name_en, spec.name_zh, spec.contact_email,
            actor=_ACTOR,
        )  # fmt: skip


def _user(
    conn: Connection[Any],
    spec: DemoUser,
    agencies: dict[str, Agency],
    password: str,
    summary: DemoSummary,
) -> User:
    user = get_user_by_email(conn, spec.email)
    if user is not None:
        return user
    summary.users_created.append(spec.email)
    return create_user(
        conn, spec.email, password, spec.role,
        agency=agencies[spec.agency] if spec.agency else None,
        name=spec.name, actor=_ACTOR,
    )  # fmt: skip


def load_demo(
    conn: Connection[Any],
    settings: Settings,
    *,
    password: str | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
) -> DemoSummary:
    """Create the demo agencies, users and layers, ingest and publish (idempotent).

    The users' password is ``password``, else ``SDI_DEMO_PASSWORD``, else
    :data:`DEMO_PASSWORD`; users that exist keep theirs. Files are generated
    under ``<var>/demo`` only when a version is missing.

    ``conn`` must be in autocommit mode, as the CLI and the apps use it: every
    step (each registry change, each ingestion) commits on its own, so an
    interrupted run is completed by the next one.
    """
    if not conn.autocommit:
        raise ValueError("load_demo needs an autocommit connection.")

    def say(message: str) -> None:
        LOGGER.info("%s", message)
        if progress is not None:
            progress(message)

    summary = DemoSummary()
    if password is None:
        password = demo_password()
        if os.environ.get(DEMO_PASSWORD_ENV):
            summary.credentials = DEMO_PASSWORD_ENV
    else:
        summary.credentials = "argument"

    agencies = {a.code: _agency(conn, a, summary) for a in DEMO_AGENCIES}
    users = {u.email: _user(conn, u, agencies, password, summary) for u in DEMO_USERS}

    files: dict[str, Path] | None = None
    counts = demo_counts(scale).features()
    for spec in DEMO_LAYERS:
        editor = users[f"{spec.agency}.editor@example.com"]
        admin = users[f"{spec.agency}.admin@example.com"]
        try:
            layer = get_layer(conn, spec.slug)
        except NotFoundError:
            say(f"Registering {spec.slug}")
            layer = create_layer(
                conn, agencies[spec.agency], _layer_input(conn, spec),
                actor=_ACTOR, user_id=admin.id,
            )  # fmt: skip
            summary.layers_created.append(spec.slug)
        if layer.agency_id != agencies[spec.agency].id:
            LOGGER.warning("%s belongs to another agency: left alone", spec.slug)
            continue
        have = latest_version_number(conn, layer.id)
        ingested_now = False
        for number, key in enumerate(spec.files, start=1):
            if number <= have:
                continue
            if files is None:
                say("Generating the demo files")
                files = generate_files(settings.var_dir / "demo", scale=scale)
            say(f"Ingesting {spec.slug} version {number} ({counts[key]:,} features)")
            version = ingest_file(
                conn, settings, files[key], layer=spec.slug,
                user_id=editor.id, actor=_ACTOR,
                note=f"Demo data, version {number}.",
            )  # fmt: skip
            summary.ingested.append(
                IngestedVersion(
                    spec.slug, version.number, version.feature_count, version.diff
                )
            )
            have = version.number
            ingested_now = True
        if have and (ingested_now or layer.published_version is None):
            say(f"Publishing {spec.slug} version {have}")
            publish(conn, spec.slug, have, actor=_ACTOR, user_id=admin.id)
            summary.published.append((spec.slug, have))
    return summary


def _layer_input(conn: Connection[Any], spec: DemoLayer) -> LayerInput:
    return LayerInput(
        slug=spec.slug,
        title_en=spec.title_en,
        title_zh=spec.title_zh,
        licence_id=get_licence(conn, spec.licence).id,
        abstract_en=spec.abstract_en,
        abstract_zh=spec.abstract_zh,
        keywords=list(spec.keywords),
        theme=spec.theme,
        contact=next(a.contact_email for a in DEMO_AGENCIES if a.code == spec.agency),
        update_frequency=spec.update_frequency,
        key_column=spec.key_column,
    )
