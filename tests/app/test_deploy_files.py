"""The deployment files: Dockerfile, .dockerignore and deploy/k8s/*.yaml (docs/deploy.md).

This machine has no container daemon and no cluster, so nothing here builds an
image or applies a manifest. What can be checked is: the Dockerfile's and the
manifests' commands parse with the real CLI; their ports agree; the probes and
the HEALTHCHECK ask for routes the server answers (a server started with the
Deployment's own arguments, on a committed export); the user is not root; and
KServe sees a v2 custom predictor.
"""

import fnmatch
import json
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from keras_lstm.app.cli import build_parser
from tests.helpers import free_ports, wait_until_ready

ROOT = Path(__file__).resolve().parents[2]
EXPORT = ROOT / "tests" / "fixtures" / "legacy_73ab711" / "sentiment" / "export"
K8S = ROOT / "deploy" / "k8s"


def dockerfile():
    """The final stage's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text("utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[:last_from], instructions[last_from:]


def instruction(stage, keyword):
    found = [rest for k, rest in stage if k == keyword]
    assert len(found) == 1, f"{keyword}: expected once in the final stage, found {found}"
    return found[0]


def manifest(name):
    (document,) = yaml.safe_load_all((K8S / name).read_text("utf-8"))
    return document


def serve_args(argv):
    """The CLI's parse of a container's `keras-lstm ARGV` (it must be `serve`)."""
    args = build_parser().parse_args(argv)
    assert args.command == "serve", argv
    return args


def image_argv():
    _, final = dockerfile()
    return json.loads(instruction(final, "ENTRYPOINT")), json.loads(instruction(final, "CMD"))


def test_the_dockerfile_serves_the_tensorflow_free_install_as_a_user():
    build, final = dockerfile()
    assert instruction(final, "FROM") == "python:3.11-slim"
    assert any(k == "RUN" and "pip wheel" in rest and "--no-deps" in rest for k, rest in build)
    (install,) = [rest for k, rest in final if k == "RUN" and "pip install" in rest]
    # The wheel alone, without extras: its declared (TensorFlow-free) dependencies.
    assert "/wheels/*.whl" in install and "[" not in install and "-r " not in install
    assert ("ARG", 'EXTRAS=""') in final  # no extras unless asked
    user = instruction(final, "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0
    assert f"--uid {user}" in install
    entrypoint, cmd = image_argv()
    assert entrypoint == ["keras-lstm"]
    args = serve_args(cmd)
    assert (args.targets, args.host) == (["/models/model"], "0.0.0.0")
    assert instruction(final, "EXPOSE") == str(args.port)
    assert "ARG EXPORT=deploy/model" in (ROOT / "Dockerfile").read_text("utf-8")
    assert (ROOT / "deploy" / "model" / "README.md").is_file()
    assert ("COPY", "${EXPORT} /models/model") in final


def _ignored(path, patterns):
    """Whether Docker leaves `path` out of the context (a pattern matches it or a parent)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def test_dockerignore_keeps_the_sources_and_drops_the_rest():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
                if line.strip() and not line.startswith(("#", "!"))]
    for needed in ("pyproject.toml", "README.md", "keras_lstm/app/cli.py",
                   "keras_lstm/app/serving_page.html", "export/publish.py", "lstm_text/tokenizer.py",
                   "deploy/model/README.md", "runs/demo/sentiment/export/model.onnx"):
        assert not _ignored(needed, patterns), needed
    for heavy in (".git/HEAD", "tests/app/test_cli.py", "notebooks/x.ipynb", "web/node_modules/a",
                  "keras_lstm/__pycache__/cli.pyc", "runs/demo/sentiment/splits/train.jsonl"):
        assert _ignored(heavy, patterns), heavy


def _container(document):
    spec = document["spec"]["template"]["spec"] if document["kind"] == "Deployment" else \
        document["spec"]["predictor"]
    (container,) = spec["containers"]
    return spec, container


def _probe_port(container, probe):
    """The container port a probe reaches (a name or a number)."""
    port = container[probe]["httpGet"]["port"]
    by_name = {p.get("name"): p["containerPort"] for p in container["ports"]}
    return by_name[port] if isinstance(port, str) else port


@pytest.mark.parametrize("name", ["deployment.yaml", "inferenceservice.yaml"])
def test_the_manifests_probe_the_port_the_server_listens_on(name):
    document = manifest(name)
    spec, container = _container(document)
    args = serve_args(container["args"])
    (port,) = container["ports"]
    assert port["containerPort"] == args.port and args.host == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    for probe in ("readinessProbe", "livenessProbe"):
        assert _probe_port(container, probe) == args.port
    _, final = dockerfile()
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert str(spec["securityContext"]["runAsUser"]) == instruction(final, "USER").split(":")[0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]


def test_the_service_selects_the_deployment_and_reaches_its_port():
    deployment, service = manifest("deployment.yaml"), manifest("service.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    _, container = _container(deployment)
    names = {p["name"] for p in container["ports"]}
    assert all(p["targetPort"] in names for p in service["spec"]["ports"])


def test_kserve_sees_a_v2_custom_predictor():
    document = manifest("inferenceservice.yaml")
    assert (document["apiVersion"], document["kind"]) == ("serving.kserve.io/v1beta1",
                                                          "InferenceService")
    _, container = _container(document)
    # KServe takes the container named kserve-container as the predictor, and its
    # protocol from the PROTOCOL variable (v1 without it).
    assert container["name"] == "kserve-container"
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PROTOCOL"] == "v2"
    args = serve_args(container["args"])
    # The storage initializer downloads STORAGE_URI to /mnt/models; the URLs carry the
    # InferenceService's name.
    assert "STORAGE_URI" in env and args.targets == ["/mnt/models"]
    assert args.name == document["metadata"]["name"]


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def deployed():
    """A server started with the Deployment's arguments on a committed export."""
    _, container = _container(manifest("deployment.yaml"))
    argv = list(container["args"])
    port = free_ports()[0]
    argv[argv.index("/models/model")] = str(EXPORT)
    argv[argv.index("--port") + 1] = str(port)
    process = subprocess.Popen([sys.executable, "-m", "keras_lstm", *argv], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url)
        yield port
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_probes_and_the_healthcheck_reach_real_routes(deployed):
    port = deployed
    for name in ("deployment.yaml", "inferenceservice.yaml"):
        document = manifest(name)
        _, container = _container(document)
        for probe in ("readinessProbe", "livenessProbe"):
            path = container[probe]["httpGet"]["path"]
            assert _status(f"http://127.0.0.1:{port}{path}") == 200, (name, probe)
        model = serve_args(container["args"]).name
        assert _status(f"http://127.0.0.1:{port}/v2/models/{model}/ready") == 200
    # Docker's HEALTHCHECK, as Docker runs it (exec form), pointed at this server's port.
    _, final = dockerfile()
    options, _, command = instruction(final, "HEALTHCHECK").partition(" CMD ")
    assert "--interval=" in options
    _, cmd = image_argv()
    argv = [part.replace(f":{serve_args(cmd).port}/", f":{port}/") for part in json.loads(command)]
    assert argv[0] == "python" and "/v2/health/ready" in argv[-1]
    assert subprocess.run([sys.executable, *argv[1:]], timeout=30).returncode == 0
    # ... and it fails where no server answers.
    closed = [part.replace(f":{port}/", f":{free_ports()[0]}/") for part in argv]
    result = subprocess.run([sys.executable, *closed[1:]], capture_output=True, timeout=30)
    assert result.returncode != 0, shlex.join(closed)
