"""HA's ``influxdb:`` block of configuration.yaml as the environment lines this project reads.

Every option of HA's influxdb integration has a line or a comment saying why it needs none.
HA's YAML tags load without error: ``!secret`` is resolved from secrets.yaml only on request,
``!include`` from the configuration's folder, ``!env_var`` from ``environ`` when given (HA's
environment is on HA's machine, not necessarily here), else its default.
Secrets are never printed unless asked: the lines name a ``*_FILE`` to put them in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Where the *_FILE lines point: Docker's and systemd's usual place for secrets.
SECRETS_DIR = "/run/secrets"
SCHEMA_KEYS = ("measurement_attr", "default_measurement", "override_measurement", "precision")
FILTER_KINDS = (("domains", "DOMAINS"), ("entity_globs", "ENTITY_GLOBS"), ("entities", "ENTITIES"))
COMPONENT_KEYS = ("component_config", "component_config_domain", "component_config_glob")


@dataclass(frozen=True)
class Tagged:
    """A value written with one of HA's YAML tags, resolved after loading."""

    tag: str
    value: str


class Unresolved(str):
    """What a tag stood for when it could not (or may not) be resolved: shown, never used."""


class HaLoader(yaml.SafeLoader):
    """PyYAML's safe loader that knows HA's tags instead of refusing the file."""


def _tagged(loader: HaLoader, suffix: str, node: yaml.Node) -> Tagged:
    value = loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else ""
    return Tagged(f"!{suffix}", str(value))


HaLoader.add_multi_constructor("!", _tagged)


def load_yaml(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=HaLoader)  # noqa: S506 - HaLoader is a SafeLoader


class Resolver:
    """Turns Tagged values into plain ones (or Unresolved), relative to the configuration."""

    def __init__(self, config_dir: Path, resolve_secrets: bool, environ: dict[str, str]) -> None:
        self.config_dir, self.resolve_secrets, self.environ = config_dir, resolve_secrets, environ
        self._secrets: dict[str, Any] | None = None

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, Tagged):
            return self._tag(value)
        return value

    def _tag(self, tagged: Tagged) -> Any:
        if tagged.tag == "!secret":
            return self._secret(tagged.value)
        if tagged.tag == "!include":
            return self(load_yaml(self.config_dir / tagged.value))
        if tagged.tag == "!env_var":
            name, _, default = tagged.value.partition(" ")
            found = self.environ.get(name, default or None)
            return Unresolved(f"!env_var {name}") if found is None else found
        return Unresolved(f"{tagged.tag} {tagged.value}")

    def _secret(self, name: str) -> Any:
        if not self.resolve_secrets:
            return Unresolved(f"!secret {name}")
        if self._secrets is None:
            path = self.config_dir / "secrets.yaml"
            self._secrets = (load_yaml(path) or {}) if path.exists() else {}
        if name not in self._secrets:
            return Unresolved(f"!secret {name} (not in secrets.yaml)")
        return self(self._secrets[name])


@dataclass
class Line:
    name: str
    value: str
    comment: str = ""
    active: bool = True

    def render(self) -> str:
        text = f"{self.name}={self.value}" if self.active else f"# {self.name}={self.value}"
        return f"# {self.comment}\n{text}" if self.comment else text


def influxdb_block(config: Any, resolver: Resolver) -> dict[str, Any]:
    if not isinstance(config, dict) or "influxdb" not in config:
        raise ValueError("configuration.yaml has no influxdb: block")
    block = resolver(config["influxdb"]) or {}  # a bare `influxdb:` is HA's all-defaults setup
    if not isinstance(block, dict):
        raise ValueError("the influxdb: block is not a mapping of options")
    return block


def convert(block: dict[str, Any], resolve_secrets: bool) -> list[Line | str]:
    """The environment lines for one resolved ``influxdb:`` block; strings are comments."""
    out: list[Line | str] = []
    v2 = str(block.get("api_version", "1")) == "2"
    out.append(Line("INFLUX_API_VERSION", "2" if v2 else "1"))
    out.append(_url(block, v2))
    _connection(block, v2, resolve_secrets, out)
    _schema(block, out)
    _filters(block, out)
    known = {"api_version", "host", "port", "ssl", "path", "verify_ssl", "ssl_ca_cert"}
    known |= {"username", "password", "token", "database", "organization", "bucket"}
    known |= {"max_retries", "tags", "tags_attributes", "ignore_attributes", "include", "exclude"}
    for key in sorted(set(block) - known - set(SCHEMA_KEYS) - set(COMPONENT_KEYS)):
        out.append(f"not converted: {key} is not an option of HA's influxdb integration")
    return out


def _url(block: dict[str, Any], v2: bool) -> Line:
    ssl = block.get("ssl", v2)
    host = block.get("host", "us-west-2-1.aws.cloud2.influxdata.com" if v2 else "localhost")
    port = block.get("port", None if v2 else 8086)
    url = f"{'https' if _true(ssl) else 'http'}://{host}{f':{port}' if port else ''}"
    url += str(block.get("path") or "")
    parts = [ssl, host, port, block.get("path")]
    return _line("INFLUX_URL", url, unresolved=[p for p in parts if isinstance(p, Unresolved)])


def _connection(block: dict[str, Any], v2: bool, resolve_secrets: bool, out: list) -> None:
    if "verify_ssl" in block:
        out.append(_line("INFLUX_VERIFY_SSL", "true" if _true(block["verify_ssl"]) else "false"))
    if block.get("ssl_ca_cert"):
        out.append(_line("INFLUX_CA_FILE", block["ssl_ca_cert"]))
    if v2:
        out.append(_line("INFLUX_ORG", block.get("organization", "")))
        out.append(_line("INFLUX_BUCKET", block.get("bucket", "Home Assistant")))
        out.extend(_secret("INFLUX_TOKEN", block.get("token"), resolve_secrets))
    else:
        out.append(_line("INFLUX_DATABASE", block.get("database", "home_assistant")))
        if block.get("username") is not None:
            out.append(_line("INFLUX_USERNAME", block["username"]))
            out.extend(_secret("INFLUX_PASSWORD", block.get("password"), resolve_secrets))
    if "max_retries" in block:
        out.append(
            "max_retries needs no setting: failed writes are retried with backoff and kept as "
            "dead letters, never dropped"
        )


def _secret(name: str, value: Any, resolve_secrets: bool) -> list[Line | str]:
    if value is None:
        return [f"{name}: not in the influxdb: block"]
    if resolve_secrets and not isinstance(value, Unresolved):
        return [Line(name, str(value), "a secret: keep this file private")]
    path = f"{SECRETS_DIR}/{name.lower()}"
    where = str(value) if isinstance(value, Unresolved) else "the influxdb: block"
    return [Line(f"{name}_FILE", path, f"put the value of {where} into {path} (mode 600)")]


def _schema(block: dict[str, Any], out: list) -> None:
    for key in SCHEMA_KEYS:
        if block.get(key) not in (None, ""):
            out.append(_line(f"INFLUX_{key.upper()}", block[key]))
    tags = block.get("tags") or {}
    if tags:
        out.append(_tags(tags))
    for key in ("tags_attributes", "ignore_attributes"):
        if block.get(key):
            out.append(_line(f"INFLUX_{key.upper()}", ",".join(map(str, _items(block[key])))))
    for key in COMPONENT_KEYS:
        if block.get(key):
            out.append(_line(f"INFLUX_{key.upper()}", _json(block[key])))


def _tags(tags: dict[str, Any]) -> Line:
    pairs = [(str(k), str(v)) for k, v in tags.items()]
    if any(set(k + v) & {",", "="} or not k.strip() or not v.strip() for k, v in pairs):
        return Line("INFLUX_TAGS", _json(tags), "a tag holds ',' or '=': set it by hand", False)
    return _line("INFLUX_TAGS", ",".join(f"{k}={v}" for k, v in pairs))


def _filters(block: dict[str, Any], out: list) -> None:
    for side in ("include", "exclude"):
        section = block.get(side) or {}
        for key, suffix in FILTER_KINDS:
            items = _items(section.get(key))
            if key == "entities":  # cv.entity_ids: a comma-separated string too, lowercased
                items = [e.strip().lower() for item in items for e in str(item).split(",")]
            if items:
                out.append(_line(f"{side.upper()}_{suffix}", ",".join(map(str, items))))


def _items(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    return list(value) if isinstance(value, list) else [value]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _true(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "yes", "on", "1")


def _line(name: str, value: Any, unresolved: list[str] | None = None) -> Line:
    unresolved = unresolved or ([value] if isinstance(value, Unresolved) else [])
    if unresolved:
        why = ", ".join(unresolved)
        return Line(name, str(value), f"needs {why}: --resolve-secrets or fill it in", False)
    return Line(name, str(value))


def render(items: list[Line | str]) -> str:
    return "\n".join(i.render() if isinstance(i, Line) else f"# {i}" for i in items) + "\n"


def convert_file(path: Path, resolve_secrets: bool, environ: dict[str, str] | None = None) -> str:
    resolver = Resolver(path.parent, resolve_secrets, dict(environ or {}))
    block = influxdb_block(load_yaml(path), resolver)
    header = (
        f"Converted from the influxdb: block of {path.name} (python manage.py convert_ha_config)"
    )
    return f"# {header}\n" + render(convert(block, resolve_secrets))
