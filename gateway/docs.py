"""Interactive API docs at /docs: Swagger UI from the swagger-ui-bundle package's
own files, served by the gateway (no CDN: works offline), reading the API from
/openapi-3.0.json (the Swagger UI it bundles renders OpenAPI 3.0 only; the 3.1
document stays at /openapi.json). The Authorize button takes a bearer token
(the `bearerAuth` scheme) and keeps it across reloads; "Try it out" calls this
gateway. Neither the page nor its assets need a token.

    /docs                   → redirect to /docs/
    /docs/                  the page
    /docs/<asset>           Swagger UI's CSS, scripts and icons (a fixed list)
    /docs/swagger-initializer.js   the page's configuration (ours)
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

SPEC_URL = "../openapi-3.0.json"  # relative: works under a path prefix too
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
CACHE = "public, max-age=86400"

PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{title} — API docs</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="./index.css">
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="./favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"""

# validatorUrl null: the default badge would call validator.swagger.io.
INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: new URL("SPEC_URL", window.location.href).href,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
""".replace("SPEC_URL", SPEC_URL)


def swagger_ui_files() -> Path:
    """Where swagger-ui-bundle keeps Swagger UI's static files."""
    import swagger_ui_bundle  # type: ignore[import-untyped]  # no type information

    return Path(str(swagger_ui_bundle.swagger_ui_path))


class SwaggerDocs:
    """The /docs routes; the assets are read once, at start-up."""

    def __init__(self, title: str, files: Path | None = None) -> None:
        folder = files or swagger_ui_files()
        self.page = PAGE.format(title=title).encode()
        self.assets = {name: (folder / name).read_bytes() for name in ASSETS}
        self.assets["swagger-initializer.js"] = INITIALIZER.encode()

    def routes(self) -> list[Route]:
        return [
            Route("/docs", self.redirect, methods=["GET"]),
            Route("/docs/", self.index, methods=["GET"]),
            Route("/docs/{asset}", self.asset, methods=["GET"]),
        ]

    async def redirect(self, request: Request) -> Response:
        return RedirectResponse("docs/", status_code=308)  # relative: keeps any prefix

    async def index(self, request: Request) -> Response:
        return Response(self.page, media_type="text/html; charset=utf-8")

    async def asset(self, request: Request) -> Response:
        name = request.path_params["asset"]
        content = self.assets.get(name)
        if content is None:
            return Response(b"not found\n", status_code=404, media_type="text/plain")
        media_type = ASSETS.get(name, "text/javascript; charset=utf-8")
        return Response(content, media_type=media_type, headers={"cache-control": CACHE})
