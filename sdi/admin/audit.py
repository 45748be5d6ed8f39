"""The audit page: an agency's entries (platform admins: everyone's), newest first."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask_login import login_required

from sdi import registry
from sdi.admin.auth import me
from sdi.admin.db import pool
from sdi.registry import audit

__all__ = ["PAGE_SIZE", "bp"]

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50


@bp.route("/")
@login_required
def index() -> str:
    """Audit entries, newest first; ``?agency=code`` narrows, ``?page=n`` pages."""
    user = me()
    code = request.args.get("agency") or None
    page = max(1, request.args.get("page", 1, type=int) or 1)
    with pool(current_app).connection() as conn:
        agencies = registry.list_agencies(conn)
        if code:
            agency_id: int | None = registry.get_agency(conn, code).id
        elif user.role == "platform_admin":
            agency_id = None
        else:
            agency_id = user.agency_id
        entries = audit.list_agency_audit(
            conn,
            user,
            agency_id,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
    return render_template(
        "audit.html",
        entries=entries[:PAGE_SIZE],
        more=len(entries) > PAGE_SIZE,
        page=page,
        agencies=agencies,
        agency_code=code,
    )
