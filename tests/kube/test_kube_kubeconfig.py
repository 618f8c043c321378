"""kubeconfig / in-cluster loading, checked the way kubectl would use it, TLS included.

Every test gets an empty HOME, no KUBECONFIG, no in-cluster environment and no proxy, so
nothing on the machine running the tests leaks in. The TLS tests talk to a real HTTPS server
in a thread that requires a client certificate (``ssl.CERT_REQUIRED``) and echoes what it saw.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ipaddress
import json
import os
import ssl
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from infergraph.kube import kubeconfig
from infergraph.kube.kubeconfig import Connection, KubeconfigError, async_client, client, load

# -- fixtures: a clean environment, kubeconfig files ------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", str(tmp_path / "no-service-account"))
    return home


def config(
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, dict[str, Any]] | None = None,
    current: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig document from name -> body maps, as ``kubectl config view`` prints one."""
    document: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    for kind, table in (("cluster", clusters), ("user", users), ("context", contexts)):
        if table is not None:
            document[f"{kind}s"] = [{"name": name, kind: body} for name, body in table.items()]
    if current is not None:
        document["current-context"] = current
    return document


def write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def simple(server: str = "https://10.0.0.1:6443", **user: Any) -> dict[str, Any]:
    """One context ``dev`` -> cluster ``dev`` + user ``me`` (with ``user`` as its body)."""
    return config(
        clusters={"dev": {"server": server}},
        users={"me": user},
        contexts={"dev": {"cluster": "dev", "user": "me"}},
        current="dev",
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- choosing the file and the context --------------------------------------------------------


def test_current_context_with_its_cluster_user_and_namespace(tmp_path: Path) -> None:
    document = config(
        clusters={
            "prod": {"server": "https://prod.example:6443/", "insecure-skip-tls-verify": True},
            "dev": {"server": "https://dev.example"},
        },
        users={"admin": {"token": "prod-token"}, "dev": {"token": "dev-token"}},
        contexts={
            "prod": {"cluster": "prod", "user": "admin", "namespace": "models"},
            "dev": {"cluster": "dev", "user": "dev"},
        },
        current="prod",
    )
    path = write(tmp_path / "config", document)
    connection = load(str(path))
    assert connection.server == "https://prod.example:6443"  # no trailing slash
    assert (connection.context, connection.namespace) == ("prod", "models")
    assert connection.insecure and connection.ca_data is None
    assert connection.auth_headers() == {"Authorization": "Bearer prod-token"}
    assert connection.ssl_context() is False  # insecure and nothing to load

    other = load(str(path), context="dev")
    assert (other.server, other.namespace, other.token) == (
        "https://dev.example",
        "default",
        "dev-token",
    )
    assert other.ssl_context() is True  # httpx's default roots


def test_default_kubeconfig_is_home_kube_config(clean_env: Path) -> None:
    write(clean_env / ".kube" / "config", simple("https://home.example"))
    assert load().server == "https://home.example"


def test_kubeconfig_env_merges_first_file_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(
        tmp_path / "a" / "config",
        config(clusters={"shared": {"server": "https://first"}}, current="from-second-file"),
    )
    second_ca = write(tmp_path / "b" / "certs" / "ca.crt", "SECOND CA")
    second = write(
        tmp_path / "b" / "config",
        config(
            clusters={
                "shared": {"server": "https://second"},  # loses to the first file's
                "own": {"server": "https://own", "certificate-authority": "certs/ca.crt"},
            },
            users={"u": {"token": "t"}},
            contexts={
                "from-second-file": {"cluster": "shared", "user": "u"},
                "own": {"cluster": "own", "user": "u"},
            },
            current="own",  # loses: the first file set current-context
        ),
    )
    missing = tmp_path / "missing" / "config"  # skipped, as kubectl skips it
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(missing), str(first), "", str(second)]))
    connection = load()
    assert (connection.context, connection.server) == ("from-second-file", "https://first")
    own = load(context="own")
    assert own.ca_data == second_ca.read_bytes()  # relative to the second file's directory


def test_explicit_path_beats_kubeconfig_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(write(tmp_path / "env", simple("https://env"))))
    explicit = write(tmp_path / "explicit", simple("https://explicit"))
    assert load(str(explicit)).server == "https://explicit"
    assert load().server == "https://env"


def test_paths_are_relative_to_the_kubeconfig_and_data_is_base64(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "kube" / "pki" / "ca.crt", "CA PEM")
    write(tmp_path / "kube" / "pki" / "me.crt", "CERT PEM")
    write(tmp_path / "kube" / "pki" / "me.key", "KEY PEM")
    write(tmp_path / "kube" / "token", "file-token\n")
    files = config(
        clusters={"c": {"server": "https://c", "certificate-authority": "pki/ca.crt"}},
        users={
            "me": {
                "client-certificate": "pki/me.crt",
                "client-key": "pki/me.key",
                "tokenFile": "token",
            }
        },
        contexts={"c": {"cluster": "c", "user": "me"}},
        current="c",
    )
    path = write(tmp_path / "kube" / "config", files)
    monkeypatch.chdir(tmp_path)  # not the kubeconfig's directory
    connection = load(str(path))
    assert connection.ca_data == b"CA PEM"
    assert (connection.client_cert_data, connection.client_key_data) == (b"CERT PEM", b"KEY PEM")
    assert connection.token_file == str(tmp_path / "kube" / "token")
    assert connection.auth_headers() == {"Authorization": "Bearer file-token"}

    inline = config(
        clusters={"c": {"server": "https://c", "certificate-authority-data": b64(b"CA DATA")}},
        users={"me": {"client-certificate-data": b64(b"C"), "client-key-data": b64(b"K")}},
        contexts={"c": {"cluster": "c", "user": "me"}},
        current="c",
    )
    connection = load(str(write(tmp_path / "inline", inline)))
    assert (connection.ca_data, connection.client_cert_data, connection.client_key_data) == (
        b"CA DATA",
        b"C",
        b"K",
    )


def test_basic_auth_and_anonymous(tmp_path: Path) -> None:
    connection = load(str(write(tmp_path / "c", simple(username="ann", password="s3cret"))))
    assert connection.auth_headers() == {"Authorization": "Basic " + b64(b"ann:s3cret")}
    anonymous = config(clusters={"c": {"server": "https://c"}}, contexts={"c": {"cluster": "c"}})
    connection = load(str(write(tmp_path / "anon", anonymous)), context="c")
    assert connection.auth_headers() == {}


def test_token_file_is_reread_every_60_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = write(tmp_path / "token", "first")
    connection = load(str(write(tmp_path / "c", simple(tokenFile=str(token)))))
    assert connection.auth_headers()["Authorization"] == "Bearer first"
    token.write_text("second")
    assert connection.auth_headers()["Authorization"] == "Bearer first"  # within 60 s
    monkeypatch.setattr(kubeconfig, "TOKEN_FILE_TTL_S", 0.0)
    assert connection.auth_headers()["Authorization"] == "Bearer second"
    token.unlink()  # a failed re-read keeps the last good token, as client-go does
    assert connection.auth_headers()["Authorization"] == "Bearer second"


# -- in-cluster --------------------------------------------------------------------------------


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pod's environment: the service env vars and a service-account directory."""
    account = tmp_path / "serviceaccount"
    write(account / "token", "sa-token-1\n")
    write(account / "ca.crt", "CLUSTER CA")
    write(account / "namespace", "serving\n")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    return account


def test_in_cluster_when_no_kubeconfig(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = load()
    assert connection.server == "https://10.96.0.1:443"
    assert (connection.namespace, connection.context, connection.ca_data) == (
        "serving",
        None,
        b"CLUSTER CA",
    )
    assert connection.auth_headers() == {"Authorization": "Bearer sa-token-1"}
    (pod / "token").write_text("sa-token-2")  # projected tokens rotate
    monkeypatch.setattr(kubeconfig, "TOKEN_FILE_TTL_S", 0.0)
    assert connection.auth_headers() == {"Authorization": "Bearer sa-token-2"}


def test_in_cluster_ipv6_and_default_namespace(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    (pod / "namespace").unlink()
    connection = load(in_cluster=True)
    assert (connection.server, connection.namespace) == ("https://[fd00::1]:443", "default")


def test_kubeconfig_wins_over_in_cluster_unless_forced(pod: Path, clean_env: Path) -> None:
    write(clean_env / ".kube" / "config", simple("https://laptop"))
    assert load().server == "https://laptop"
    assert load(in_cluster=True).server == "https://10.96.0.1:443"
    write(clean_env / ".kube" / "config", "")  # an empty kubeconfig falls back, as in client-go
    assert load().server == "https://10.96.0.1:443"


def test_in_cluster_errors(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KubeconfigError, match="cannot be combined with in-cluster"):
        load("x", in_cluster=True)
    with pytest.raises(KubeconfigError, match="no Kubernetes cluster configured") as info:
        load(in_cluster=False)
    assert "inside a cluster" not in str(info.value)
    (pod / "token").unlink()
    with pytest.raises(
        KubeconfigError, match=r"no service-account token at .*serviceaccount/token"
    ):
        load()
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT")
    with pytest.raises(
        KubeconfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
    ):
        load(in_cluster=True)


# -- error messages ----------------------------------------------------------------------------


def test_nothing_configured(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(KubeconfigError) as info:
        load()
    assert str(info.value) == (
        f"no Kubernetes cluster configured: no kubeconfig at {clean_env / '.kube' / 'config'} "
        "(set KUBECONFIG or pass --kubeconfig) and not running inside a cluster"
    )
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path}/a{os.pathsep}{tmp_path}/b")
    with pytest.raises(KubeconfigError, match=r"none of the KUBECONFIG files exist .*/a.*/b"):
        load()
    with pytest.raises(KubeconfigError, match=r"kubeconfig /nonexistent/config does not exist"):
        load("/nonexistent/config")


def test_unknown_context_cluster_user_list_the_available_ones(tmp_path: Path) -> None:
    document = config(
        clusters={"a": {"server": "https://a"}, "b": {"server": "https://b"}},
        users={"u1": {}, "u2": {}},
        contexts={
            "good": {"cluster": "a", "user": "u1"},
            "no-cluster": {"cluster": "gone", "user": "u1"},
            "no-user": {"cluster": "a", "user": "ghost"},
            "unnamed": {"user": "u1"},
        },
    )
    path = write(tmp_path / "config", document)
    with pytest.raises(KubeconfigError) as info:
        load(str(path), context="typo")
    assert str(info.value) == (
        f"context 'typo' is not in {path} (available contexts: good, no-cluster, no-user, unnamed)"
    )
    with pytest.raises(
        KubeconfigError, match=r"names cluster 'gone', which is not in .*clusters: a, b\)"
    ):
        load(str(path), context="no-cluster")
    with pytest.raises(KubeconfigError, match=r"names user 'ghost', which .*users: u1, u2\)"):
        load(str(path), context="no-user")
    with pytest.raises(KubeconfigError, match=r"context 'unnamed' in .* names no cluster"):
        load(str(path), context="unnamed")
    with pytest.raises(
        KubeconfigError, match=r"no current-context in .*; pass --context \(available: good,"
    ):
        load(str(path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clusters: [unclosed", "is not valid YAML"),
        ("- a list", "is not a YAML mapping"),
        ("clusters: {a: 1}", "clusters is not a list"),
        ("users: [{user: {}}]", "an entry of users has no name"),
        ("contexts: [{name: c, context: [1]}]", "context 'c' is not a mapping"),
    ],
)
def test_malformed_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "broken.yaml", text)
    with pytest.raises(KubeconfigError, match=message) as info:
        load(str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        ({"server": ""}, {}, r"cluster 'dev' in .* has no server"),
        (
            {"certificate-authority-data": "not base64!"},
            {},
            "certificate-authority-data is not valid base64",
        ),
        (
            {"certificate-authority": "missing.crt"},
            {},
            r"cannot read certificate-authority .*missing.crt",
        ),
        (
            {"insecure-skip-tls-verify": True, "certificate-authority-data": b64(b"x")},
            {},
            "both insecure",
        ),
        ({}, {"token": "t", "username": "u"}, "user 'me' in .* sets both a token and a username"),
        (
            {},
            {"client-certificate-data": b64(b"c")},
            "needs both client-certificate and client-key",
        ),
        ({}, {"client-key-data": "%%%"}, "client-key-data is not valid base64"),
    ],
)
def test_invalid_entries(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], message: str
) -> None:
    document = simple(**user)
    document["clusters"][0]["cluster"] = {"server": "https://s", **cluster}
    with pytest.raises(KubeconfigError, match=message):
        load(str(write(tmp_path / "config", document)))


@pytest.mark.parametrize(
    ("provider", "plugin"),
    [("gcp", "gke-gcloud-auth-plugin"), ("azure", "kubelogin"), ("oidc", "kubelogin's oidc-login")],
)
def test_auth_provider_points_to_the_exec_plugin(
    tmp_path: Path, provider: str, plugin: str
) -> None:
    path = write(tmp_path / "config", simple(**{"auth-provider": {"name": provider, "config": {}}}))
    with pytest.raises(
        KubeconfigError, match=f"auth-provider '{provider}'.*exec credential plugin {plugin}"
    ):
        load(str(path))


# -- exec credential plugins -------------------------------------------------------------------

PLUGIN = """\
#!{python}
import json, os, sys
log = os.environ["PLUGIN_LOG"]
with open(log, "a") as out:
    out.write(json.dumps({{
        "argv": sys.argv[1:],
        "info": json.loads(os.environ["KUBERNETES_EXEC_INFO"]),
        "greeting": os.environ.get("PLUGIN_GREETING"),
        "inherited": os.environ.get("INHERITED_FROM_PARENT"),
    }}) + "\\n")
runs = sum(1 for _ in open(log))
mode = os.environ.get("PLUGIN_MODE", "token")
if mode == "fail":
    print("error: the SSO session has expired", file=sys.stderr)
    sys.exit(3)
if mode == "garbage":
    print("Please log in at https://example.invalid")
    sys.exit(0)
status = {{"token": "exec-token-%d" % runs}}
if mode == "cert":
    status = {{
        "clientCertificateData": open(os.environ["PLUGIN_CERT"]).read(),
        "clientKeyData": open(os.environ["PLUGIN_KEY"]).read(),
    }}
if os.environ.get("PLUGIN_EXPIRES"):
    status["expirationTimestamp"] = os.environ["PLUGIN_EXPIRES"]
api = os.environ.get("PLUGIN_API", json.loads(os.environ["KUBERNETES_EXEC_INFO"])["apiVersion"])
print(json.dumps({{"apiVersion": api, "kind": "ExecCredential", "status": status}}))
"""


@dataclass
class Plugin:
    command: Path
    log: Path

    def runs(self) -> list[dict[str, Any]]:
        return (
            [json.loads(line) for line in self.log.read_text().splitlines()]
            if self.log.exists()
            else []
        )

    def exec(self, api: str = "client.authentication.k8s.io/v1", **env: str) -> dict[str, Any]:
        """A ``users[].user.exec`` block running this plugin with ``env`` in its env list."""
        variables = {"PLUGIN_LOG": str(self.log), **env}
        return {
            "apiVersion": api,
            "command": str(self.command),
            "args": ["get-token", "--cluster", "dev"],
            "env": [{"name": name, "value": value} for name, value in variables.items()],
            "interactiveMode": "Never",
        }


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    command = tmp_path / "bin" / "kube-login"
    write(command, PLUGIN.format(python=sys.executable))
    command.chmod(0o755)
    return Plugin(command, tmp_path / "plugin.log")


def _stamp(delta: dt.timedelta) -> str:
    return (dt.datetime.now(dt.UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "api", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]
)
def test_exec_plugin_gets_args_env_and_exec_info(
    tmp_path: Path, plugin: Plugin, api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INHERITED_FROM_PARENT", "yes")
    path = write(tmp_path / "config", simple(exec=plugin.exec(api, PLUGIN_GREETING="hello")))
    connection = load(str(path))
    assert plugin.runs() == []  # run lazily, not by load()
    assert connection.auth_headers() == {"Authorization": "Bearer exec-token-1"}
    assert connection.auth_headers() == {
        "Authorization": "Bearer exec-token-1"
    }  # no expiry: cached
    [run] = plugin.runs()
    assert run["argv"] == ["get-token", "--cluster", "dev"]
    assert (run["greeting"], run["inherited"]) == ("hello", "yes")
    assert run["info"] == {
        "apiVersion": api,
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }


def test_exec_credential_is_cached_until_it_expires(tmp_path: Path, plugin: Plugin) -> None:
    fresh = write(
        tmp_path / "fresh", simple(exec=plugin.exec(PLUGIN_EXPIRES=_stamp(dt.timedelta(hours=1))))
    )
    connection = load(str(fresh))
    assert [connection.auth_headers() for _ in range(3)] == [
        {"Authorization": "Bearer exec-token-1"}
    ] * 3
    stale = write(
        tmp_path / "stale",
        simple(exec=plugin.exec(PLUGIN_EXPIRES=_stamp(-dt.timedelta(seconds=1)))),
    )
    connection = load(str(stale))
    tokens = [connection.auth_headers()["Authorization"] for _ in range(2)]
    assert tokens == ["Bearer exec-token-2", "Bearer exec-token-3"]  # expired: run every time


def test_exec_relative_command_and_cluster_info(tmp_path: Path, plugin: Plugin) -> None:
    block = {**plugin.exec(), "command": "./bin/kube-login", "provideClusterInfo": True}
    document = simple(exec=block)
    document["clusters"][0]["cluster"] = {
        "server": "https://10.0.0.1:6443",
        "certificate-authority-data": b64(b"CA"),
        "tls-server-name": "kube.internal",
        "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "x"}}
        ],
    }
    load(str(write(tmp_path / "config", document))).auth_headers()
    [run] = plugin.runs()
    assert run["info"]["spec"]["cluster"] == {
        "server": "https://10.0.0.1:6443",
        "tls-server-name": "kube.internal",
        "certificate-authority-data": b64(b"CA"),
        "config": {"audience": "x"},
    }


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"PLUGIN_MODE": "fail"},
            r"'.*kube-login' exited with status 3: error: the SSO session has expired"
            r"\n\nRun aws sso login",
        ),
        ({"PLUGIN_MODE": "garbage"}, "printed no ExecCredential JSON"),
        (
            {"PLUGIN_API": "client.authentication.k8s.io/v1beta1"},
            "printed apiVersion .*v1beta1.*asks .*v1'",
        ),
        ({"PLUGIN_EXPIRES": "next tuesday"}, "expirationTimestamp 'next tuesday', not RFC 3339"),
        (
            {"apiVersion": "client.authentication.k8s.io/v1alpha1"},
            "apiVersion .*v1alpha1.*supported",
        ),
        (
            {"command": "/nonexistent/aws-iam-authenticator"},
            "which is not installed\n\nRun aws sso login",
        ),
        ({"interactiveMode": "Always"}, "needs interactiveMode Always"),
    ],
)
def test_exec_plugin_errors(
    tmp_path: Path, plugin: Plugin, block: dict[str, str], message: str
) -> None:
    env = {key: value for key, value in block.items() if key.startswith("PLUGIN_")}
    fields = {key: value for key, value in block.items() if not key.startswith("PLUGIN_")}
    exec_block = {**plugin.exec(**env), **fields, "installHint": "Run aws sso login"}
    connection = load(str(write(tmp_path / "config", simple(exec=exec_block))))
    with pytest.raises(KubeconfigError, match=f"^user 'me': exec credential plugin .*{message}"):
        connection.auth_headers()


# -- TLS against a real HTTPS server -----------------------------------------------------------


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a server cert (127.0.0.1, kube.test) and a client cert; plus an unrelated CA."""
    x509 = pytest.importorskip("cryptography.x509")

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)

    def issue(cn: str, issuer: tuple[Any, Any] | None, **kind: Any) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer_cert, signer_key = issuer or (None, key)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(signer_cert.subject if signer_cert else name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(
                x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True
            )
        )
        if issuer is None:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            ).add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([kind["usage"]]), critical=False)
        if kind.get("sans"):
            builder = builder.add_extension(
                x509.SubjectAlternativeName(kind["sans"]), critical=False
            )
        return builder.sign(signer_key, hashes.SHA256()), key

    def save(stem: str, pair: tuple[Any, Any]) -> tuple[Path, Path]:
        cert, key = pair
        cert_path, key_path = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path

    ca = issue("infergraph-test-ca", None)
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("kube.test")]
    server = issue("kube-apiserver", ca, usage=ExtendedKeyUsageOID.SERVER_AUTH, sans=sans)
    user = issue("jane", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        ca=save("ca", ca)[0],
        other_ca=save("other-ca", issue("someone-else", None))[0],
        server_cert=save("server", server)[0],
        server_key=folder / "server.key",
        client_cert=save("client", user)[0],
        client_key=folder / "client.key",
    )


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers with the Authorization header and the client certificate's common name.

    ``/secure`` answers 401 unless the token is ``good`` (for the refresh-on-401 test).
    """

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization")
        subject = dict(pair for rdn in self.connection.getpeercert()["subject"] for pair in rdn)
        denied = self.path == "/secure" and authorization != "Bearer good"
        body = json.dumps(
            {"path": self.path, "authorization": authorization, "cn": subject["commonName"]}
        )
        self.send_response(401 if denied else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TlsServer(http.server.ThreadingHTTPServer):
    """Handshakes in the request thread, so a refused client never stalls the accept loop."""

    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            connection = self.tls.wrap_socket(request, server_side=True)
        except OSError:  # no client certificate, or the client rejected ours
            return
        with connection:
            self.RequestHandlerClass(connection, client_address, self)


@pytest.fixture(scope="session")
def apiserver(pki: Pki) -> Iterator[str]:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(pki.server_cert, pki.server_key)
    tls.load_verify_locations(pki.ca)
    tls.verify_mode = ssl.CERT_REQUIRED
    server = _TlsServer(tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def tls_config(
    tmp_path: Path, apiserver: str, pki: Pki, cluster: dict[str, Any] | None = None, **user: Any
) -> Path:
    """A kubeconfig for the test API server: CA by path, client cert/key as data, plus ``user``."""
    document = simple(
        apiserver,
        **{
            "client-certificate-data": b64(pki.client_cert.read_bytes()),
            "client-key-data": b64(pki.client_key.read_bytes()),
            **user,
        },
    )
    document["clusters"][0]["cluster"].update(cluster or {"certificate-authority": str(pki.ca)})
    return write(tmp_path / "config", document)


def test_client_certificate_and_ca_from_kubeconfig(
    tmp_path: Path, apiserver: str, pki: Pki
) -> None:
    with client(load(str(tls_config(tmp_path, apiserver, pki)))) as http:
        response = http.get("/version")
    assert response.status_code == 200
    assert response.json() == {"path": "/version", "authorization": None, "cn": "jane"}
    assert not list(Path(tempfile.gettempdir()).glob("infergraph-kube-*"))  # key file deleted


def test_bearer_token_over_tls(tmp_path: Path, apiserver: str, pki: Pki) -> None:
    with client(load(str(tls_config(tmp_path, apiserver, pki, token="abc")))) as http:
        assert http.get("/version").json()["authorization"] == "Bearer abc"


async def test_async_client(tmp_path: Path, apiserver: str, pki: Pki) -> None:
    path = tls_config(
        tmp_path, apiserver, pki, cluster={"certificate-authority-data": b64(pki.ca.read_bytes())}
    )
    async with async_client(load(str(path)), timeout=5) as http:
        response = await http.get("/version")
    assert response.json()["cn"] == "jane"


def test_wrong_ca_fails_verification(tmp_path: Path, apiserver: str, pki: Pki) -> None:
    path = tls_config(
        tmp_path, apiserver, pki, cluster={"certificate-authority": str(pki.other_ca)}
    )
    with (
        client(load(str(path))) as http,
        pytest.raises(httpx.ConnectError, match="certificate verify failed"),
    ):
        http.get("/version")


def test_tls_server_name_is_what_the_certificate_is_checked_against(
    tmp_path: Path, apiserver: str, pki: Pki
) -> None:
    right = tls_config(
        tmp_path,
        apiserver,
        pki,
        cluster={"certificate-authority": str(pki.ca), "tls-server-name": "kube.test"},
    )
    with client(load(str(right))) as http:
        assert http.get("/version").status_code == 200
    wrong = tls_config(
        tmp_path,
        apiserver,
        pki,
        cluster={"certificate-authority": str(pki.ca), "tls-server-name": "other.test"},
    )
    with (
        client(load(str(wrong))) as http,
        pytest.raises(httpx.ConnectError, match=r"Hostname mismatch|doesn't match"),
    ):
        http.get("/version")


def test_exec_plugin_client_certificate(
    tmp_path: Path, apiserver: str, pki: Pki, plugin: Plugin
) -> None:
    block = plugin.exec(
        PLUGIN_MODE="cert", PLUGIN_CERT=str(pki.client_cert), PLUGIN_KEY=str(pki.client_key)
    )
    document = simple(apiserver, exec=block)
    document["clusters"][0]["cluster"]["certificate-authority"] = str(pki.ca)
    with client(load(str(write(tmp_path / "config", document)))) as http:
        assert http.get("/version").json() == {
            "path": "/version",
            "authorization": None,
            "cn": "jane",
        }
    assert len(plugin.runs()) == 1


def test_401_rereads_the_token_file_and_retries_once(
    tmp_path: Path, apiserver: str, pki: Pki
) -> None:
    token = write(tmp_path / "token", "old")
    with client(load(str(tls_config(tmp_path, apiserver, pki, tokenFile=str(token))))) as http:
        assert http.get("/secure").status_code == 401  # "old" is cached, then re-read: still old
        token.write_text("good")  # rotated within the 60 s
        assert http.get("/secure").status_code == 200


def test_bad_client_key_is_a_kubeconfig_error(tmp_path: Path, pki: Pki) -> None:
    document = simple(
        **{
            "client-certificate-data": b64(pki.client_cert.read_bytes()),
            "client-key-data": b64(b"junk"),
        }
    )
    connection = load(str(write(tmp_path / "config", document)))
    with pytest.raises(KubeconfigError, match="context 'dev': cannot load its TLS certificates"):
        connection.ssl_context()


def test_connection_repr_hides_secrets() -> None:
    connection = Connection(
        server="https://x", token="tok-secret", password="pw-secret", client_key_data=b"key-secret"
    )
    assert connection == Connection(
        server="https://x", token="tok-secret", password="pw-secret", client_key_data=b"key-secret"
    )
    assert "secret" not in repr(connection)


def test_the_server_really_requires_a_client_certificate(
    tmp_path: Path, apiserver: str, pki: Pki
) -> None:
    """Without this, the tests above could pass with the client certificate ignored."""
    document = simple(apiserver, token="abc")
    document["clusters"][0]["cluster"]["certificate-authority"] = str(pki.ca)
    connection = load(str(write(tmp_path / "config", document)))
    with client(connection) as http, pytest.raises(httpx.TransportError):
        http.get("/version")
