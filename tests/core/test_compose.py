"""The Docker Compose deployment agrees with the code: settings names, ports, pins, volumes, health."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from core.config import ENV_PREFIX, Settings
from ui import entrypoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # "KEY=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_every_embedscope_variable_is_a_setting(compose: dict) -> None:
    fields = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    seen = [name for service in compose["services"].values() for name in _env(service)
            if name.startswith(ENV_PREFIX)]
    assert seen, "the dashboard should be configured through EMBEDSCOPE_* variables"
    assert set(seen) <= fields, f"unknown settings: {sorted(set(seen) - fields)}"


def test_dashboard_points_at_the_qdrant_service(compose: dict) -> None:
    services = compose["services"]
    env = _env(services["dashboard"])
    url = env["EMBEDSCOPE_QDRANT_URL"]
    host, port = re.match(r"^http://([\w.-]+):(\d+)/?$", url).groups()
    assert host == "qdrant" and host in services
    assert port == "6333"
    assert services["dashboard"]["depends_on"]["qdrant"]["condition"] == "service_healthy"
    # The optional API key reaches both sides from the same variable.
    assert "EMBEDSCOPE_QDRANT_API_KEY" in env["EMBEDSCOPE_QDRANT_API_KEY"]
    assert "EMBEDSCOPE_QDRANT_API_KEY" in _env(services["qdrant"])["QDRANT__SERVICE__API_KEY"]


def test_ports_agree(compose: dict) -> None:
    services = compose["services"]
    dash_ports = [str(p) for p in services["dashboard"]["ports"]]
    assert any(p.endswith(":8501") for p in dash_ports)
    assert any(p.endswith(":6333") for p in (str(p) for p in services["qdrant"]["ports"]))
    streamlit_cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert streamlit_cfg["server"]["port"] == 8501 == entrypoint.PORT
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "EXPOSE 8501" in dockerfile
    assert "--server.port=8501" in entrypoint.streamlit_flags(Settings())


def test_images_are_pinned(compose: dict) -> None:
    image = compose["services"]["qdrant"]["image"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", image), image
    first_line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                      if line.startswith("FROM "))
    assert ":latest" not in first_line and re.search(r":\d+\.\d+", first_line)


def test_volumes_are_named_and_mounted(compose: dict) -> None:
    declared = set(compose["volumes"])
    mounts = {
        name: [str(v).split(":")[0] for v in service.get("volumes", [])]
        for name, service in compose["services"].items()
    }
    assert any(src in declared for src in mounts["qdrant"]), "Qdrant storage must be a named volume"
    assert any(src in declared for src in mounts["dashboard"]), "uploads/thumbnails need a volume"
    data_dir = _env(compose["services"]["dashboard"])["EMBEDSCOPE_DATA_DIR"]
    assert any(str(v).split(":")[1] == data_dir for v in compose["services"]["dashboard"]["volumes"])


def test_healthchecks_present(compose: dict) -> None:
    for name, path in (("qdrant", "/readyz"), ("dashboard", "/_stcore/health")):
        check = compose["services"][name]["healthcheck"]
        assert path in " ".join(map(str, check["test"])), name
        assert check["interval"] and check["retries"] >= 3


def test_upload_limits_agree() -> None:
    streamlit_cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert streamlit_cfg["server"]["maxUploadSize"] == Settings.model_fields["max_upload_mb"].default
    assert streamlit_cfg["browser"]["gatherUsageStats"] is False


def test_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", ".git", ".embedscope-data"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    # torch comes alone from the CPU index before the project (never the CUDA wheels).
    torch_at = dockerfile.index("pip install torch==")
    assert "download.pytorch.org/whl/cpu" in dockerfile[torch_at:].splitlines()[0]
    assert torch_at < dockerfile.index('pip install ".[offline-models,auth]"')
    assert "USER " in dockerfile  # the dashboard does not run as root


# --- safe by default (issue 13): the Compose file as `docker compose` would interpolate it ---------------------

_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
MANDATORY = ("EMBEDSCOPE_QDRANT_API_KEY", "EMBEDSCOPE_AUTH_CLIENT_ID", "EMBEDSCOPE_AUTH_CLIENT_SECRET",
             "EMBEDSCOPE_AUTH_SERVER_METADATA_URL", "EMBEDSCOPE_AUTH_REDIRECT_URI")


class MissingVariable(Exception):
    """A `${NAME:?message}` without a value: `docker compose` stops with the message."""


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${V}, ${V:-default}, ${V-default}, ${V:?message}, ${V?message}, $$."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m["name"], m["op"], m["arg"]
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":?", "?") and empty:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and empty:
            return arg
        return value or ""
    return _VAR.sub(one, text.replace("$$", "\0")).replace("\0", "$")


def resolve(node: object, env: dict[str, str]) -> object:
    """Every string of a parsed Compose node interpolated."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return node


def _host_ip(port: object) -> str:
    if isinstance(port, dict):  # long syntax
        return str(port.get("host_ip", "0.0.0.0"))
    parts = str(port).split("/")[0].rsplit(":", 2)
    return parts[0] if len(parts) == 3 else "0.0.0.0"  # "HOST:CONTAINER" or "CONTAINER" bind every interface


def test_only_the_https_proxy_listens_beyond_loopback(compose: dict) -> None:
    for name, service in compose["services"].items():
        if name == "caddy":
            continue
        for port in service.get("ports", []):
            assert _host_ip(port) == "127.0.0.1", f"{name} publishes {port} on every interface"
    caddy_ports = {str(p).split(":")[-1] for p in compose["services"]["caddy"]["ports"]}
    assert caddy_ports == {"80", "443", "443/udp"}


def test_sign_in_and_the_qdrant_key_are_mandatory(compose: dict) -> None:
    services = compose["services"]
    env = _env(services["dashboard"])
    assert env["EMBEDSCOPE_AUTH_REQUIRED"] == "true"
    for name in MANDATORY:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), f"{name} must be ${{{name}:?message}}"
        full = {n: "x" for n in MANDATORY}
        del full[name]
        with pytest.raises(MissingVariable, match=name):
            resolve(services["dashboard"], full)
    # Qdrant gets the very key the dashboard sends; an empty .env entry counts as missing.
    assert _env(services["qdrant"])["QDRANT__SERVICE__API_KEY"].startswith("${EMBEDSCOPE_QDRANT_API_KEY:?")
    with pytest.raises(MissingVariable):
        resolve(services["qdrant"], {"EMBEDSCOPE_QDRANT_API_KEY": ""})
    resolved = resolve(services["dashboard"], {n: f"value-of-{n}" for n in MANDATORY})
    assert isinstance(resolved, dict)
    assert resolved["environment"]["EMBEDSCOPE_AUTH_CLIENT_ID"] == "value-of-EMBEDSCOPE_AUTH_CLIENT_ID"


def test_roles_reach_the_dashboard_with_the_settings_defaults(compose: dict) -> None:
    resolved = resolve(compose["services"]["dashboard"], {n: "x" for n in MANDATORY})
    assert isinstance(resolved, dict)
    env = resolved["environment"]
    fields = Settings.model_fields
    for name in ("role_admins", "role_editors", "role_viewers", "role_claim", "default_role"):
        key = f"{ENV_PREFIX}{name.upper()}"
        assert key in env, key
        default = fields[name].default
        assert env[key] == (",".join(default) if isinstance(default, tuple) else str(default)), key


def test_profile_services_need_no_variable(compose: dict) -> None:
    # Compose interpolates every service, also those of profiles not started: a "${X:?}" in the caddy service
    # would make a plain `docker compose up` fail for everyone without the https profile.
    caddy = compose["services"]["caddy"]
    assert caddy["profiles"] == ["https"]
    resolve(caddy, {})
    command = " ".join(map(str, caddy["command"]))
    assert '[ -n "$$DOMAIN" ]' in command and "exit 2" in command and "DASHBOARD_DOMAIN" in command
    assert _env(caddy)["DOMAIN"] == "${DASHBOARD_DOMAIN:-}"
    assert caddy["depends_on"]["dashboard"]["condition"] == "service_healthy"
    assert re.fullmatch(r"caddy:\d+\.\d+\.\d+(-alpine)?", caddy["image"]), caddy["image"]


def test_caddyfile_proxies_https_to_the_dashboard(compose: dict) -> None:
    caddy = compose["services"]["caddy"]
    mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in caddy["volumes"]}
    source = mounts["/etc/caddy/Caddyfile"]
    caddyfile = (ROOT / source).read_text()
    lines = [line.split("#")[0].strip() for line in caddyfile.splitlines()]
    lines = [line for line in lines if line]
    # One site: the domain from the environment (automatic HTTPS), proxying to the dashboard service's port.
    assert lines[0] == "{$DOMAIN} {"
    proxies = [line.split()[1] for line in lines if line.startswith("reverse_proxy ")]
    assert proxies == [f"dashboard:{entrypoint.PORT}"]
    assert "dashboard" in compose["services"]
    # Websockets: nothing strips the Upgrade / Connection headers Streamlit's /_stcore/stream needs.
    assert not any(re.search(r"header_(up|down)\s+-(Upgrade|Connection)", line, re.I) for line in lines)
    assert not any(line.startswith(("tls internal", "auto_https off", "http://")) for line in lines)
    assert any(line.startswith("Strict-Transport-Security") for line in lines)
    # Caddy's certificates survive a re-created container.
    assert {"caddy_data", "caddy_config"} <= set(compose["volumes"]) & set(mounts.values())


def test_xsrf_on_and_the_upload_limit_from_the_settings(compose: dict) -> None:
    resolved = resolve(compose["services"]["dashboard"], {n: "x" for n in MANDATORY})
    assert isinstance(resolved, dict)
    limit_mb = int(resolved["environment"]["EMBEDSCOPE_MAX_UPLOAD_MB"])
    flags = entrypoint.streamlit_flags(Settings(max_upload_mb=limit_mb))
    assert "--server.enableXsrfProtection=true" in flags
    # Streamlit's enableCORS=true is its CORS *protection*; false would also switch XSRF protection off.
    assert "--server.enableCORS=true" in flags
    assert f"--server.maxUploadSize={limit_mb}" in flags
    assert "--server.headless=true" in flags and "--global.developmentMode=false" in flags
    assert len({flag.split("=")[0] for flag in flags}) == len(flags), "a flag given twice"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "ui.entrypoint"]' in dockerfile
    assert "ui.serve" not in "".join(line for line in dockerfile.splitlines() if line.startswith(("CMD", "ENTRY")))


_SIZE = re.compile(r"\d+(\.\d+)?[kmg]", re.I)


def test_every_service_is_hardened_and_limited(compose: dict) -> None:
    for name, raw in compose["services"].items():
        service = resolve(raw, {n: "x" for n in MANDATORY})
        assert isinstance(service, dict)
        assert service["read_only"] is True, name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service["cap_drop"] == ["ALL"], name
        assert set(service.get("cap_add", [])) <= {"NET_BIND_SERVICE"}, name
        assert any(str(t).split(":")[0] == "/tmp" for t in service["tmpfs"]), f"{name}: /tmp for temp files"
        limits = service["deploy"]["resources"]["limits"]
        assert float(limits["cpus"]) > 0, name
        assert _SIZE.fullmatch(str(limits["memory"])), f"{name}: memory {limits['memory']}"
        assert int(limits["pids"]) >= 256, name
        assert "privileged" not in service and service.get("network_mode") != "host", name
    # With a read-only root filesystem, whatever a service writes needs a volume or a tmpfs.
    qdrant = compose["services"]["qdrant"]
    targets = {str(v).split(":")[1] for v in qdrant["volumes"]}
    assert {"/qdrant/storage", "/qdrant/snapshots"} <= targets
    init = _env(qdrant)["QDRANT_INIT_FILE_PATH"]
    assert any(init.startswith(str(t).split(":")[0] + "/") for t in qdrant["tmpfs"])
    dockerfile = (ROOT / "Dockerfile").read_text()
    for variable in ("NUMBA_CACHE_DIR", "HF_HOME", "XDG_CACHE_HOME"):
        value = re.search(rf"{variable}=(\S+)", dockerfile)
        assert value and value.group(1).startswith("/data/"), f"{variable} must point into the /data volume"
    user = re.search(r"^USER\s+(\S+)", dockerfile, re.M)
    assert user and user.group(1) not in ("root", "0")


def test_dockerfile_extras_exist() -> None:
    # A missing extra is only a pip warning: the image would start without Authlib and refuse sign-in.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = re.search(r'pip install "\.\[([\w,-]+)\]"', (ROOT / "Dockerfile").read_text())
    assert wanted
    assert "auth" in wanted.group(1).split(",")
    assert set(wanted.group(1).split(",")) <= set(extras)


def test_env_example_lists_every_variable(compose: dict) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = {m["name"] for m in _VAR.finditer(text)}
    example = {line.split("=", 1)[0] for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    assert used == example, f"missing: {sorted(used - example)}, unused: {sorted(example - used)}"
