"""``/docs``: Swagger UI over ``/openapi.json``, every asset served by this process.

The UI's dist files come from the ``swagger-ui-bundle`` package (Swagger UI 4.x, Apache-2.0),
mounted at ``/docs/assets``; the page starts it from ``/static/docs-init.js``, so the page
has no inline script and no CDN: it works offline and under a ``script-src 'self'`` policy.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"
DOCS_HEADERS = {
    # Swagger UI sets inline style attributes; scripts and everything else come from here.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>wafsmith API</title>
  <link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS}/swagger-ui-bundle.js"></script>
  <script src="/static/docs-init.js"></script>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs() -> HTMLResponse:
    """The interactive API reference (try requests with a bearer token via Authorize)."""
    return HTMLResponse(PAGE, headers=DOCS_HEADERS)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")
