"""Validate bodies against the shared OpenAPI description of the Spotify Web API.

Fields marked ``deprecated`` (removed for Development Mode apps) are made optional: the
real service no longer sends them, whatever ``required`` still says.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

# Vendored with its MIT licence (see spotify_openapi/README.md for its source), so the
# tests that use it run on any clone.
SPEC = Path(__file__).resolve().parent / "spotify_openapi" / "fixed-spotify-open-api.yml"
_URI = "urn:spotify-openapi"


def _deprecated_names(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            if isinstance(prop, dict) and prop.get("deprecated"):
                found.add(name)
        for value in node.values():
            _deprecated_names(value, found)
    elif isinstance(node, list):
        for value in node:
            _deprecated_names(value, found)
    return found


def _relax(node: Any, deprecated: set[str]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("required"), list):
            node["required"] = [n for n in node["required"] if n not in deprecated]
        for value in node.values():
            _relax(value, deprecated)
    elif isinstance(node, list):
        for value in node:
            _relax(value, deprecated)


@functools.cache
def _registry() -> Registry:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    _relax(spec, _deprecated_names(spec, set()))
    return Registry().with_resource(
        _URI, Resource.from_contents(spec, default_specification=DRAFT4)
    )


def validate_response(name: str, body: Any) -> None:
    """Validate ``body`` against ``components.responses.<name>`` (its JSON schema)."""
    pointer = f"{_URI}#/components/responses/{name}/content/application~1json/schema"
    OAS30Validator({"$ref": pointer}, registry=_registry()).validate(body)


def validate_schema(name: str, body: Any) -> None:
    """Validate ``body`` against ``components.schemas.<name>``."""
    OAS30Validator({"$ref": f"{_URI}#/components/schemas/{name}"}, registry=_registry()).validate(
        body
    )
