"""Abuse reports from participants, and the admin API that reads and handles them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from . import session as rules
from .http import client_ip, rate_limited, read_json
from .keys import ADMIN, CONFIG, SERVICE, TRUSTED_PROXIES
from .notify import notify_report
from .session import SessionError
from .store import Report

routes = web.RouteTableDef()
NOTIFY_TASKS = web.AppKey("notify_tasks", set[asyncio.Task[bool]])

REASON_MAX, DETAILS_MAX, CONTACT_MAX = 200, 4000, 200
REPORT_ID_DIGITS = 18  # below 2**63, SQLite's largest INTEGER


def report_json(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "token": report.token,
        "reason": report.reason,
        "details": report.details,
        "contact": report.contact,
        "created_at": rules.iso(report.created_at),
        "handled_at": rules.iso(report.handled_at),
        "handled": report.handled_at is not None,
    }


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise SessionError(422, f"invalid_{name}", f"{name} is required.")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise SessionError(
            422, f"invalid_{name}", f"{name} must be text of at most {limit} characters."
        )
    return value


@routes.post("/api/reports")
async def file_report(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    verdict = await svc.rate("report", client_ip(request, request.app[TRUSTED_PROXIES]))
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    body = await read_json(request)
    if not isinstance(body, dict):
        raise SessionError(422, "invalid_body", "The request body must be a JSON object.")
    reason = _text(body, "reason", REASON_MAX, required=True)
    details = _text(body, "details", DETAILS_MAX, required=False) or ""
    contact = _text(body, "contact", CONTACT_MAX, required=False)
    found = await svc.lookup(body.get("token"))
    assert reason is not None
    report = await svc.store.add_report(found.token, reason, details, contact, svc.now())
    svc.metrics.report_filed()
    tasks = request.app[NOTIFY_TASKS]
    task = asyncio.ensure_future(notify_report(request.app[CONFIG], report))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return web.json_response(
        {"id": report.id, "created_at": rules.iso(report.created_at)},
        status=201,
        headers=verdict.headers(),
    )


@routes.post("/api/admin/login")
async def admin_login(request: web.Request) -> web.Response:
    svc, admin = request.app[SERVICE], request.app[ADMIN]
    if not admin.enabled:
        raise SessionError(404, "admin_disabled", "The admin API is not enabled on this server.")
    verdict = await svc.rate("admin_login", client_ip(request, request.app[TRUSTED_PROXIES]))
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    body = await read_json(request)
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str):
        raise SessionError(422, "invalid_password", "password must be a string.")
    granted = await admin.login(password, svc.now())
    if granted is None:
        return web.json_response(
            {"error": "wrong_password", "reason": "That password is not right."},
            status=401,
            headers=verdict.headers(),
        )
    token, expires = granted
    return web.json_response({"token": token, "expires_at": rules.iso(expires)})


async def _require_admin(request: web.Request) -> None:
    svc, admin = request.app[SERVICE], request.app[ADMIN]
    if not admin.enabled:
        raise SessionError(404, "admin_disabled", "The admin API is not enabled on this server.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or not await admin.check(token, svc.now()):
        raise SessionError(401, "admin_login_required", "Log in as admin first.")


@routes.post("/api/admin/logout")
async def admin_logout(request: web.Request) -> web.Response:
    await _require_admin(request)
    await request.app[ADMIN].logout(request.headers["Authorization"].partition(" ")[2])
    return web.json_response({"message": "Logged out"})


@routes.get("/api/admin/reports")
async def list_reports(request: web.Request) -> web.Response:
    await _require_admin(request)
    include = request.query.get("include_handled", "0").lower() in {"1", "true", "yes"}
    reports = await request.app[SERVICE].store.list_reports(include_handled=include)
    return web.json_response({"reports": [report_json(r) for r in reports]})


def _report_id(raw: str) -> int:
    """A report id from the path: ASCII digits that fit SQLite's INTEGER (not `²`,
    which str.isdigit takes, nor thirty nines), else 404."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > REPORT_ID_DIGITS:
        raise SessionError(404, "report_not_found", "No report has that id.")
    return int(raw)


@routes.post("/api/admin/reports/{report_id}/handled")
async def mark_handled(request: web.Request) -> web.Response:
    await _require_admin(request)
    report_id = _report_id(request.match_info["report_id"])
    svc = request.app[SERVICE]
    report = await svc.store.mark_report_handled(report_id, svc.now())
    if report is None:
        raise SessionError(404, "report_not_found", "No report has that id.")
    return web.json_response(report_json(report))
