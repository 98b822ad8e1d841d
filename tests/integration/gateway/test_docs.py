"""/docs: Swagger UI served by the gateway from swagger-ui-bundle's files — every
asset local and loading, no token needed, reading an OpenAPI 3.0 document that
validates and offers the bearer Authorize button."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
from openapi_spec_validator import validate

ATTRIBUTE = re.compile(r'(?:src|href)="([^"]+)"')


async def test_docs_redirects_to_the_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 308
    assert urljoin("http://gateway/docs", response.headers["location"]) == "http://gateway/docs/"


async def test_the_page_and_every_asset_load_from_the_gateway_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    references = ATTRIBUTE.findall(page.text)
    assert len(references) == 7, references
    for reference in references:
        assert reference.startswith("./"), reference  # beside the page, never a CDN
        asset = await client.get(urljoin("http://gateway/docs/", reference))
        assert asset.status_code == 200, reference
        assert asset.content, reference
        assert "authorization" not in asset.request.headers
    css = await client.get("/docs/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")
    script = await client.get("/docs/swagger-ui-bundle.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content


async def test_the_page_reads_a_3_0_document_with_the_bearer_scheme(
    client: httpx.AsyncClient,
) -> None:
    initializer = (await client.get("/docs/swagger-initializer.js")).text
    assert "validatorUrl: null" in initializer  # no call to validator.swagger.io
    (spec_url,) = re.findall(r'new URL\("([^"]+)"', initializer)
    spec = await client.get(urljoin("http://gateway/docs/", spec_url))
    assert spec.request.url.path == "/openapi-3.0.json"
    document = spec.json()
    assert document["openapi"] == "3.0.3"  # what the bundled Swagger UI 4 renders
    validate(document)
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert document["security"] == [{"bearerAuth": []}]
    full = (await client.get("/openapi.json")).json()
    assert document["paths"].keys() == full["paths"].keys()


async def test_only_the_known_assets_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/docs/index.html", "/docs/..%2Fopenapi.json", "/docs/swagger-ui.js.map"):
        response = await client.get(path)
        assert response.status_code == 404, path
