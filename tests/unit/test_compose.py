"""docker-compose.yml: structurally valid (a JSON schema of the Compose features used) and consistent
with .env.local and the settings. No Docker engine runs in CI, so this is what can be checked."""

from __future__ import annotations

import jsonschema
import yaml

from fixtures import ROOT
from logpulse.config import Settings

# The subset of the Compose specification (compose-spec.io) this file uses, with its types.
_HEALTH = {
    "type": "object",
    "required": ["test"],
    "additionalProperties": False,
    "properties": {
        "test": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "interval": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
        "timeout": {"type": "string", "pattern": r"^\d+(ms|s|m|h)$"},
        "retries": {"type": "integer", "minimum": 1},
    },
}
_SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "build": {"type": ["string", "object"]},
        "image": {"type": "string"},
        "command": {"type": "array", "items": {"type": "string"}},
        "env_file": {"type": ["string", "array"]},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "volumes": {"type": "array", "items": {"type": "string", "pattern": r"^[\w.\-/]+:/[\w.\-/]*$"}},
        "ports": {"type": "array", "items": {"type": "string", "pattern": r"^\d+:\d+$"}},
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "healthcheck": _HEALTH,
        "depends_on": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["condition"],
                "additionalProperties": False,
                "properties": {
                    "condition": {"enum": ["service_started", "service_healthy", "service_completed_successfully"]}
                },
            },
        },
    },
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}
SCHEMA = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "name": {"type": "string"},
        "services": {"type": "object", "additionalProperties": _SERVICE},
        "volumes": {"type": "object"},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_local() -> dict[str, str]:
    out = {}
    for line in (ROOT / ".env.local").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_compose_file_is_structurally_valid() -> None:
    doc = compose()
    jsonschema.validate(doc, SCHEMA)
    services = doc["services"]
    assert set(services) == {"influxdb", "generator", "processor", "api"}
    assert services["influxdb"]["image"].startswith("influxdb:1.11")
    for name, svc in services.items():
        assert "healthcheck" in svc, name
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            assert vol.split(":")[0] in doc["volumes"], vol
    assert (ROOT / services["api"]["build"]).joinpath("Dockerfile").exists()


def test_compose_and_env_local_agree_with_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    env = env_local()
    assert set(env) == fields, f"missing in .env.local: {fields - set(env)}; unknown: {set(env) - fields}"
    for name, svc in compose()["services"].items():
        if name == "influxdb":
            continue
        assert svc["env_file"] == ".env.local"
        assert set(svc.get("environment", {})) <= fields, name
        assert svc["environment"]["INFLUXDB_URL"] == "http://influxdb:8086"
    Settings(_env_file=str(ROOT / ".env.local"))  # every value parses


def test_the_image_holds_no_env_local_and_the_api_key_comes_from_it() -> None:
    """.env.local may hold API_KEY: compose passes it as the environment, the image never copies it."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert ".env.local" not in "".join(line for line in dockerfile.splitlines() if not line.lstrip().startswith("#"))
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env.local" in ignored
    assert compose()["services"]["api"]["env_file"] == ".env.local"
    assert "API_KEY" in env_local()
