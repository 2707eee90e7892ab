"""docker-compose.yml read against the repository, the CLI, the Dockerfile and the README.

There is no Docker engine in CI, so the stack is checked by reading it: every command is one
`engagement` really has, every mounted file exists, the wiring between services matches the
Prometheus and Grafana configs, and the README describes what the file does. The Grafana
read-only login script runs for real against the test PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from cli.main import build_parser
from engagement.db.migrations import migrate
from tests.test_dashboards import expand, sql_queries

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_COMMANDS = {"migrate": "migrate", "service": "serve", "scheduler": "scheduler"}


def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Production with docker compose\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README has no 'Production with docker compose' section"
    return match.group(1)


def depends(name: str) -> dict[str, str]:
    return {dep: spec["condition"] for dep, spec in SERVICES[name].get("depends_on", {}).items()}


def test_the_stack_has_every_part():
    assert set(SERVICES) == {"timescaledb", "migrate", "service", "scheduler", "prometheus",
                             "grafana"}


def test_database_is_timescaledb_community():
    image = SERVICES["timescaledb"]["image"]
    # The plain image carries the Community (TSL) build; "-oss" tags are Apache-only.
    # The 2.28 line is what the suite ran on (make test-timescale); 2.29 dropped PostgreSQL 15.
    assert re.fullmatch(r"timescale/timescaledb(-ha)?:2\.28\.\d+-pg1[5-7]", image), image
    test = " ".join(SERVICES["timescaledb"]["healthcheck"]["test"])
    assert "pg_isready" in test


@pytest.mark.parametrize("name", sorted(APP_COMMANDS))
def test_app_commands_are_real_engagement_subcommands(name):
    service = SERVICES[name]
    command = service["command"]
    assert command[0] == "engagement"
    args = build_parser().parse_args(command[1:])  # exits (fails) on an unknown command
    assert args.command == APP_COMMANDS[name]
    assert service["build"] == "." and service["image"] == SERVICES["service"]["image"]
    env = service["environment"]
    for required in ("DATABASE_URL", "ENGAGEMENT_JWT_SECRET", "ENGAGEMENT_SERVICE_TOKEN",
                     "ENGAGEMENT_SESSION_SECRET"):
        assert env.get(required), (name, required)
    assert "@timescaledb:5432/" in env["DATABASE_URL"]


def test_service_runs_several_workers_on_all_interfaces():
    args = build_parser().parse_args(SERVICES["service"]["command"][1:])
    assert args.host == "0.0.0.0" and args.workers > 1
    port = args.port or 8000
    assert any(str(p).endswith(f":{port}") for p in SERVICES["service"]["ports"])
    test = " ".join(SERVICES["service"]["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/readyz" in test


def test_start_order():
    assert depends("migrate") == {"timescaledb": "service_healthy"}
    assert SERVICES["migrate"]["restart"] == "no"  # one-shot
    assert depends("service") == {"migrate": "service_completed_successfully"}
    assert depends("scheduler") == {"migrate": "service_completed_successfully"}
    assert depends("prometheus")["service"] == "service_healthy"
    assert depends("grafana") == {"prometheus": "service_healthy",
                                  "timescaledb": "service_healthy"}
    for name, service in SERVICES.items():
        if name != "migrate":
            assert "healthcheck" in service, name


def test_mounted_files_exist_in_the_repository():
    mounts = [(name, volume) for name, service in SERVICES.items()
              for volume in service.get("volumes", [])]
    assert mounts
    for name, volume in mounts:
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (ROOT / source).exists(), (name, source)
        else:
            assert source in COMPOSE["volumes"], (name, source)


def test_prometheus_scrapes_the_compose_services():
    volumes = SERVICES["prometheus"]["volumes"]
    assert "./dashboards/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./dashboards/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    assert "--config.file=/etc/prometheus/prometheus.yml" in SERVICES["prometheus"]["command"]
    config = yaml.safe_load((ROOT / "dashboards/prometheus/prometheus.yml").read_text())
    targets = {c["job_name"]: c["static_configs"][0]["targets"] for c in config["scrape_configs"]}
    scheduler_port = SERVICES["scheduler"]["environment"]["ENGAGEMENT_SCHEDULER_PORT"]
    assert targets == {"engagement-service": ["service:8000"],
                       "engagement-scheduler": [f"scheduler:{scheduler_port}"]}
    # the scheduler's metrics server must listen beyond loopback inside its container
    assert SERVICES["scheduler"]["environment"]["ENGAGEMENT_HOST"] == "0.0.0.0"


def test_grafana_gets_its_provisioning_and_what_it_refers_to():
    grafana = SERVICES["grafana"]
    volumes = grafana["volumes"]
    assert "./dashboards/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/engagement.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./dashboards/grafana/dashboards:{path}:ro" in volumes
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (ROOT / "dashboards/grafana/dashboards" /
                                            Path(home).name).exists()
    datasources = (ROOT / "dashboards/grafana/provisioning/datasources/engagement.yml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", datasources):
        assert variable in grafana["environment"], variable
    urls = [d["url"] for d in yaml.safe_load(datasources)["datasources"]]
    assert sorted(urls) == ["http://prometheus:9090", "timescaledb:5432"]
    # the reader login Grafana uses is the one the database container creates
    db_env = SERVICES["timescaledb"]["environment"]
    assert db_env["GRAFANA_DB_USER"] == grafana["environment"]["GRAFANA_DB_USER"]
    assert ("./dashboards/timescaledb/grafana-reader.sh:/docker-entrypoint-initdb.d/"
            "50-grafana-reader.sh:ro") in SERVICES["timescaledb"]["volumes"]


def test_dockerfile_builds_the_package_with_its_console_script():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for part in ("service", "scheduler", "sql"):  # [tool.setuptools.packages.find] include
        assert f"COPY {part} ./{part}" in dockerfile
    assert "COPY pyproject.toml README.md ./" in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.M), "the app must not run as root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_readme_describes_the_compose_file():
    section = readme_section()
    for name, service in SERVICES.items():
        assert f"`{name}`" in section, name
        if name in APP_COMMANDS:
            assert " ".join(service["command"]) in section, name
        if "image" in service and name not in APP_COMMANDS:
            assert service["image"].split(":")[0] in section, name
    assert SERVICES["timescaledb"]["image"] in section
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required >= {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
    for variable in required:
        assert f"{variable}=" in section, f"README's .env example lacks {variable}"
    optional = set(re.findall(r"\$\{(\w+):-", (ROOT / "docker-compose.yml").read_text()))
    for variable in optional:
        assert f"`{variable}`" in section, f"README does not mention {variable}"
    for port in ("8000", "9090", "3000"):
        assert f"localhost:{port}" in section


def test_readme_compose_commands_name_real_services_and_subcommands():
    commands = [line.split("#")[0].strip() for line in readme_section().splitlines()
                if line.startswith("docker compose")]
    assert commands
    for command in commands:
        words = shlex.split(command)
        if words[2] == "run":
            rest = words[3:]
            while rest[0].startswith("-"):  # `docker compose run`'s own options (--rm)
                rest = rest[1:]
            service, program, *args = rest
            assert service in SERVICES
            assert program == "engagement"
            build_parser().parse_args(args)


# --- the Grafana reader login, for real --------------------------------------------------

def test_grafana_reader_script_gives_read_only_access(fresh_server_db, settings_for):
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql not installed (Debian package `postgresql-client`)")
    params = conninfo_to_dict(fresh_server_db)
    reader = f"grafana_t_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PGHOST": str(params.get("host", "127.0.0.1")),
           "PGPORT": str(params.get("port", "5432")), "POSTGRES_USER": str(params["user"]),
           "POSTGRES_DB": str(params["dbname"]), "GRAFANA_DB_USER": reader,
           "GRAFANA_DB_PASSWORD": "reader-secret"}
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    script = ROOT / "dashboards/timescaledb/grafana-reader.sh"
    try:
        # As in the container: the script runs first, `engagement migrate` creates the tables.
        done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        migrate(settings_for(fresh_server_db))
        reader_url = fresh_server_db.replace(f"{params['user']}@", f"{reader}:reader-secret@", 1)
        if params.get("password"):
            reader_url = fresh_server_db.replace(
                f"{params['user']}:{params['password']}@", f"{reader}:reader-secret@", 1)
        with psycopg.connect(reader_url, autocommit=True) as conn:
            end = datetime.now(UTC)
            for _, _title, raw in sql_queries():
                conn.execute(expand(raw, start=end - timedelta(days=7), end=end, project="0"))
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO projects (id, owner_id, is_private, created_at) "
                             "VALUES (1, 1, false, now())")
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM trending_scores")
    finally:
        with psycopg.connect(fresh_server_db, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{reader}"')
            conn.execute(f'DROP ROLE IF EXISTS "{reader}"')
