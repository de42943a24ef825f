"""`kubectl capliquify` (installed as the executable `kubectl-capliquify`, which kubectl runs as a
plugin): `status`, `why scp/NAME`, `ack`/`unack alp/NAME RULE/SERVICE`, `silence alp/NAME` and
`unsilence alp/NAME SILENCE`. Reads with the caller's own kubeconfig and rights; writes only an
AlertPolicy's ack annotation and its spec.silences."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import secrets
import sys
import typing

import kubernetes
import urllib3
import yaml

import controller
from controller import admission
from controller import cliparse
from controller import reasons
from controller.api import matchers
from controller.api import monitoredservice
from controller.core import alerting
from controller.plugin import views

PLURALS = {"msvc": "monitoredservices", "scp": "scalingpolicies", "alp": "alertpolicies"}
TIMEOUT_SECONDS = (5, 30)
PATCH_TRIES = 5  # a JSON patch tests resourceVersion: re-read and retry when another writer came first


class KubeconfigError(Exception):
    """The kubeconfig cannot be used (the message is one line, in kubectl's manner)."""


def load_configuration(kubeconfig: str | None, context: str | None) -> typing.Any:
    """The client configuration from a kubeconfig, or a KubeconfigError saying why not."""
    path = kubeconfig or (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
    if not os.path.exists(path):
        if kubeconfig or os.environ.get("KUBECONFIG"):
            raise KubeconfigError(f"error: stat {path}: no such file or directory")
        raise KubeconfigError(f"error: no kubeconfig: {path} does not exist (set --kubeconfig or $KUBECONFIG)")
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except kubernetes.config.ConfigException as error:
        raise KubeconfigError(f"error: {path}: {cliparse.first_line(error)}") from None
    except OSError as error:
        raise KubeconfigError(f"error: {path}: {error.strerror or type(error).__name__}") from None
    except yaml.YAMLError as error:
        raise KubeconfigError(f"error: {path}: not YAML: {cliparse.first_line(error)}") from None
    except (TypeError, AttributeError, KeyError, ValueError) as error:
        # The client's loader indexes whatever the file holds (a list, a number where a map
        # belongs) and fails inside itself: the file is malformed, and that is what to say.
        raise KubeconfigError(f"error: {path}: not a kubeconfig ({type(error).__name__}: {cliparse.first_line(error)})") from None
    # kubectl does not retry a refused connection: say so at once instead of after three tries.
    configuration.retries = 0
    return configuration


class Cluster:
    def __init__(self, kubeconfig: str | None, context: str | None, impersonate: str | None = None) -> None:
        configuration = load_configuration(kubeconfig, context)
        self.host = str(configuration.host)
        self.client = kubernetes.client.ApiClient(configuration)
        if impersonate:  # kubectl's --as: the API server then knows the caller as that user
            self.client.set_default_header("Impersonate-User", impersonate)
        self.custom: typing.Any = kubernetes.client.CustomObjectsApi(self.client)
        try:
            contexts, active = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = next((c for c in contexts if c["name"] == context), active) if context else active
            self.default_namespace = (chosen.get("context") or {}).get("namespace") or "default"
        except (kubernetes.config.ConfigException, OSError, yaml.YAMLError, TypeError, AttributeError, KeyError, ValueError):
            self.default_namespace = "default"  # it loaded above: only the namespace is the loader's to miss

    def list(self, short_name: str, namespace: str | None) -> list[dict[str, typing.Any]]:
        plural = PLURALS[short_name]
        if namespace is None:
            answer = self.custom.list_cluster_custom_object(controller.API_GROUP, controller.API_VERSION, plural,
                                                            _request_timeout=TIMEOUT_SECONDS)
        else:
            answer = self.custom.list_namespaced_custom_object(controller.API_GROUP, controller.API_VERSION, namespace,
                                                               plural, _request_timeout=TIMEOUT_SECONDS)
        return list(answer.get("items") or [])

    def get(self, short_name: str, namespace: str, name: str) -> dict[str, typing.Any]:
        return typing.cast(dict[str, typing.Any], self.custom.get_namespaced_custom_object(
            controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[short_name], name,
            _request_timeout=TIMEOUT_SECONDS))

    def annotate(self, short_name: str, namespace: str, name: str, key: str, value: str) -> None:
        self.custom.patch_namespaced_custom_object(
            controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[short_name], name,
            {"metadata": {"annotations": {key: value}}}, _request_timeout=TIMEOUT_SECONDS)

    def json_patch(self, short_name: str, namespace: str, name: str, patch: typing.Sequence[dict[str, typing.Any]]) -> None:
        self.custom.patch_namespaced_custom_object(
            controller.API_GROUP, controller.API_VERSION, namespace, PLURALS[short_name], name, list(patch),
            _request_timeout=TIMEOUT_SECONDS, _content_type="application/json-patch+json")

    def whoami(self) -> str | None:
        """The caller as the API server knows them (SelfSubjectReview), for the ack's author."""
        try:
            review = kubernetes.client.AuthenticationV1Api(self.client).create_self_subject_review(
                kubernetes.client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"),
                _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException:
            return None
        user = getattr(getattr(review, "status", None), "user_info", None)
        return getattr(user, "username", None)


def _named(reference: str, kind: str) -> str:
    """`scp/NAME`, `scalingpolicy/NAME` or `NAME` → NAME; another kind is an error."""
    prefix, slash, name = reference.partition("/")
    if not slash:
        return reference
    aliases = {"scp": ("scp", "scalingpolicy", "scalingpolicies"), "alp": ("alp", "alertpolicy", "alertpolicies")}[kind]
    if prefix.lower() not in aliases:
        raise SystemExit(f"error: expected {kind}/NAME, got {reference!r}")
    return name


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    common.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (status)")
    common.add_argument("--kubeconfig", help="path to the kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", help="kubeconfig context; its current context when unset")
    common.add_argument("--as", dest="as_user", metavar="USER", help="act as USER (impersonation, as kubectl's --as)")
    parser = cliparse.Parser(prog="kubectl capliquify", parents=[common],
                             description="What the CapLiquify operator decided, and why.")
    commands = cliparse.subcommands(parser, dest="command", required=True, metavar="COMMAND",
                                    help="status, why, ack, unack, silence or unsilence "
                                         "(kubectl capliquify COMMAND --help for its options)")
    commands.add_parser("status", parents=[common],
                        help="every service: health, replicas now/desired, last decision and why, firing alerts, last rollout")
    why = commands.add_parser("why", parents=[common], help="a ScalingPolicy's decisions, each with the stage that limited it")
    why.add_argument("policy", help="scp/NAME")
    ack = commands.add_parser("ack", parents=[common], help="acknowledge one firing alert")
    ack.add_argument("policy", help="alp/NAME")
    ack.add_argument("alert", help="RULE/SERVICE")
    # The acknowledger is the caller as the API server knows them (the admission policy refuses
    # any other name); `--by` once let anyone record any name, so it is refused, not ignored.
    ack.add_argument("--by", help=argparse.SUPPRESS)
    unack = commands.add_parser("unack", parents=[common], help="clear your own ack of an alert")
    unack.add_argument("policy", help="alp/NAME")
    unack.add_argument("alert", help="RULE/SERVICE")
    silence = commands.add_parser("silence", parents=[common],
                                  help="hold back the notifications of the alerts the matchers select, for a time")
    silence.add_argument("policy", help="alp/NAME")
    silence.add_argument("--matcher", action="append", required=True, metavar="MATCHER",
                         help="name=value, name!=value, name=~regex or name!~regex, e.g. service=web (repeatable: all hold)")
    until = silence.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="for_", metavar="DURATION", help="how long from now, e.g. 2h, 90m, 1h30m, 1d")
    until.add_argument("--until", metavar="TIME", help="when it ends, e.g. 2026-12-06T18:00:00Z (UTC without an offset)")
    silence.add_argument("--comment", default="", help="why")
    silence.add_argument("--name", help="its name, to unsilence it by (made up when unset)")
    unsilence = commands.add_parser("unsilence", parents=[common], help="remove a silence by its name")
    unsilence.add_argument("policy", help="alp/NAME")
    unsilence.add_argument("silence", help="the silence's name (kubectl get alp NAME -o yaml: spec.silences)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _main(args)
    except KubeconfigError as error:
        print(error, file=sys.stderr)
        return 1
    except views.PatchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except kubernetes.client.ApiException as error:
        print(cliparse.server_error(error.status, error.reason, error.body), file=sys.stderr)
        return 1
    except urllib3.exceptions.HTTPError as error:
        print(cliparse.connection_error(error, args.server_host), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl capliquify status | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _main(args: argparse.Namespace) -> int:
    args.server_host = None
    if args.command == "ack" and args.by is not None:
        print("error: --by is no longer accepted: an ack is recorded under your own name, as the API server "
              "knows you (kubectl auth whoami); --as USER acts as another user if you may impersonate them",
              file=sys.stderr)
        return 2
    cluster = Cluster(args.kubeconfig, args.context, args.as_user)
    args.server_host = getattr(cluster, "host", None)  # for the line saying which server did not answer
    namespace: str = args.namespace or cluster.default_namespace
    if args.command == "status":
        scope = None if args.all_namespaces else namespace
        rows = views.status_rows(cluster.list("msvc", scope), cluster.list("scp", scope), cluster.list("alp", scope))
        print(views.status_table(rows, all_namespaces=scope is None) if rows else
              f"No MonitoredServices or ScalingPolicies in {scope or 'any namespace'}.")
        return 0
    if args.command == "why":
        print(views.why(cluster.get("scp", namespace, _named(args.policy, "scp"))))
        return 0
    name = _named(args.policy, "alp")
    if args.command == "silence":
        return _silence(cluster, namespace, name, args)
    if args.command == "unsilence":
        _patched(cluster, namespace, name, lambda policy: views.unsilence_patch(policy, args.silence))
        print(f"alertpolicy/{name}: silence {views.printable(args.silence)} removed")
        return 0
    rule, slash, service = args.alert.partition("/")
    if not (rule and slash and service) or ":" in args.alert or "," in args.alert:
        print(f"error: the alert is RULE/SERVICE, got {args.alert!r}", file=sys.stderr)
        return 2
    if args.command == "unack":
        return _unack(cluster, namespace, name, args.alert)
    try:
        alerts = (cluster.get("alp", namespace, name).get("status") or {}).get("alerts") or []
        firing: bool | None = any((a.get("rule"), a.get("service"), a.get("state")) == (rule, service, "Firing")
                                  for a in alerts)
    except kubernetes.client.ApiException as error:
        if error.status != 403:
            raise
        firing = None  # an on-call role may hold `patch` alone: the ack needs nothing more
    who = cluster.whoami()
    if not who:
        print("error: the API server did not say who you are (SelfSubjectReview), and an ack is recorded "
              "under that name", file=sys.stderr)
        return 1
    cluster.annotate("alp", namespace, name, reasons.ACK_ANNOTATION, views.ack_value(who, args.alert))
    print(f"alertpolicy/{name}: {args.alert} acknowledged by {views.printable(who)}"
          + ("" if firing in (True, None) else
             " (it is not firing now: the ack applies if it is when the operator next looks)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _patched(cluster: Cluster, namespace: str, name: str,
             build: typing.Callable[[dict[str, typing.Any]], list[dict[str, typing.Any]]]) -> dict[str, typing.Any]:
    """Read the AlertPolicy, build a JSON patch from it (testing its resourceVersion) and apply
    it; re-read and rebuild when another writer came first. The policy as read, for messages."""
    for _ in range(PATCH_TRIES):
        policy = cluster.get("alp", namespace, name)
        try:
            cluster.json_patch("alp", namespace, name, build(policy))
        except kubernetes.client.ApiException as error:
            if error.status == 409 or (error.status == 422 and "test failed" in str(error.body or "")):
                continue
            raise
        return policy
    raise views.PatchError(f"alertpolicy/{name} changed under every one of {PATCH_TRIES} tries: try again")


def _silence(cluster: Cluster, namespace: str, name: str, args: argparse.Namespace) -> int:
    try:
        matchers.parse_all(args.matcher)
    except matchers.MatcherError as error:
        print(f"error: --matcher: {error}", file=sys.stderr)
        return 2
    if args.name is not None and (len(args.name) > 63 or not re.fullmatch(monitoredservice.NAME_PATTERN, args.name)):
        print(f"error: --name is lower-case letters, digits and '-' (at most 63), got {args.name!r}", file=sys.stderr)
        return 2
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    end = now + views.duration(args.for_) if args.for_ is not None else views.instant(args.until)
    who = cluster.whoami()
    if not who:
        print("error: the API server did not say who you are (SelfSubjectReview), and a silence is recorded "
              "under that name", file=sys.stderr)
        return 1
    silence_name = args.name or f"silence-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    silence = views.new_silence(who, args.matcher, now, end, args.comment, silence_name)
    _patched(cluster, namespace, name, lambda policy: views.silence_patch(policy, silence, admission.MAX_SILENCES))
    print(f"alertpolicy/{name}: silence {silence_name} set by {views.printable(who)} until {silence['end']} "
          f"({', '.join(views.printable(m) for m in args.matcher)})")
    return 0


def _unack(cluster: Cluster, namespace: str, name: str, alert: str) -> int:
    who = cluster.whoami()
    if not who:
        print("error: the API server did not say who you are (SelfSubjectReview), and only an ack's author "
              "clears it here", file=sys.stderr)
        return 1
    rule, _, service = alert.partition("/")
    cleared: list[str] = []

    def build(policy: dict[str, typing.Any]) -> list[dict[str, typing.Any]]:
        value = ((policy.get("metadata") or {}).get("annotations") or {}).get(reasons.ACK_ANNOTATION) or ""
        if not value:
            raise views.PatchError(f"alertpolicy/{name} holds no ack")
        ack = alerting.parse_ack(value)
        if not admission.ack_accepted(who, value):
            raise views.PatchError(f"the ack on alertpolicy/{name} is {views.printable(ack[0])}'s "
                                   f"({views.printable(value)!r}), not yours ({views.printable(who)}): "
                                   "only its author clears it")
        if not alerting.acknowledges(ack, rule, service):
            raise views.PatchError(f"your ack on alertpolicy/{name} ({views.printable(value)!r}) does not name {alert}")
        cleared[:] = [value]
        return views.unack_patch(policy, reasons.ACK_ANNOTATION, value)

    _patched(cluster, namespace, name, build)
    print(f"alertpolicy/{name}: your ack {views.printable(cleared[0])!r} cleared (alerts it acknowledged stay so "
          "until they fire again; the same ack may now be given again)")
    return 0
