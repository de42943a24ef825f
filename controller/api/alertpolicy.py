"""AlertPolicy: threshold rules over MonitoredServices, channels, and routing."""

from __future__ import annotations

import datetime
import enum
import typing

import pydantic

from controller.api import common
from controller.api import monitoredservice
from controller.api import matchers

# The admission policy checks one Secret per channel (controller/admission.py): a bound keeps
# its authorizer checks within the API server's cost budget.
MAX_CHANNELS = 16


class AlertMetric(str, enum.Enum):
    CPU = "cpu"
    MEMORY = "memory"
    LATENCY_P95 = "latencyP95"
    ERROR_RATE = "errorRate"
    REQUEST_RATE = "requestRate"
    REQUEST_QUEUE = "requestQueue"
    HEALTH = "health"
    AVAILABILITY = "availability"
    ROLLBACKS = "rollbacks"
    ROLLOUTS_SUCCEEDED = "rolloutsSucceeded"
    ROLLOUTS_FAILED = "rolloutsFailed"
    BURN_RATE = "burnRate"
    LATENCY_BURN_RATE = "latencyBurnRate"
    CUSTOM = "custom"


class Op(str, enum.Enum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class ChannelKind(str, enum.Enum):
    SLACK = "slack"
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    ALERTMANAGER = "alertmanager"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    TEAMS = "teams"


class BurnRateWindows(common.ApiModel):
    """Multi-window burn rate (the SRE workbook's): both windows must burn faster than the
    threshold, so a past spike (long window only) or a blip (short window only) does not fire."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [
            common.cel("self.shortSeconds < self.longSeconds", "shortSeconds must be shorter than longSeconds",
                       ".shortSeconds")]})

    longSeconds: int = common.field("The long window, e.g. 3600 (page) or 21600 (ticket).", default=3600,
                                    ge=60, le=6 * 3600)
    shortSeconds: int = common.field("The short window, e.g. 300 (page) or 1800 (ticket).", default=300,
                                     ge=30, le=6 * 3600)

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "BurnRateWindows":
        if self.shortSeconds >= self.longSeconds:
            raise ValueError("shortSeconds must be shorter than longSeconds")
        return self


class Rule(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "(self.metric == 'custom') == has(self.customName)",
                    "customName is required for metric custom and not allowed otherwise",
                    ".customName",
                ),
            ]
        }
    )

    name: str = common.field(
        "Rule name, unique in the policy.", min_length=1, max_length=63, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$"
    )
    metric: AlertMetric = common.field(
        "The MonitoredService value compared; health compares 0 (Healthy), 1 (Degraded), 2 (Unhealthy); "
        "availability is the share of passing health probes over slo.windowSeconds (percent); "
        "rollbacks, rolloutsSucceeded and rolloutsFailed count the rollout guard's rollbacks, revisions "
        "that became healthy, and failed revisions it did not roll back, in the last 10 minutes (a rule "
        "`> 0` tells a team of every deploy once); burnRate is how many times faster than the SLO allows "
        "the health checks' error budget burns, the lower of burnRateWindows' two windows (14.4 pages); "
        "latencyBurnRate the same for the latency SLO (slo.latencyP95Ms: a passing probe answered slower spends "
        "its budget, 5 % of probes as a p95 allows)."
    )
    customName: str | None = common.field("For metric custom: the custom query name.", default=None, max_length=63)
    burnRateWindows: BurnRateWindows = common.field(
        "For metrics burnRate and latencyBurnRate: the long and short windows.", default_factory=BurnRateWindows)
    op: Op = common.field("Comparison of value against threshold.", default=Op.GT)
    threshold: float = common.field("The value compared against.")
    forSeconds: int = common.field("The condition must hold this long before firing.", default=0, ge=0, le=86400)
    keepFiringForSeconds: int = common.field(
        "Keep firing this long after the condition clears.", default=0, ge=0, le=86400
    )
    severity: Severity = common.field("critical, warning or info; routes match on it.", default=Severity.WARNING)
    labels: dict[
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
    ] = common.field("Labels routes match on, e.g. type: security.", default_factory=dict, max_length=8)
    summary: str = common.field(
        "Message template; {{service}}, {{value}}, {{op}} (the comparison, e.g. >), {{threshold}}, {{rule}} are replaced.",
        default="{{rule}} on {{service}}: {{value}} {{op}} {{threshold}}",
        max_length=1024,
    )
    annotations: dict[
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
        typing.Annotated[str, pydantic.StringConstraints(max_length=1024)],
    ] = common.field(
        "Annotations forwarded to webhooks and Alertmanager (e.g. description, runbook_url); {{service}}, "
        "{{threshold}}, {{op}}, {{rule}} are replaced. `summary` is always the notification's text.",
        default_factory=dict, max_length=8)


class SlackChannel(common.ApiModel):
    webhookSecretRef: common.SecretKeyRef = common.field("Secret holding the incoming-webhook URL.")


class EmailChannel(common.ApiModel):
    smtpSecretRef: common.SecretKeyRef = common.field(
        "Secret holding SMTP settings as YAML: host, port, from, username, password, starttls."
    )
    to: list[typing.Annotated[str, pydantic.StringConstraints(
        pattern=r"^[^\s@<>,;:\"()\[\]\\]+@[A-Za-z0-9.-]+$", max_length=254)]] = common.field(
        "Recipients: plain addresses (local@domain), one per item; no names, no line breaks.", min_length=1, max_length=50)


class SmsChannel(common.ApiModel):
    gatewaySecretRef: common.SecretKeyRef = common.field("Secret holding the SMS gateway settings as YAML: url, token.")
    to: list[typing.Annotated[str, pydantic.StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]] = common.field(
        "E.164 phone numbers.", min_length=1, max_length=20
    )


class WebhookChannel(common.ApiModel):
    url: str = common.field("URL receiving a JSON POST.", min_length=1, max_length=2048, pattern=common.HTTP_URL)
    hmacSecretRef: common.SecretKeyRef | None = common.field(
        "Secret whose key signs the body (X-CapLiquify-Signature: sha256=...).", default=None
    )


class AlertmanagerChannel(common.ApiModel):
    url: str = common.field("Alertmanager base URL.", min_length=1, max_length=2048, pattern=common.HTTP_URL)


class PagerDutyChannel(common.ApiModel):
    routingKeySecretRef: common.SecretKeyRef = common.field(
        "Secret holding the integration's routing key (Events API v2).")
    url: str = common.field("The Events API v2 endpoint.", default="https://events.pagerduty.com/v2/enqueue",
                            min_length=1, max_length=2048, pattern=common.HTTP_URL)


class OpsgenieChannel(common.ApiModel):
    apiKeySecretRef: common.SecretKeyRef = common.field("Secret holding the API integration's key.")
    url: str = common.field("The Alert API's base URL (https://api.eu.opsgenie.com in the EU).",
                            default="https://api.opsgenie.com", min_length=1, max_length=2048, pattern=common.HTTP_URL)


class TeamsChannel(common.ApiModel):
    webhookSecretRef: common.SecretKeyRef = common.field(
        "Secret holding the Teams workflow's HTTP POST URL (it carries its own signature).")


class Channel(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "[has(self.slack), has(self.email), has(self.sms), has(self.webhook), has(self.alertmanager), "
                    "has(self.pagerduty), has(self.opsgenie), has(self.teams)].filter(x, x).size() == 1",
                    "a channel needs exactly one of slack, email, sms, webhook, alertmanager, pagerduty, opsgenie, teams",
                )
            ]
        }
    )

    name: str = common.field("Channel name, referenced by routes.", min_length=1, max_length=63, pattern=monitoredservice.NAME_PATTERN)
    slack: SlackChannel | None = common.field("Slack incoming webhook.", default=None)
    email: EmailChannel | None = common.field("Email over SMTP.", default=None)
    sms: SmsChannel | None = common.field("SMS through an HTTP gateway.", default=None)
    webhook: WebhookChannel | None = common.field("Generic JSON webhook.", default=None)
    alertmanager: AlertmanagerChannel | None = common.field("Alertmanager v2 API.", default=None)
    pagerduty: PagerDutyChannel | None = common.field(
        "PagerDuty Events API v2: trigger, resolved with the same dedup key.", default=None)
    opsgenie: OpsgenieChannel | None = common.field("Opsgenie Alert API: create, closed on resolve.", default=None)
    teams: TeamsChannel | None = common.field("Microsoft Teams through a workflow webhook (an Adaptive Card).",
                                              default=None)

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> "Channel":
        common.require_exactly_one(self, *(kind.value for kind in ChannelKind))
        return self


class Escalation(common.ApiModel):
    afterSeconds: int = common.field("Escalate when firing and unacknowledged this long.", ge=1, le=7 * 86400)
    channels: list[str] = common.field("Channel names notified on escalation.", default_factory=list, max_length=16)
    channelKinds: list[ChannelKind] = common.field(
        "Every channel of these kinds is notified on escalation.", default_factory=list, max_length=8
    )


MAX_MATCHERS = 8  # per route, silence or inhibition side
MatcherText = typing.Annotated[str, pydantic.StringConstraints(min_length=1, max_length=matchers.MAX_LENGTH)]
LabelName = typing.Annotated[str, pydantic.StringConstraints(min_length=1, max_length=63)]
_MATCHERS_SHAPE = common.cel(
    f"self.all(m, m.matches('{matchers.CEL_SHAPE}'))",
    "each matcher is name=value, name!=value, name=~regex or name!~regex (a Prometheus label name, then a value)")


def _check_matchers(texts: typing.Sequence[str], where: str) -> None:
    """The syntax; regexes are compiled once per policy within a budget (_check_regexes)."""
    try:
        matchers.parse_all(texts, compile_regex=False)
    except matchers.MatcherError as error:
        raise ValueError(f"{where}: {error}") from None


def _matchers_field(what: str) -> typing.Any:
    return common.field(
        f"{what}, in Alertmanager's syntax: `name=value`, `name!=value`, `name=~regex`, `name!~regex` "
        "(RE2, anchored at both ends; a label the alert does not carry is the empty string). An alert carries "
        "its rule's labels and alertname (the rule), severity, service, namespace and alertpolicy.",
        default_factory=list, max_length=MAX_MATCHERS, json_schema_extra={"x-kubernetes-validations": [_MATCHERS_SHAPE]})


class RouteSettings(common.ApiModel):
    """What a route sends and how often; an unset setting is inherited from the parent route
    (the top-level routes' parent is `defaultRoute`), as in Alertmanager's route tree."""

    channels: list[str] = common.field("Channel names; with channelKinds empty too, the parent's channels.",
                                       default_factory=list, max_length=16)
    channelKinds: list[ChannelKind] = common.field(
        "Every channel of these kinds.", default_factory=list, max_length=8
    )
    groupBy: list[LabelName] | None = common.field(
        "Labels whose values put alerts in one group (one notification per group); `...` alone groups by "
        "every label (each alert its own group). Inherited when unset.", default=None, max_length=16)
    groupWaitSeconds: int | None = common.field(
        "How long a new group waits for more alerts before its first notification. Inherited when unset.",
        default=None, ge=0, le=86400)
    groupIntervalSeconds: int | None = common.field(
        "How long a group waits before notifying about alerts added to or resolved in it. Inherited when unset.",
        default=None, ge=1, le=86400)
    repeatIntervalSeconds: int | None = common.field(
        "Re-notify a still-firing alert this often; inherited when unset (defaultRoute: 900).",
        default=None, ge=60, le=7 * 86400)
    escalation: list[Escalation] | None = common.field("Escalation steps; inherited when unset.", default=None,
                                                       max_length=8)

    @pydantic.model_validator(mode="after")
    def _group_by_all_alone(self) -> "RouteSettings":
        if self.groupBy and "..." in self.groupBy and len(self.groupBy) > 1:
            raise ValueError("groupBy: '...' groups by every label and stands alone")
        return self


class RouteBase(RouteSettings):
    """A route: matched against the alert's labels; the first matching route among siblings
    wins unless it says `continue`; a matching route whose children match none is the match."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    name: str | None = common.field("A name for status and docs.", default=None, max_length=63)
    severity: Severity | None = common.field(
        "Match alerts of this severity (the same as the matcher severity=\"...\"); any severity when unset.",
        default=None)
    match: dict[
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
    ] = common.field("Labels the alert must carry with these values (equality matchers).",
                     default_factory=dict, max_length=8)
    matchers: list[MatcherText] = _matchers_field("Matchers the alert's labels must all satisfy")
    continue_: bool = common.field(
        "Also try the routes after this one when it matches; each matched route sends, repeats and escalates "
        "on its own.", default=False, alias="continue")

    @pydantic.model_validator(mode="after")
    def _readable(self) -> "RouteBase":
        _check_matchers(self.matchers, f"route {self.name or ''} matchers".replace("  ", " "))
        return self


# The tree's size is bounded so that the API server's CEL cost estimate of "every channel a
# route names is declared" stays within budget over every level: 16 top-level routes, 4
# children each, 2 grandchildren each (208 routes), and at most 2 escalation steps below the
# top (a nested route that sets none inherits its parent's).
NESTED_ESCALATION_STEPS = 2


class Route3(RouteBase):
    """A route at the tree's third level (no children: the depth is bounded)."""

    escalation: list[Escalation] | None = common.field("Escalation steps; inherited when unset.", default=None,
                                                       max_length=NESTED_ESCALATION_STEPS)


class Route2(RouteBase):
    escalation: list[Escalation] | None = common.field("Escalation steps; inherited when unset.", default=None,
                                                       max_length=NESTED_ESCALATION_STEPS)
    routes: list[Route3] = common.field("Child routes, tried in order.", default_factory=list, max_length=2)


class Route(RouteBase):
    """Where a matching alert goes, how often it repeats and how it escalates (Alertmanager's
    route tree, three levels deep). A channel matches by name or by kind."""

    routes: list[Route2] = common.field("Child routes, tried in order.", default_factory=list, max_length=4)


class DefaultRoute(RouteSettings):
    """Alertmanager's root route: every route inherits its settings, and an alert that no
    route matches is sent to its channels."""


def _seed_routes() -> list[Route]:
    """The seed's alert table, by channel kind so it holds whatever the channels are named."""
    return [
        Route(
            severity=Severity.CRITICAL,
            channelKinds=[ChannelKind.SLACK, ChannelKind.EMAIL, ChannelKind.SMS],
            repeatIntervalSeconds=300,
            escalation=[Escalation(afterSeconds=300, channelKinds=[ChannelKind.SMS])],
        ),
        Route(
            severity=Severity.WARNING,
            channelKinds=[ChannelKind.SLACK, ChannelKind.EMAIL],
            repeatIntervalSeconds=900,
            escalation=[Escalation(afterSeconds=900, channelKinds=[ChannelKind.EMAIL])],
        ),
        Route(severity=Severity.INFO, channelKinds=[ChannelKind.SLACK], repeatIntervalSeconds=1800),
    ]


class LabelSelector(common.ApiModel):
    matchLabels: dict[
        typing.Annotated[str, pydantic.StringConstraints(max_length=317)],
        typing.Annotated[str, pydantic.StringConstraints(max_length=63)],
    ] = common.field("Labels a MonitoredService must carry.", default_factory=dict, max_length=32)


class Silence(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel("timestamp(self.end) > timestamp(self.start)", "end must be after start", ".end"),
            ]
        }
    )

    start: datetime.datetime = common.field("Start of the silence.")
    end: datetime.datetime = common.field("End of the silence (still silenced at that instant, as Alertmanager).")
    matchers: dict[
        typing.Literal["rule", "service", "severity"],
        typing.Annotated[str, pydantic.StringConstraints(max_length=253)],
    ] = common.field("Equality on rule, service, severity (the older form; labelMatchers says more).",
                     default_factory=dict, max_length=3)
    labelMatchers: list[MatcherText] = _matchers_field("Matchers the alert's labels must all satisfy to be silenced")
    comment: str = common.field("Why.", default="", max_length=1024)
    name: str | None = common.field(
        "A name to remove it by (`kubectl capliquify unsilence`; the plugin makes one up).", default=None,
        min_length=1, max_length=63, pattern=monitoredservice.NAME_PATTERN)
    createdBy: str | None = common.field(
        "Who set it, as the API server knows them: the admission policy accepts a new or changed silence only "
        "if this is unset or the requesting user's name.", default=None, min_length=1, max_length=253)

    @pydantic.model_validator(mode="after")
    def _readable(self) -> "Silence":
        _check_matchers(self.labelMatchers, "silence labelMatchers")
        return self


class InhibitRule(common.ApiModel):
    """Alertmanager's inhibition: while an alert matching `sourceMatchers` fires, the
    notifications of alerts matching `targetMatchers` that carry the same values of the
    `equal` labels are held back (states still move)."""

    sourceMatchers: list[MatcherText] = _matchers_field("Matchers of the inhibiting (firing) alert")
    targetMatchers: list[MatcherText] = _matchers_field("Matchers of the alerts held back")
    equal: list[LabelName] = common.field(
        "Labels whose values source and target must share (a label both lack counts as equal).",
        default_factory=list, max_length=8)

    @pydantic.model_validator(mode="after")
    def _readable(self) -> "InhibitRule":
        _check_matchers(self.sourceMatchers, "inhibitRules sourceMatchers")
        _check_matchers(self.targetMatchers, "inhibitRules targetMatchers")
        return self


def _channels_exist(route: str) -> str:
    return (f"{route}.channels.all(c, self.channels.exists(ch, ch.name == c)) && "
            f"(!has({route}.escalation) || {route}.escalation.all(e, e.channels.all(c, "
            "self.channels.exists(ch, ch.name == c))))")


# Every level of the tree (it is three deep, so the rule is written out, not recursive).
_ROUTE_CHANNELS_EXIST = (
    "self.routes.all(r, " + _channels_exist("r") + " && r.routes.all(r2, " + _channels_exist("r2")
    + " && r2.routes.all(r3, " + _channels_exist("r3") + ")))"
)


class AlertPolicySpec(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "has(self.selector) != has(self.serviceRef)",
                    "exactly one of selector or serviceRef is required",
                ),
                common.cel(
                    "!has(self.routes) || !has(self.channels) || " + _ROUTE_CHANNELS_EXIST,
                    "every channel named in routes (and their escalation) must be declared in spec.channels",
                    ".routes",
                ),
                common.cel(
                    "!has(self.defaultRoute) || " + _channels_exist("self.defaultRoute"),
                    "every channel named in defaultRoute (and its escalation) must be declared in spec.channels",
                    ".defaultRoute",
                ),
            ]
        }
    )

    selector: LabelSelector | None = common.field("MonitoredServices this policy applies to.", default=None)
    serviceRef: str | None = common.field("One MonitoredService by name.", default=None, min_length=1, max_length=253)
    rules: list[Rule] = common.field(
        "Threshold rules.",
        min_length=1,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    channels: list[Channel] = common.field(
        "Where notifications go.",
        default_factory=list,
        max_length=MAX_CHANNELS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    routes: list[Route] = common.field(
        "Routes tried in order, first match wins unless it says continue (matching the alert's labels); "
        "the children of defaultRoute; defaults to the seed table.",
        default_factory=_seed_routes,
        max_length=16,
    )
    defaultRoute: DefaultRoute | None = common.field(
        "The root of the route tree (Alertmanager's top-level route): its settings are inherited by every "
        "route, and an alert no route matches goes to its channels (none when unset: such an alert is not sent).",
        default=None)
    sendResolved: bool = common.field("Notify when an alert resolves.", default=True)
    silences: list[Silence] = common.field("Time-bounded silences.", default_factory=list, max_length=32)
    inhibitRules: list[InhibitRule] = common.field(
        "While a source alert fires, its targets' notifications are held back.", default_factory=list,
        max_length=16)

    @pydantic.model_validator(mode="after")
    def _references(self) -> "AlertPolicySpec":
        if (self.selector is None) == (self.serviceRef is None):
            raise ValueError("exactly one of selector or serviceRef is required")
        _check_regexes(self)
        declared = {channel.name for channel in self.channels}
        named = {c for r in _all_routes(self) for c in (*r.channels, *(c for e in r.escalation or [] for c in e.channels))}
        if named - declared:
            raise ValueError(f"routes name undeclared channels: {', '.join(sorted(named - declared))}")
        return self


def _check_regexes(spec: AlertPolicySpec) -> None:
    """Every regex matcher of the policy compiled by RE2, all within one budget (a tenant's
    patterns cost the operator CPU: api/matchers.RegexBudget), the first refusal named."""
    places: list[tuple[str, typing.Sequence[str]]] = []
    for index, route in enumerate(spec.routes):
        places.append((f"routes[{index}].matchers", route.matchers))
        for child_index, child in enumerate(route.routes):
            places.append((f"routes[{index}].routes[{child_index}].matchers", child.matchers))
            places += [(f"routes[{index}].routes[{child_index}].routes[{leaf_index}].matchers", leaf.matchers)
                       for leaf_index, leaf in enumerate(child.routes)]
    places += [(f"silences[{i}].labelMatchers", s.labelMatchers) for i, s in enumerate(spec.silences)]
    for index, rule in enumerate(spec.inhibitRules):
        places += [(f"inhibitRules[{index}].sourceMatchers", rule.sourceMatchers),
                   (f"inhibitRules[{index}].targetMatchers", rule.targetMatchers)]
    budget = matchers.RegexBudget()
    for where, texts in places:
        for matcher in matchers.parse_all(texts, compile_regex=False):
            if matcher.op in (matchers.REGEX, matchers.NOT_REGEX):
                try:
                    budget.add(matcher.value)
                except matchers.MatcherError as error:
                    raise ValueError(f"{where}: {error}") from None


def _all_routes(spec: AlertPolicySpec) -> list[RouteSettings]:
    """defaultRoute and every route of the tree."""
    out: list[RouteSettings] = [spec.defaultRoute] if spec.defaultRoute is not None else []
    for route in spec.routes:
        out.append(route)
        for child in route.routes:
            out += [child, *child.routes]
    return out


class AlertState(str, enum.Enum):
    INACTIVE = "Inactive"
    PENDING = "Pending"
    FIRING = "Firing"
    RESOLVED = "Resolved"


class RouteProgress(common.ApiModel):
    """A further matched route's own repeats and escalation (a route reached through `continue`)."""

    route: str = common.field("The route's path in the tree, e.g. routes[2] or routes[0].routes[1].", max_length=63)
    lastNotified: datetime.datetime | None = common.field("Last notification through this route.", default=None)
    notifications: int = common.field("Notifications through this route for this firing.", default=0, ge=0)
    escalationLevel: int = common.field("Escalation steps of this route taken.", default=0, ge=0)


class AlertStatus(common.ApiModel):
    rule: str = common.field("Rule name.")
    service: str = common.field("MonitoredService name.")
    state: AlertState = common.field("Inactive, Pending, Firing or Resolved.")
    since: datetime.datetime | None = common.field("When the state was entered.", default=None)
    value: float | None = common.field("The value at the last state change.", default=None)
    clearedAt: datetime.datetime | None = common.field(
        "When the condition of a firing alert cleared (it resolves keepFiringForSeconds later).", default=None)
    lastNotified: datetime.datetime | None = common.field("Last notification.", default=None)
    notifications: int = common.field("Notifications sent for this firing.", default=0, ge=0)
    escalationLevel: int = common.field("Escalation steps taken.", default=0, ge=0)
    acknowledgedBy: str | None = common.field("Who acknowledged (ack annotation).", default=None, max_length=253)
    previousNotified: datetime.datetime | None = common.field(
        "Last notification of this alert's previous firing (flap damping counts the route's repeat interval from it).",
        default=None)
    continued: list[RouteProgress] = common.field(
        "Routes after the first that matched (continue), each repeating and escalating on its own.",
        default_factory=list, max_length=128)  # every leaf of the tree (16 x 4 x 2) may match
    damped: bool | None = common.field(
        "True while a re-fire within the route's repeat interval of the last notification is not notified "
        "(flap damping); it is notified if it is still firing when the interval has passed.", default=None)


class GroupStatus(common.ApiModel):
    """An alert group of a route with groupBy: what it last told and when."""

    key: str = common.field("The route's path and the groupBy labels' values, e.g. routes[0]{service=\"web\"}.",
                            max_length=1024)
    since: datetime.datetime | None = common.field("When the group began (its first alert).", default=None)
    lastNotified: datetime.datetime | None = common.field("The group's last notification.", default=None)
    notifications: int = common.field("Notifications the group sent.", default=0, ge=0)
    alerts: list[typing.Annotated[str, pydantic.StringConstraints(max_length=320)]] = common.field(
        "The firing alerts (rule/service) its last notification listed.", default_factory=list, max_length=500)


class DeliveryOutcome(str, enum.Enum):
    SENT = "Sent"
    FAILED = "Failed"
    PENDING = "Pending"


class Delivery(common.ApiModel):
    time: datetime.datetime = common.field("When attempted.")
    channel: str = common.field("Channel name.")
    alert: str = common.field("rule/service.")
    kind: str = common.field("firing, repeat, escalation or resolved.", default="firing")
    outcome: DeliveryOutcome = common.field("Sent, Failed or Pending.")
    attempt: int = common.field("Attempt number.", default=1, ge=1)
    key: str = common.field("Idempotency key, so a restart neither drops nor doubles.", default="")
    severity: str = common.field("Severity of the alert.", default="")
    summary: str = common.field("The text sent.", default="", max_length=1024)
    firedAt: datetime.datetime | None = common.field("When the alert started firing.", default=None)
    message: str = common.field("Error or detail.", default="", max_length=1024)
    group: str | None = common.field("For a group's notification: the group's key.", default=None, max_length=1024)
    alerts: list[typing.Annotated[str, pydantic.StringConstraints(max_length=330)]] = common.field(
        "For a group's notification: its alerts, rule/service=firing or =resolved.", default_factory=list,
        max_length=100)


class AlertPolicyStatus(common.BaseStatus):
    ruleCount: int | None = common.field("Number of rules.", default=None, ge=0)
    firing: int | None = common.field("Alerts firing now.", default=None, ge=0)
    lastNotified: datetime.datetime | None = common.field("Last notification of any alert.", default=None)
    lastAck: str | None = common.field(
        "The ack annotation value last applied (a new value acknowledges the alerts firing then).", default=None)
    alerts: list[AlertStatus] = common.field("Alert states per rule and service.", default_factory=list, max_length=500)
    groups: list[GroupStatus] = common.field(
        "Alert groups of routes with groupBy (one notification per group; each holds a firing alert, and "
        "status.alerts holds at most 500).", default_factory=list, max_length=500)
    deliveries: list[Delivery] = common.field(
        "Log of deliveries, newest first: the last 50 done, and up to 150 still pending (the outbox; past that the "
        "oldest pending one is given up, and its entry says so).",
        default_factory=list, max_length=200)


class AlertPolicy(common.ApiModel):
    spec: AlertPolicySpec = common.field("Rules, channels and routing.")
    status: AlertPolicyStatus = common.field("Observed state.", default_factory=AlertPolicyStatus)


KIND = common.KindInfo(
    kind="AlertPolicy",
    plural="alertpolicies",
    short_names=("alp",),
    description="Threshold rules over MonitoredServices, channels, and routing with cooldown and escalation.",
    printer_columns=(
        common.PrinterColumn("Rules", "integer", ".status.ruleCount", "Number of rules."),
        common.PrinterColumn("Firing", "integer", ".status.firing", "Alerts firing now."),
        common.PrinterColumn("Last Notified", "date", ".status.lastNotified", "Last notification."),
        common.ready_column(),
        common.age_column(),
    ),
)
MODEL = AlertPolicy
