"""Links to the app's own HTTP routes (invoice PDFs, the usage CSV) from a page.

Those routes live on the backend, which in development listens on another port than the pages:
the URL is resolved in the browser the way Reflex resolves upload URLs."""

from __future__ import annotations

import json

from reflex_base.constants import Dirs
from reflex_base.utils.imports import ImportVar
from reflex_base.vars import VarData
from reflex_base.vars.base import Var

_BACKEND_IMPORTS = VarData(
    imports={
        f"$/{Dirs.STATE_PATH}": "getBackendURL",
        "$/env.json": ImportVar(tag="env", is_default=True),
    }
)


def backend_url(path: Var | str) -> Var:
    """The absolute URL of `path` (a route, or a state var holding one) on the backend."""
    if isinstance(path, str):
        js_path, var_data = json.dumps(path), _BACKEND_IMPORTS
    else:
        js_path = str(path)
        var_data = VarData.merge(path._get_all_var_data(), _BACKEND_IMPORTS)
    return Var(
        _js_expr=f"new URL({js_path}, getBackendURL(env.UPLOAD)).href", _var_data=var_data
    ).to(str)
