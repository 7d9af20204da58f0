"""Where the UI's files are: templates, translations and static files, kept in `web/`.

An installed wheel carries them as `orbitcore/web/` (pyproject maps the `web/`
folder there); a checkout, installed editable or not, has them in `web/` beside
`orbitcore/`. Both programs serve them: orbitd its pages, the rendezvous its admin.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _web_root() -> Path:
    for candidate in (_HERE / "web", _HERE.parent / "web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError(f"the UI files are missing: no web/templates beside {_HERE}")


WEB_ROOT = _web_root()
