"""Where the UI's files are: templates, translations and static files, kept in `web/`.

An installed wheel carries them as `orbitcore/web/` (pyproject maps the `web/`
folder there); a checkout, installed editable or not, has them in `web/` beside
`orbitcore/`. Both programs serve them: orbitd its pages, the rendezvous its admin.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

_HERE = Path(__file__).resolve().parent


def _web_root() -> Path:
    for candidate in (_HERE / "web", _HERE.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError(f"the UI files are missing: no web/templates beside {_HERE}")


WEB_ROOT = _web_root()


STATIC_ROOT = (WEB_ROOT / "static").resolve()
NAME_MAX = 255  # the longest file name most file systems take (a longer one: ENAMETOOLONG)


async def static_file(request: web.Request) -> web.FileResponse:
    """`GET /static/<path>`: a file under `web/static/`, or 404 for anything else (a
    name too long for the file system, a NUL, `..`, a link out, a directory), never a 500."""
    name = request.match_info["path"]
    if not name or any(len(part) > NAME_MAX for part in name.split("/")):
        raise web.HTTPNotFound()
    try:
        path = (STATIC_ROOT / name).resolve(strict=True)
        path.relative_to(STATIC_ROOT)
        if not path.is_file():
            raise web.HTTPNotFound()
    except (OSError, ValueError, RuntimeError):  # missing, too long, NUL, outside, a loop
        raise web.HTTPNotFound() from None
    return web.FileResponse(path)


def add_static(app: web.Application) -> None:
    """Serve `web/static/` under `/static/` (both programs: the daemon its UI, the
    rendezvous its admin page)."""
    app.router.add_get("/static/{path:.+}", static_file)
