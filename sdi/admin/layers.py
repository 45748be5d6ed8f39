"""An agency's layers: register, edit, review versions, publish, download.

Pages only: loading is permission-checked in ``sdi.admin.layer_access``;
registry, ingest and publication work is done by the same functions the CLI
and the JSON API call (``sdi.registry``, ``sdi.jobs``, ``sdi.publish.actions``,
``sdi.export``). Uploads are ``sdi.admin.uploads``; job pages ``sdi.admin.jobs``.
"""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.wrappers import Response as FlaskResponse
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from psycopg import Connection
from werkzeug.wrappers import Response
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from sdi import registry
from sdi.admin.db import pool
from sdi.admin.layer_access import (
    load_layer,
    load_version,
    owning_agency,
    settings,
    visible_layers,
)
from sdi.admin.uploads import ACCEPTED_FORMATS, human_bytes
from sdi.errors import BadInputError, ConflictError, ForbiddenError, NotFoundError
from sdi.export import (
    FORMATS,
    export_version,
    layer_history,
    preview_features,
    uploaders,
    version_summary,
)
from sdi.ingest.raster import raster_path, thumbnail_png
from sdi.jobs import list_jobs
from sdi.publish.actions import publish_layer, rollback, unpublish_layer
from sdi.registry import permissions, users
from sdi.registry.models import Layer, User, Version
from sdi.registry.permissions import Action

__all__ = [
    "FREQUENCIES",
    "bp",
    "check_key_column",
    "parse_keywords",
    "preview_response",
    "previous_of",
    "send_version",
]

bp = Blueprint("layers", __name__)

#: Update frequencies (ISO 19115 maintenance frequency codes) and their labels.
FREQUENCIES: list[tuple[str, str]] = [
    ("", "Not stated"),
    ("continual", "Continually"),
    ("daily", "Daily"),
    ("weekly", "Weekly"),
    ("fortnightly", "Fortnightly"),
    ("monthly", "Monthly"),
    ("quarterly", "Quarterly"),
    ("biannually", "Twice a year"),
    ("annually", "Yearly"),
    ("asNeeded", "As needed"),
    ("irregular", "Irregularly"),
    ("notPlanned", "No updates planned"),
]
VISIBILITIES = [
    ("public", "Public: anyone may use it through the API"),
    ("restricted", "Restricted: only holders of an API key granted this layer"),
]
_KEYWORD_SEPARATORS = re.compile(r"[,，、;；\n]")


def parse_keywords(text: str | list[str] | None) -> list[str]:
    """Keywords from a comma-separated line (Chinese commas too), deduplicated."""
    items = text if isinstance(text, list) else _KEYWORD_SEPARATORS.split(text or "")
    seen: dict[str, None] = {}
    for item in items:
        word = item.strip()
        if word:
            seen.setdefault(word, None)
    return list(seen)


def previous_of(versions: list[Version], number: int) -> Version | None:
    """The served version before ``number`` in ``versions`` (None for the first);
    withdrawn versions are gaps."""
    earlier = [v for v in versions if v.number < number and not v.withdrawn]
    return max(earlier, key=lambda v: v.number) if earlier else None


def check_key_column(
    conn: Connection[Any], layer: Layer, key_column: str | None
) -> None:
    """Refuse a key column that the layer's latest version does not have."""
    if not key_column:
        return
    versions = registry.list_versions(conn, layer.id)
    if not versions:
        return
    latest = versions[-1]
    names = [f["name"] for f in latest.schema.get("fields", [])]
    if key_column not in names:
        raise BadInputError(
            f"Key column {key_column!r} is not an attribute of version "
            f"{latest.number}; its attributes are: {', '.join(names)}."
        )


# ------------------------------------------------------------------ forms


def _choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class LayerForm(FlaskForm):  # type: ignore[misc]
    """A layer's metadata (everything but its id and owner)."""

    title_en = StringField(
        "Title (English)", validators=[DataRequired(), Length(max=300)]
    )
    title_zh = StringField("標題 (中文)", validators=[Length(max=300)])
    abstract_en = TextAreaField("Abstract (English)", validators=[Length(max=5000)])
    abstract_zh = TextAreaField("摘要 (中文)", validators=[Length(max=5000)])
    keywords = StringField("Keywords 關鍵詞", validators=[Length(max=1000)])
    theme = StringField("Theme 主題", validators=[Length(max=100)])
    contact = StringField("Contact 聯絡", validators=[Length(max=300)])
    update_frequency = SelectField(
        "Update frequency 更新頻率", choices=_choices(FREQUENCIES)
    )
    licence_id = SelectField("Licence 授權條款", coerce=int)
    visibility = RadioField(
        "Visibility 公開程度", choices=_choices(VISIBILITIES), default="public"
    )
    key_column = StringField(
        "Key column 識別欄", validators=[Optional(), Length(max=63)]
    )


class NewLayerForm(LayerForm):
    """A new layer: its id, and (platform admins) its agency."""

    slug = StringField("Layer id", validators=[DataRequired(), Length(max=63)])
    agency = SelectField("Agency 部門", validate_choice=False)


_METADATA = (
    "title_en",
    "title_zh",
    "abstract_en",
    "abstract_zh",
    "theme",
    "contact",
    "update_frequency",
    "licence_id",
    "visibility",
)


def _form_values(form: LayerForm) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: (getattr(form, name).data or "") for name in _METADATA
    }
    values["licence_id"] = form.licence_id.data
    values["keywords"] = parse_keywords(form.keywords.data)
    values["key_column"] = (form.key_column.data or "").strip() or None
    for name in ("title_en", "title_zh", "theme", "contact"):
        values[name] = values[name].strip()
    return values


def _fill_choices(conn: Connection[Any], form: LayerForm, user: User) -> None:
    form.licence_id.choices = [
        SelectChoice(
            str(lic.id),
            f"{lic.name_en} · {lic.name_zh}" if lic.name_zh else lic.name_en,
        )
        for lic in registry.list_licences(conn)
    ]
    if isinstance(form, NewLayerForm):
        if user.role == "platform_admin":
            form.agency.choices = [SelectChoice("", "Choose…")] + [
                SelectChoice(a.code, f"{a.code} · {a.name_en}")
                for a in registry.list_agencies(conn)
            ]
        else:
            del form.agency


def _me() -> User:
    user: User = current_user.user
    return user


# ------------------------------------------------------------------ pages


@bp.route("/")
@login_required
def index() -> str:
    """The layers the signed-in user may manage."""
    user = _me()
    with pool(current_app).connection() as conn:
        layers = visible_layers(conn, user)
        agencies = {a.id: a for a in registry.list_agencies(conn)}
        licences = {lic.id: lic for lic in registry.list_licences(conn)}
        versions = {
            layer.id: registry.list_versions(conn, layer.id) for layer in layers
        }
    can_register = user.role == "platform_admin" or permissions.can(
        user, Action.EDIT_LAYER, agency_id=user.agency_id
    )
    return render_template(
        "layers.html",
        layers=layers,
        agencies=agencies,
        licences=licences,
        versions=versions,
        can_register=can_register,
    )


# Not under /layers/: "new" is a valid layer id.
@bp.route("/new-layer", methods=["GET", "POST"])
@login_required
def new() -> str | Response | tuple[str, int]:
    """Register a layer (agency editors and admins, platform admins)."""
    user = _me()
    form = NewLayerForm()
    with pool(current_app).connection() as conn:
        if user.role != "platform_admin":
            owning_agency(conn, user, None)  # 403 before showing the form
        _fill_choices(conn, form, user)
        if form.validate_on_submit():
            try:
                agency = owning_agency(
                    conn, user, form.agency.data if "agency" in form else None
                )
                data = registry.LayerInput(
                    slug=form.slug.data.strip(), **_form_values(form)
                )
                layer = registry.create_layer(
                    conn, agency, data, actor=user.email, user_id=user.id
                )
            except (BadInputError, ConflictError, NotFoundError) as exc:
                flash(exc.message, "error")
                return render_template("layer_form.html", form=form, layer=None), (
                    exc.status
                )
            flash(
                f"Layer {layer.slug} is registered: upload its first version.",
                "success",
            )
            return redirect(url_for("layers.detail", slug=layer.slug))
    status = 400 if form.errors else 200
    return render_template("layer_form.html", form=form, layer=None), status


@bp.route("/layers/<slug>")
@login_required
def detail(slug: str) -> str:
    """A layer: its metadata, upload area, jobs, versions and history."""
    user = _me()
    with pool(current_app).connection() as conn:
        layer = load_layer(conn, user, slug)
        agency = users.get_agency_by_id(conn, layer.agency_id)
        licence = registry.get_licence_by_id(conn, layer.licence_id)
        versions = registry.list_versions(conn, layer.id)
        history = layer_history(conn, layer)
        jobs = list_jobs(conn, layer_id=layer.id, limit=10)
    config = settings()
    return render_template(
        "layer.html",
        layer=layer,
        agency=agency,
        licence=licence,
        versions=list(reversed(versions)),
        uploaded_by=uploaders(history),
        history=history,
        jobs=jobs,
        can_edit=permissions.can(user, Action.EDIT_LAYER, agency_id=layer.agency_id),
        can_publish=permissions.can(
            user, Action.PUBLISH_LAYER, agency_id=layer.agency_id
        ),
        can_withdraw=permissions.can(
            user, Action.WITHDRAW_VERSION, agency_id=layer.agency_id
        ),
        max_upload=config.max_upload_bytes,
        max_upload_text=human_bytes(config.max_upload_bytes),
        accepted_formats=ACCEPTED_FORMATS,
        frequencies=dict(FREQUENCIES),
    )


@bp.route("/layers/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit(slug: str) -> str | Response | tuple[str, int]:
    """Change a layer's metadata."""
    user = _me()
    with pool(current_app).connection() as conn:
        layer = load_layer(conn, user, slug, Action.EDIT_LAYER)
        if request.method == "GET":
            current = {name: getattr(layer, name) for name in _METADATA}
            form = LayerForm(
                formdata=None,
                data=current
                | {
                    "keywords": ", ".join(layer.keywords),
                    "key_column": layer.key_column or "",
                },
            )
        else:
            form = LayerForm()
        _fill_choices(conn, form, user)
        if form.validate_on_submit():
            values = _form_values(form)
            if "visibility" not in request.form:  # disabled radios (editors)
                values["visibility"] = layer.visibility
            changes = {k: v for k, v in values.items() if getattr(layer, k) != v}
            try:
                if "key_column" in changes:
                    check_key_column(conn, layer, changes["key_column"])
                if changes:
                    registry.update_layer(conn, slug, changes, by=user)
            except (BadInputError, ConflictError, ForbiddenError) as exc:
                flash(exc.message, "error")
                return _edit_page(form, layer, user), exc.status
            flash(
                "Saved." if changes else "Nothing changed.",
                "success" if changes else "info",
            )
            return redirect(url_for("layers.detail", slug=slug))
    status = 400 if form.errors else 200
    return _edit_page(form, layer, user), status


def _edit_page(form: LayerForm, layer: Layer, user: User) -> str:
    """The edit form; visibility radios are disabled for those who may not set it."""
    may_set = permissions.can(user, Action.SET_VISIBILITY, agency_id=layer.agency_id)
    return render_template(
        "layer_form.html", form=form, layer=layer, can_set_visibility=may_set
    )


@bp.route("/layers/<slug>/versions/<int:number>")
@login_required
def version(slug: str, number: int) -> str:
    """Review a version before publishing it: summary, schema change, map."""
    user = _me()
    with pool(current_app).connection() as conn:
        layer, current = load_version(conn, user, slug, number)
        versions = registry.list_versions(conn, layer.id)
        history = layer_history(conn, layer)
    previous = previous_of(versions, number)
    summary = version_summary(
        layer, current, previous, uploaded_by=uploaders(history).get(number)
    )
    config = settings()
    if layer.kind == "raster":
        return render_template(
            "raster_version.html",
            layer=layer,
            v=summary,
            grid=current.schema.get("raster") or {},
            report=current.report,
            can_publish=permissions.can(
                user, Action.PUBLISH_LAYER, agency_id=layer.agency_id
            ),
        )
    return render_template(
        "version.html",
        layer=layer,
        v=summary,
        previous=previous,
        can_publish=permissions.can(
            user, Action.PUBLISH_LAYER, agency_id=layer.agency_id
        ),
        formats=FORMATS,
        basemap_url=config.basemap_url,
        basemap_attribution=config.basemap_attribution,
    )


def preview_response(
    conn: Connection[Any], layer: Layer, current: Version
) -> FlaskResponse:
    """The preview GeoJSON of a version (immutable, so cacheable by the browser)."""
    body = preview_features(conn, layer, current, srid=settings().storage_srid)
    response = jsonify(body)
    response.mimetype = "application/geo+json"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.route("/layers/<slug>/versions/<int:number>/preview.geojson")
@login_required
def preview(slug: str, number: int) -> Response:
    """The version's features for the review map (bounded, simplified)."""
    with pool(current_app).connection() as conn:
        layer, current = load_version(conn, _me(), slug, number)
        return preview_response(conn, layer, current)


def send_version(
    conn: Connection[Any], layer: Layer, current: Version, fmt: str | None
) -> FlaskResponse:
    """A version as a GeoPackage or GeoJSON download, streamed from a temp file."""
    config = settings()
    directory = config.var_dir / "exports"
    directory.mkdir(parents=True, exist_ok=True)
    path = export_version(
        conn, layer, current, fmt or "gpkg", directory, srid=config.storage_srid
    )
    handle = path.open("rb")
    # The open handle keeps the data; the directory entry can go now.
    shutil.rmtree(path.parent, ignore_errors=True)
    spec = FORMATS[fmt or "gpkg"]
    response = send_file(
        handle,
        mimetype=spec.media_type,
        as_attachment=True,
        download_name=path.name,
        max_age=0,
    )
    response.content_length = os.fstat(handle.fileno()).st_size
    return response


@bp.route("/layers/<slug>/versions/<int:number>/download")
@login_required
def download(slug: str, number: int) -> Response:
    """Download a version: ``?format=gpkg`` (default) or ``geojson``; a raster
    version is its Cloud Optimized GeoTIFF."""
    with pool(current_app).connection() as conn:
        layer, current = load_version(conn, _me(), slug, number)
        if layer.kind == "raster":
            return send_file(
                raster_path(settings(), current),
                mimetype="image/tiff",
                as_attachment=True,
                download_name=f"{layer.slug}-v{number}.tif",
                max_age=0,
            )
        return send_version(conn, layer, current, request.args.get("format"))


@bp.route("/layers/<slug>/versions/<int:number>/thumbnail.png")
@login_required
def thumbnail(slug: str, number: int) -> Response:
    """A raster version drawn at most 512 pixels wide (the review page's preview)."""
    with pool(current_app).connection() as conn:
        layer, current = load_version(conn, _me(), slug, number)
    if layer.kind != "raster":
        raise NotFoundError(f"Version {number} of {slug!r} is not a raster.")
    response = FlaskResponse(
        thumbnail_png(current, 512, settings=settings()), mimetype="image/png"
    )
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def _version_field() -> int | None:
    raw = (request.form.get("version") or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BadInputError("The version is a whole number.")
    return int(raw)


@bp.route("/layers/<slug>/publish", methods=["POST"])
@login_required
def publish(slug: str) -> Response:
    """Publish a version (the latest if the form names none)."""
    user = _me()
    with pool(current_app).connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        layer = publish_layer(
            conn,
            settings(),
            slug,
            _version_field(),
            actor=user.email,
            user_id=user.id,
        )
    flash(
        f"Version {layer.published_version} of {slug} is published: the API "
        "serves it now.",
        "success",
    )
    return redirect(url_for("layers.detail", slug=slug))


@bp.route("/layers/<slug>/rollback", methods=["POST"], endpoint="rollback")
@login_required
def rollback_view(slug: str) -> Response:
    """Go back to an earlier version (the one before the published one by default)."""
    user = _me()
    with pool(current_app).connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        layer = rollback(
            conn, settings(), slug, _version_field(), actor=user.email, user_id=user.id
        )
    flash(
        f"Rolled back: {slug} serves version {layer.published_version} again.",
        "success",
    )
    return redirect(url_for("layers.detail", slug=slug))


@bp.route("/layers/<slug>/unpublish", methods=["POST"])
@login_required
def unpublish(slug: str) -> Response:
    """Withdraw the layer from the API (its versions stay)."""
    user = _me()
    with pool(current_app).connection() as conn:
        load_layer(conn, user, slug, Action.PUBLISH_LAYER)
        unpublish_layer(conn, settings(), slug, actor=user.email, user_id=user.id)
    flash(f"{slug} is no longer published.", "success")
    return redirect(url_for("layers.detail", slug=slug))
