"""deploy/ and docs/runbook.md: the files parse, say what they must, hold no secret, and the
runbook's commands parse with the real grammar (so the runbook cannot drift from it).
No network, no Docker: the files are read, not run."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from commands import grammar
from commands import usage
from commands.config import load_settings
from commands.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
RUNBOOK = ROOT / "docs" / "runbook.md"
GUIDE_ENVS = ("development", "staging", "production")
ENVIRON = {
    "DBOPS_CONTROL_DATABASE_URL": "postgresql://dbops:ctl-pw@control-db:5432/dbops",
    "DEVELOPMENT_DATABASE_URL": "postgresql://togather:dev-pw@db-dev:5432/togather_dev",
    "STAGING_DATABASE_URL": "postgresql://togather:stg-pw@db-staging:5432/togather",
    "PRODUCTION_DATABASE_URL": "postgresql://togather:prod-pw@db-prod:5432/togather",
}
SECRET_PATTERNS = (
    re.compile(r"xox[abpr]-[0-9A-Za-z]"),              # Slack bot/user tokens
    re.compile(r"xapp-[0-9A-Za-z]"),                    # Slack app-level tokens
    re.compile(r"password\s*=\s*[^\s$'\"{]", re.I),     # password=literal (not ${VAR})
    re.compile(r"postgres(?:ql)?://[^:/@\s]+:[^@$\s{]+@"),  # a URL with a literal password
    re.compile(r"(?:SLACK_SIGNING_SECRET|POSTGRES_PASSWORD)\s*[:=]\s*['\"]?[A-Za-z0-9]{8,}"),
)


def yaml_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def k8s_objects() -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml_documents(path)]


def deployments() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects() if o["kind"] == "Deployment"}


def deploy_text_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and "demo" not in p.relative_to(DEPLOY).parts)


# --- YAML ---

@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert yaml_documents(path), f"{path} has no YAML document"


def test_k8s_manifests_have_the_expected_kinds() -> None:
    kinds = sorted(o["kind"] for o in k8s_objects())
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Service"]
    assert all(o["apiVersion"] in ("v1", "apps/v1") and o["metadata"]["name"] for o in k8s_objects())


def test_two_replicas_of_each_mode_running_dbops_serve_on_port_3000() -> None:
    found = deployments()
    assert set(found) == {"dbops-http", "dbops-socket-mode"}
    for name, deployment in found.items():
        assert deployment["spec"]["replicas"] == 2, name
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        argv = container["command"] + container["args"]
        assert argv[:2] == ["dbops", "serve"], name
        assert argv[argv.index("--port") + 1] == "3000", name
        assert ("--http" in argv) == (name == "dbops-http"), name
        assert {p["containerPort"] for p in container["ports"]} == {3000}
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_readiness_is_health_and_liveness_is_the_port_not_health() -> None:
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 3000}, name
        # /health's 503 means a managed database is dirty: restarting dbops would not fix it.
        assert "httpGet" not in container["livenessProbe"], name
        assert container["livenessProbe"]["tcpSocket"]["port"] == 3000, name


def test_pods_listen_on_their_own_address_for_the_probes() -> None:
    # dbops binds 127.0.0.1 unless given --host; the kubelet probes the pod's address.
    for name, deployment in deployments().items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        argv = container["command"] + container["args"]
        assert argv[argv.index("--host") + 1] == "0.0.0.0", name


def test_the_http_service_routes_to_the_http_pods_on_3000() -> None:
    (service,) = [o for o in k8s_objects() if o["kind"] == "Service"]
    pod_labels = deployments()["dbops-http"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [3000]


def test_pods_run_as_non_root_and_wait_for_operations_to_finish() -> None:
    for name, deployment in deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["terminationGracePeriodSeconds"] >= 600, name
        (container,) = pod["containers"]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name


def test_pods_share_config_and_secret_reference_and_need_no_snapshot_volume() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in k8s_objects()}
    assert not [o for o in k8s_objects() if o["kind"] == "PersistentVolumeClaim"], "snapshots are in object storage"
    assert ("ConfigMap", "dbops-config") in objects
    assert not [o for o in k8s_objects() if o["kind"] == "Secret"], "Secrets are referenced, never written here"
    for name, deployment in deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "snapshots" not in volumes and not any("persistentVolumeClaim" in v for v in volumes.values()), name
        assert volumes["config"]["configMap"]["name"] == "dbops-config", name
        (container,) = pod["containers"]
        assert "/var/lib/togather/db-snapshots" not in {m["mountPath"] for m in container["volumeMounts"]}, name
        assert [e["secretRef"]["name"] for e in container["envFrom"]] == ["dbops-secrets"], name


def test_the_configmap_config_loads(tmp_path: Path) -> None:
    (config,) = [o for o in k8s_objects() if o["kind"] == "ConfigMap"]
    path = tmp_path / "dbops.toml"
    path.write_text(config["data"]["dbops.toml"], encoding="utf-8")
    settings = load_settings(path, environ=ENVIRON)
    assert tuple(settings.environments) == GUIDE_ENVS
    assert all(e.snapshot_dir is None and e.snapshot_url == "s3://togather-db-snapshots/dbops"
               for e in settings.environments.values())


@pytest.mark.parametrize("path", deploy_text_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_literal_secret_in_deploy_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for pattern in SECRET_PATTERNS:
        match = pattern.search(text)
        assert match is None, f"{path.name}: looks like a secret: {match and match.group(0)!r}"
    assert "postgres://user:pass" not in text and "password=" not in text.lower()


def test_the_secret_scan_would_catch_a_secret() -> None:
    for leak in ("SLACK_BOT_TOKEN=xoxb-1234-abcd", "xapp-1-A0-123", "password=hunter2",
                 "postgres://user:pass@db/app", "postgresql://u:s3cret@db:5432/x"):
        assert any(p.search(leak) for p in SECRET_PATTERNS), leak
    for fine in ("postgresql://dbops:${DBOPS_CONTROL_DB_PASSWORD:?}@control-db:5432/dbops", "${PRODUCTION_DATABASE_URL}"):
        assert not any(p.search(fine) for p in SECRET_PATTERNS), fine


# --- the example config ---

def test_the_togather_config_loads_with_the_guides_paths() -> None:
    settings = load_settings(DEPLOY / "togather.dbops.toml", environ=ENVIRON)
    assert tuple(settings.environments) == GUIDE_ENVS
    assert settings.control_database_url == ENVIRON["DBOPS_CONTROL_DATABASE_URL"]
    for name, env in settings.environments.items():
        assert env.database_url == ENVIRON[f"{name.upper()}_DATABASE_URL"]
        assert env.snapshot_dir == Path("/var/lib/togather/db-snapshots")
        assert Path(f"/tmp/togather-migration-{name}.lock") in env.lock_dirs
        assert env.health_url == "http://localhost:8080/health"
        assert env.deployment_state_file is not None
        assert env.deployment_state_file.parts[-3:] == ("deploy", "config", "deployment-state.json")
        assert env.pg_bin_dir == Path("/usr/lib/postgresql/18/bin")
        assert env.channels and env.approvers
    production, development = settings.environment("production"), settings.environment("development")
    assert "up" in production.require_approval
    assert set(development.require_approval) < set(production.require_approval)


def test_the_togather_config_holds_secrets_only_as_variables() -> None:
    text = (DEPLOY / "togather.dbops.toml").read_text(encoding="utf-8")
    urls = re.findall(r'^\s*database_url\s*=\s*"([^"]*)"', text, re.M)
    assert len(urls) == 4 and all(re.fullmatch(r"\$\{[A-Z_]+\}", u) for u in urls)


# --- Dockerfile, compose, systemd ---

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M)]


def test_dockerfile_is_non_root_with_pg_client_and_runs_dbops_serve() -> None:
    instructions = dockerfile_instructions()
    by_kind: dict[str, list[str]] = {}
    for kind, value in instructions:
        by_kind.setdefault(kind, []).append(value)
    assert by_kind["FROM"] == ["python:3.11-slim"]
    user = by_kind["USER"][-1]
    assert user.split(":")[0] not in ("root", "0") and user.startswith("10001")
    run = " ".join(by_kind["RUN"])
    assert "postgresql-client-${PG_MAJOR}" in run and "apt.postgresql.org" in run
    assert re.search(r"ARG PG_MAJOR=1[78]\b", (DEPLOY / "Dockerfile").read_text())
    assert re.search(r"pip install (?:--no-cache-dir )?(?:\.|/opt/dbops/src)(?:;|\s|$)", run)  # dbops from this repo
    entrypoint = by_kind.get("ENTRYPOINT", [""])[-1] + " " + by_kind.get("CMD", [""])[-1]
    assert re.search(r'"dbops",\s*"serve"', entrypoint)
    assert by_kind["EXPOSE"] == ["3000"]
    assert "/health" in by_kind["HEALTHCHECK"][-1]
    assert not any(kind == "ENV" and re.search(r"TOKEN|SECRET|PASSWORD|DATABASE_URL", v) for kind, v in instructions)
    # USER comes after the installs: nothing runs as root at run time.
    kinds = [k for k, _ in instructions]
    assert kinds.index("USER") > max(i for i, k in enumerate(kinds) if k == "RUN")


def test_compose_runs_the_bot_after_a_healthy_postgres_18() -> None:
    (compose,) = yaml_documents(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    db, bot = services["control-db"], services["dbops"]
    assert db["image"] == "postgres:18" and "healthcheck" in db
    assert any(v.split(":")[0] in compose["volumes"] for v in db["volumes"])
    assert bot["depends_on"]["control-db"]["condition"] == "service_healthy"
    assert bot["build"]["dockerfile"] == "deploy/Dockerfile" and "--http" in bot["command"]
    assert "healthcheck" in bot and "/health" in " ".join(bot["healthcheck"]["test"])
    for value in (*db["environment"].values(), *bot["environment"].values()):
        if re.search(r"PASSWORD|://", str(value)):
            assert "${" in str(value), value


def test_systemd_unit_runs_dbops_serve_hardened() -> None:
    text = (DEPLOY / "dbops.service").read_text(encoding="utf-8")
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    (exec_start,) = settings["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/dbops") and argv[1] == "serve" and "--http" in argv
    assert argv[argv.index("--config") + 1] == "/etc/dbops/dbops.toml"
    assert settings["User"] == ["dbops"] and settings["EnvironmentFile"] == ["/etc/dbops/env"]
    assert settings["Restart"] == ["on-failure"] and settings["NoNewPrivileges"] == ["true"]
    assert settings["ProtectSystem"] == ["strict"] and settings["PrivateTmp"] == ["false"]
    assert "/var/lib/togather/db-snapshots" in settings["ReadWritePaths"]
    assert "/tmp" in settings["ReadWritePaths"]  # deploy.sh's lock directories
    assert re.fullmatch(r"\d+min", settings["TimeoutStopSec"][0]) and int(settings["TimeoutStopSec"][0][:-3]) >= 10


# --- the runbook against the grammar ---

PLACEHOLDERS = {
    "NAME": "production_20260128_143022_v20260128002_pre-up",
    "REQUEST": "r1a2b3c4d5e",
    "ENV": "production",
    "VERSION": "5",
    "TEXT": "why",
    "V": "5",
    "N": "2",
}
_COMMAND_START = re.compile(r"^/(?:migrate|snapshot|rollback|dbops)\b")
_SHELL_START = re.compile(r"^dbops (?:migrate|snapshot|rollback|dbops|lock)\b")


# Commands the runbook names as not built yet: they must not parse (when one is built, the
# test below fails: take it out of here and describe it in the runbook). None at present.
NOT_BUILT: set[str] = set()


def runbook_commands() -> list[str]:
    """Every backticked span and every line that starts with a dbops command (not the
    families written with an ellipsis, such as `dbops migrate …`, nor NOT_BUILT)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]+)`", text)
    spans += [line.strip() for line in text.splitlines() if _COMMAND_START.match(line.strip())]
    return [s for s in spans if (_COMMAND_START.match(s) or _SHELL_START.match(s))
            and not s.endswith("…") and s not in NOT_BUILT]


def test_commands_the_runbook_calls_not_built_are_not_in_the_grammar() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    for command in NOT_BUILT:
        assert f"`{command}`" in text and "not built yet" in text
        with pytest.raises(UsageError):
            grammar.parse(command)


def with_samples(command: str) -> str:
    for placeholder, sample in PLACEHOLDERS.items():
        command = re.sub(rf"\b{placeholder}\b", sample, command)
    return command


def test_the_runbook_names_dbops_commands_of_every_family() -> None:
    commands = runbook_commands()
    for family in ("/migrate ", "/snapshot ", "/rollback ", "/dbops ", "dbops migrate ", "dbops lock "):
        assert any(c.startswith(family) for c in commands), family
    for verb in ("status", "validate", "plan", "up", "down", "goto", "force", "dry-run"):
        assert any(c.startswith(f"/migrate {verb}") for c in commands), verb
    for verb in ("list", "create", "verify", "restore", "pin", "unpin", "cleanup"):
        assert any(c.startswith(f"/snapshot {verb}") for c in commands), verb


@pytest.mark.parametrize("command", sorted(set(runbook_commands())))
def test_every_runbook_command_parses_with_the_grammar(command: str) -> None:
    text = with_samples(command)
    if text.startswith("dbops "):
        text = text[len("dbops "):]  # the shell's `dbops migrate …` is the grammar after "dbops"
    parsed = grammar.parse(text)
    assert type(parsed) in grammar.COMMANDS
    if getattr(parsed, "env", None) is not None:
        assert parsed.env in GUIDE_ENVS, f"{command}: environment {parsed.env!r} is not one of the guide's"


def test_the_runbook_covers_every_section_of_the_guide() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    sections = [f"Issue {n}:" for n in range(1, 7)] + [f"Method {n}:" for n in range(1, 4)]
    sections += [f"Scenario {n}:" for n in range(1, 5)]
    sections += ["Quick Diagnosis", "Complete Database Restore", "Reset Migration State", "Monitor snapshot disk usage",
                 "Health Checks", "Rollback Checklist", "Troubleshooting Rollback Issues", "deployment-state.json",
                 "Snapshot Management", "Migration Management", "not provided"]
    missing = [s for s in sections if s not in text]
    assert not missing, f"runbook misses: {missing}"


def test_the_configuration_reference_documents_every_key():
    from commands import config
    reference = (ROOT / "docs" / "configuration.md").read_text()
    keys = set(config._ENVIRONMENT_KEYS) | {k for section in config._SECTION_KEYS.values() for k in section}
    undocumented = sorted(k for k in keys if f"`{k}`" not in reference)
    assert undocumented == []


# --- complete examples ---

def test_the_example_config_names_every_key_the_reference_documents():
    """deploy/dbops.example.toml shows every key, set to its default or (for a key whose default
    is "unset") commented out with a sample value, as docs/configuration.md documents them."""
    from commands import config
    example = (DEPLOY / "dbops.example.toml").read_text(encoding="utf-8")
    keys = set(config._ENVIRONMENT_KEYS) | {k for section in config._SECTION_KEYS.values() for k in section}
    missing = sorted(k for k in keys if not re.search(rf"^[ \t]*(?:#[ \t]*)?{re.escape(k)}[ \t]*=", example, re.M))
    assert missing == []


def test_compose_mounts_the_migrations_directory_the_config_it_copies_names():
    (compose,) = yaml_documents(DEPLOY / "docker-compose.yml")
    mounts = {}
    for volume in compose["services"]["dbops"]["volumes"]:
        read_only = volume.endswith(":ro")
        source, _, target = volume.removesuffix(":ro").rpartition(":")  # the source may hold ${VAR:?…}
        mounts[target] = (source, read_only)
    assert "cp deploy/togather.dbops.toml deploy/dbops.toml" in (DEPLOY / "docker-compose.yml").read_text()
    settings = load_settings(DEPLOY / "togather.dbops.toml", environ=ENVIRON)
    for env in settings.environments.values():
        assert str(env.migrations_dir) in mounts, f"{env.name}: {env.migrations_dir} is not mounted"
        source, read_only = mounts[str(env.migrations_dir)]
        assert read_only and source.startswith("${TOGATHER_MIGRATIONS:?"), source


def test_the_manifests_usage_hints_name_every_subcommand_the_grammar_takes():
    hints = {c["command"]: c["usage_hint"] for c in
             yaml_documents(DEPLOY / "slack-app-manifest.yaml")[0]["features"]["slash_commands"]}
    verbs = {"/migrate": usage.MIGRATE, "/snapshot": usage.SNAPSHOT, "/dbops": usage.DBOPS}
    for command, lines in verbs.items():
        words = set(re.findall(r"[a-z][a-z-]*", hints[command]))
        assert set(lines) <= words, f"{command} hint misses {sorted(set(lines) - words)}"
    for flag in ("--steps", "--to", "--snapshot", "--reason"):
        assert flag in hints["/rollback"]


def test_the_systemd_units_documentation_is_installed_by_its_own_install_steps():
    text = (DEPLOY / "dbops.service").read_text(encoding="utf-8")
    (line,) = [l for l in text.splitlines() if l.startswith("Documentation=")]
    pages = line.removeprefix("Documentation=").split()
    assert pages
    for page in pages:
        assert page.startswith("file:///opt/dbops/docs/"), page
        name = page.rsplit("/", 1)[1]
        assert (ROOT / "docs" / name).is_file(), f"{page}: docs/{name} is not in the repository"
        assert re.search(rf"^#\s+install .*-t /opt/dbops/docs .*docs/{re.escape(name)}\b", text, re.M), \
            f"{page}: no install step puts docs/{name} there"


def test_compose_keeps_snapshots_in_object_storage_not_a_volume() -> None:
    (compose,) = yaml_documents(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    bot = services["dbops"]
    assert not any("db-snapshots" in v for v in bot["volumes"])
    assert bot["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(bot["environment"])
    assert all("${" in str(bot["environment"][k]) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
    assert "snapshot_url = " in (DEPLOY / "docker-compose.yml").read_text()


def test_the_documented_bucket_policy_is_least_privilege_and_covers_what_dbops_calls() -> None:
    text = (ROOT / "docs" / "object-storage.md").read_text(encoding="utf-8")
    (policy,) = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", text, re.S) if '"Statement"' in block]
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert actions == {"s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetObject", "s3:PutObject",
                       "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}
    assert all(s["Effect"] == "Allow" and "*" not in "".join(s["Action"]) for s in policy["Statement"])
    objects = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert all(s["Resource"].endswith("/togather/*") for s in objects)
    listing = [s for s in policy["Statement"] if "s3:ListBucket" in s["Action"]]
    assert all(s["Condition"]["StringLike"]["s3:prefix"] == ["togather/*"] for s in listing)
