"""Errors on pages: a manager sees a translated sentence inside the dashboard, never a raw JSON
400 or aiohttp's English "413 Request Entity Too Large". The JSON API keeps its JSON answers
(scripts read them), and the citizens' rating pages (/danh-gia) have their own forms' errors."""

from __future__ import annotations

from aiohttp import web

from edge.central.web.common import MAX_BODY, lang_of, render, t

# Status -> TEXT key when the error carries no text of its own (common.with_page_text).
DEFAULT_TEXT = {400: "bad_request", 403: "forbidden", 404: "not_found", 413: "too_large"}


def is_page(request: web.Request) -> bool:
    return not request.path.startswith(("/api/", "/danh-gia", "/static/"))


def page_for(request: web.Request, err: web.HTTPException) -> web.Response | None:
    """The error as a page in the dashboard (same status), or None to let it through as it is."""
    if err.status not in DEFAULT_TEXT or not is_page(request):
        return None
    key, fields = getattr(err, "page_text", None) or (DEFAULT_TEXT[err.status], {})
    if key == "too_large":
        fields = {"kb": MAX_BODY // 1024, **fields}
    return render(request, "error.html", "", {"message": t(lang_of(request), key, **fields), "back": request.path},
                  status=err.status)
