"""The first hour, as a new user makes its mistakes: each one is a line on stderr that says what
is wrong, a non-zero exit and no traceback. Every case runs the installed entry points
(`capliquify`, `kubectl-capliquify`) as subprocesses, as a user would, against files made here,
a port nothing listens on, and a local API server that refuses (403, 401, 404)."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import typing

import pytest

BIN = pathlib.Path(sys.executable).parent
CAPLIQUIFY = str(BIN / "capliquify")
PLUGIN = str(BIN / "kubectl-capliquify")
V = "apiVersion: ops.capliquify.io/v1alpha1\n"
SCP = V + "kind: ScalingPolicy\nmetadata: {name: web}\nspec:\n  targetRef: {monitoredService: web}\n"
MSVC = V + "kind: MonitoredService\nmetadata: {name: web}\nspec:\n  target: {kubernetes: {name: web}}\n"
CHECK = "  - {name: live, http: {url: 'http://web/healthz'}}\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _kubeconfig(server: str) -> str:
    return ("apiVersion: v1\nkind: Config\ncurrent-context: x\n"
            f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
            "users: [{name: u, user: {token: not-a-real-token}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u, namespace: shop}}]\n")


class Refusing(http.server.BaseHTTPRequestHandler):
    """An API server that refuses as the path prefix says: /forbidden, /unauthorized, /nocrds, /html."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        mode = self.path.split("/")[1]
        if mode == "html":
            self._answer(502, "text/html", b"<html><body>Bad Gateway</body></html>")
            return
        status, reason, message = {
            "forbidden": (403, "Forbidden", 'monitoredservices.ops.capliquify.io is forbidden: User "dev" cannot list '
                                            'resource "monitoredservices" in API group "ops.capliquify.io" in the '
                                            'namespace "shop"'),
            "unauthorized": (401, "Unauthorized", "Unauthorized"),
            "nocrds": (404, "NotFound", "the server could not find the requested resource"),
            "missing": (404, "NotFound", 'scalingpolicies.ops.capliquify.io "nope" not found'),
        }[mode]
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
                "code": status}
        self._answer(status, "application/json", json.dumps(body).encode())

    def _answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: typing.Any) -> None:
        pass


# (id, argv, files to write {name: text}, words the one line says, exit code)
Case = tuple[str, list[str], dict[str, str], str, int]
CASES: list[Case] = [
    # files
    ("missing-file", [CAPLIQUIFY, "validate", "nope.yaml"], {}, "nope.yaml: cannot read: No such file or directory", 1),
    ("a-directory", [CAPLIQUIFY, "validate", "."], {}, ".: cannot read: Is a directory", 1),
    ("not-utf8", [CAPLIQUIFY, "validate", "bin.yaml"], {"bin.yaml": "\udcff\udcfe"}, "bin.yaml: not UTF-8 text", 1),
    ("empty-file", [CAPLIQUIFY, "validate", "empty.yaml"], {"empty.yaml": ""}, "empty.yaml: no objects in the file", 1),
    # YAML
    ("invalid-yaml", [CAPLIQUIFY, "validate", "bad.yaml"], {"bad.yaml": "spec: [\n"}, "bad.yaml: not YAML: line 2", 1),
    ("alias-bomb", [CAPLIQUIFY, "validate", "bomb.yaml"], {"bomb.yaml": BOMB}, "refused: aliases expand", 1),
    ("key-twice", [CAPLIQUIFY, "validate", "twice.yaml"], {"twice.yaml": SCP + "  minReplicas: 2\n  minReplicas: 3\n"},
     "twice.yaml: not YAML for the API server: line 7: mapping key 'minReplicas' already defined at line 6", 1),
    ("not-an-object", [CAPLIQUIFY, "validate", "list.yaml"], {"list.yaml": "- a\n- b\n"},
     "list.yaml: document 1: not an object", 1),
    # kinds and versions
    ("misspelled-kind", [CAPLIQUIFY, "validate", "k.yaml"], {"k.yaml": SCP.replace("ScalingPolicy", "ScalingPolicys")},
     'no matches for kind ScalingPolicys in version ops.capliquify.io/v1alpha1 (did you mean ScalingPolicy?)', 1),
    ("kind-in-lower-case", [CAPLIQUIFY, "validate", "k.yaml"], {"k.yaml": MSVC.replace("MonitoredService", "monitoredservice")},
     "(did you mean MonitoredService?)", 1),
    ("wrong-version", [CAPLIQUIFY, "validate", "v.yaml"], {"v.yaml": SCP.replace("v1alpha1", "v1")},
     "no matches for kind ScalingPolicy in version ops.capliquify.io/v1 (served: ops.capliquify.io/v1alpha1)", 1),
    ("wrong-group", [CAPLIQUIFY, "validate", "g.yaml"], {"g.yaml": SCP.replace("ops.capliquify.io/v1alpha1", "apps/v1")},
     "ScalingPolicy is served as apiVersion ops.capliquify.io/v1alpha1, not apps/v1", 1),
    ("no-api-version", [CAPLIQUIFY, "validate", "n.yaml"], {"n.yaml": SCP.replace(V, "")}, "document 1: apiVersion not set", 1),
    # names and types
    ("no-name", [CAPLIQUIFY, "validate", "m.yaml"], {"m.yaml": SCP.replace("metadata: {name: web}", "metadata: {}")},
     "ScalingPolicy/#1: metadata.name: Required value", 1),
    ("bad-name", [CAPLIQUIFY, "validate", "m.yaml"], {"m.yaml": SCP.replace("name: web}", "name: Web_1}")},
     "metadata.name: Invalid value: Web_1", 1),
    ("string-for-int", [CAPLIQUIFY, "validate", "t.yaml"], {"t.yaml": SCP + '  minReplicas: "2"\n'},
     'spec.minReplicas: Input should be a valid integer (got "2")', 1),
    ("float-for-int", [CAPLIQUIFY, "validate", "t.yaml"], {"t.yaml": SCP + "  maxReplicas: 2.5\n"},
     "spec.maxReplicas: Input should be a valid integer", 1),
    ("typo-field", [CAPLIQUIFY, "validate", "t.yaml"], {"t.yaml": SCP + "  minReplica: 2\n"},
     "spec.minReplica: unknown field", 1),
    ("min-above-max", [CAPLIQUIFY, "validate", "t.yaml"], {"t.yaml": SCP + "  minReplicas: 5\n  maxReplicas: 3\n"},
     "spec.minReplicas: minReplicas must be <= maxReplicas", 1),
    ("duplicate-check", [CAPLIQUIFY, "validate", "d.yaml"], {"d.yaml": MSVC + "  healthChecks:\n" + CHECK * 2},
     'spec.healthChecks[1]: Duplicate value: {"name": "live"}', 1),
    ("target-path", [CAPLIQUIFY, "validate", "p.yaml"], {"p.yaml": MSVC.replace("name: web}}", "name: ../x}}")},
     "spec.target.kubernetes.name: String should match pattern", 1),
    ("status-999", [CAPLIQUIFY, "validate", "s.yaml"],
     {"s.yaml": MSVC + "  healthChecks:\n  - {name: live, http: {url: 'http://web/', expectStatus: [999]}}\n"},
     "spec.healthChecks[0].http.expectStatus[0]: Input should be less than or equal to 599 (got 999)", 1),
    # the command line itself
    ("unknown-command", [CAPLIQUIFY, "valdiate", "x.yaml"], {}, "capliquify: error: argument COMMAND: invalid choice: 'valdiate'", 2),
    ("no-files", [CAPLIQUIFY, "validate"], {}, "the following arguments are required: files", 2),
    ("bad-number-flag", [CAPLIQUIFY, "simulate", "p.yaml", "--step", "often"], {}, "argument --step: invalid float value", 2),
    # simulate
    ("simulate-missing-policy", [CAPLIQUIFY, "simulate", "nope.yaml", "--series", "s.csv"], {},
     "nope.yaml: cannot read: No such file or directory", 2),
    ("simulate-no-policy", [CAPLIQUIFY, "simulate", "cm.yaml", "--series", "s.csv"],
     {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}, "cm.yaml: no ScalingPolicy or AlertPolicy", 2),
    ("simulate-missing-series", [CAPLIQUIFY, "simulate", "p.yaml", "--series", "nope.csv"],
     {"p.yaml": SCP}, "nope.csv: cannot read: No such file or directory", 2),
    ("simulate-bad-number", [CAPLIQUIFY, "simulate", "p.yaml", "--series", "s.csv"],
     {"p.yaml": SCP, "s.csv": "t,cpu\n0,50\n15,lots\n"}, "s.csv: point 2: cpu: not a number: lots", 2),
    ("simulate-missing-trace", [CAPLIQUIFY, "simulate", "p.yaml", "--trace", "nope.csv"], {"p.yaml": SCP},
     "nope.csv: no such file, and not a built-in trace (built-ins: step, diurnal, flash-crowd, sawtooth, "
     "noisy-flat, slow-ramp)", 2),
    ("simulate-plot-missing-folder", [CAPLIQUIFY, "simulate", "p.yaml", "--trace", "step", "--plot", "no/x.png"],
     {"p.yaml": SCP}, "--plot no/x.png: no folder no to write it in", 2),
    # the operator and the Railway import
    ("railway-no-token", [CAPLIQUIFY, "railway", "import", "--project", "p", "--environment", "e"], {},
     "set $RAILWAY_TOKEN to a Railway API token", 2),
    ("railway-unreachable", [CAPLIQUIFY, "railway", "import", "--project", "p", "--environment", "e",
                             "--endpoint", "http://127.0.0.1:{port}/graphql", "--allow-loopback-egress"],
     {}, "error: cannot connect to http://127.0.0.1:{port}/graphql", 1),
    ("railway-loopback-refused", [CAPLIQUIFY, "railway", "import", "--project", "p", "--environment", "e",
                                  "--endpoint", "http://127.0.0.1:{port}/graphql"],
     {}, "error: endpoint refused by the egress policy: 127.0.0.1 is loopback", 1),
    ("crds-unwritable", [CAPLIQUIFY, "crds", "missing/dir", "--manifests", "/proc/no"], {},
     "capliquify crds: cannot write /proc/no/base/admission.yaml", 1),
    ("run-missing-kubeconfig", [CAPLIQUIFY, "run", "--kubeconfig", "nope.kc"], {}, "no usable kubeconfig", 2),
    ("run-bad-cluster-network", [CAPLIQUIFY, "run", "--cluster-networks", "10.96.0.0/12,ten"], {},
     "capliquify run: error: argument --cluster-networks: not a network: 'ten' (CIDR, e.g. 10.96.0.0/12) "
     "(see capliquify run --help)", 2),
    ("run-unreachable", [CAPLIQUIFY, "run", "--kubeconfig", "down.kc", "--metrics-port", "0"], {"down.kc": "DOWN"},
     "capliquify run: The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?", 1),
    # the kubectl plugin
    ("plugin-unreachable", [PLUGIN, "status", "--kubeconfig", "down.kc"], {"down.kc": "DOWN"},
     "The connection to the server 127.0.0.1:{port} was refused - did you specify the right host or port?", 1),
    ("plugin-missing-kubeconfig", [PLUGIN, "status", "--kubeconfig", "nope.kc"], {},
     "error: stat nope.kc: no such file or directory", 1),
    ("plugin-no-kubeconfig", [PLUGIN, "status"], {}, "error: no kubeconfig:", 1),
    ("plugin-kubeconfig-not-yaml", [PLUGIN, "why", "scp/web", "--kubeconfig", "k.kc"], {"k.kc": "clusters: [\n"},
     "error: k.kc: not YAML", 1),
    ("plugin-kubeconfig-a-list", [PLUGIN, "status", "--kubeconfig", "k.kc"], {"k.kc": "- 1\n"},
     "error: k.kc: not a kubeconfig", 1),
    ("plugin-kubeconfig-empty", [PLUGIN, "status", "--kubeconfig", "k.kc"], {"k.kc": "apiVersion: v1\nkind: Config\n"},
     "error: k.kc: Invalid kube-config file", 1),
    ("plugin-forbidden", [PLUGIN, "status", "--kubeconfig", "f.kc"], {"f.kc": "SERVER/forbidden"},
     'Error from server (Forbidden): monitoredservices.ops.capliquify.io is forbidden: User "dev" cannot list', 1),
    ("plugin-unauthorized", [PLUGIN, "status", "-A", "--kubeconfig", "u.kc"], {"u.kc": "SERVER/unauthorized"},
     "error: You must be logged in to the server (Unauthorized)", 1),
    ("plugin-no-crds", [PLUGIN, "status", "--kubeconfig", "c.kc"], {"c.kc": "SERVER/nocrds"},
     "Error from server (NotFound): the server could not find the requested resource (are the CapLiquify CRDs installed?", 1),
    ("plugin-not-found", [PLUGIN, "why", "scp/nope", "--kubeconfig", "m.kc"], {"m.kc": "SERVER/missing"},
     'Error from server (NotFound): scalingpolicies.ops.capliquify.io "nope" not found', 1),
    ("plugin-proxy-html", [PLUGIN, "status", "--kubeconfig", "h.kc"], {"h.kc": "SERVER/html"},
     "Error from server: 502 Bad Gateway", 1),
    ("plugin-wrong-kind", [PLUGIN, "why", "alp/web", "--kubeconfig", "down.kc"], {"down.kc": "DOWN"},
     "error: expected scp/NAME, got 'alp/web'", 1),
    ("plugin-unknown-command", [PLUGIN, "stats"], {}, "kubectl capliquify: error: argument COMMAND: invalid choice: 'stats'", 2),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess[str], str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    down = _free_port()  # nothing listens there (bound and closed: a refused connection)
    root = tmp_path_factory.mktemp("first-hour")

    def run(case: Case) -> tuple[subprocess.CompletedProcess[str], str, int]:
        name, argv, files, words, code = case
        home = root / name
        home.mkdir()
        for file_name, text in files.items():
            text = {"DOWN": _kubeconfig(f"https://127.0.0.1:{down}")}.get(text, text)
            if text.startswith("SERVER/"):
                text = _kubeconfig(f"http://127.0.0.1:{server.server_address[1]}/{text.split('/', 1)[1]}")
            (home / file_name).write_bytes(text.encode("utf-8", "surrogateescape"))
        env = {key: value for key, value in os.environ.items()
               if key not in ("KUBECONFIG", "RAILWAY_TOKEN", "KUBERNETES_SERVICE_HOST")}
        env["HOME"] = str(home)  # no ~/.kube/config of the machine's
        env["RAILWAY_TOKEN"] = "t0ken" if name.startswith("railway-") and name != "railway-no-token" else ""
        argv = [part.replace("{port}", str(down)) for part in argv]
        done = subprocess.run(argv, cwd=home, env=env, capture_output=True, text=True, timeout=120)
        return done, words.replace("{port}", str(down)), code

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return dict(zip([case[0] for case in CASES], pool.map(run, CASES), strict=True))
    finally:
        server.shutdown()


def test_there_are_twenty_mistakes_or_more() -> None:
    assert len(CASES) >= 20
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_a_mistake_is_one_line_and_a_non_zero_exit(outcomes: dict, name: str) -> None:
    done, words, code = outcomes[name]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    assert len(lines) == 1, done.stderr
    assert words in lines[0], lines[0]
    assert done.returncode == code, (done.returncode, lines[0])


def test_every_argument_has_help_and_every_default_is_shown() -> None:
    from controller import cli
    from controller import cliparse
    from controller.plugin import main as plugin

    for parser in (cli.build_parser(), plugin._parser()):
        assert cliparse.undocumented(parser) == []
    bare = cliparse.Parser(prog="x")
    bare.add_subparsers(dest="command").add_parser("go").add_argument("--fast")
    assert cliparse.undocumented(bare) == ["command", "go --fast"]
    run = cli.build_parser()._subparsers._group_actions[0].choices["run"].format_help()  # type: ignore[union-attr]
    assert "(default: 8080)" in run and "(default: 15.0)" in run and "(default: None)" not in run
    why = plugin._parser()._subparsers._group_actions[0].choices["why"].format_help()  # type: ignore[union-attr]
    assert "(default: False)" in why and "--context CONTEXT" in why


def test_a_server_that_does_not_answer_as_kubernetes_is_one_line() -> None:
    """`capliquify run` against something that answers /version with what the client's models
    refuse: one line naming the server (it was a pydantic traceback)."""
    import http.server
    import threading

    import kubernetes

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b'{"major": "1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: typing.Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from controller import cli

        host = f"http://127.0.0.1:{server.server_address[1]}"
        client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=host))
        said = cli._api_server_unreachable(client, attempts=1)
    finally:
        server.shutdown()
    assert said == f"{host} does not answer as a Kubernetes API server (/version: ValidationError)"
