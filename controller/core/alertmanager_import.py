"""`capliquify alerts migrate`: an Alertmanager configuration as an AlertPolicy: pure.

What carries over: the route tree (receiver, matchers, match, match_re, continue, group_by,
group_wait, group_interval, repeat_interval; three levels), inhibit_rules, and receivers of
the kinds this project sends to (Slack, email, webhook, PagerDuty Events v2, Opsgenie,
Microsoft Teams), each becoming a channel. Secrets (webhook URLs, keys, passwords) are never
copied: each becomes a SecretKeyRef into one Secret whose keys the output lists, with where
in the file each value is. What cannot be carried is refused, every reason at once, naming
where it is; what carries with a difference is said in notes.
"""

from __future__ import annotations

import dataclasses
import re
import typing

from controller.api import matchers

DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
UNIT_SECONDS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
CARRIED = {"slack_configs", "email_configs", "webhook_configs", "pagerduty_configs", "opsgenie_configs",
           "msteams_configs", "msteamsv2_configs"}
ROUTE_KEYS = {"receiver", "matchers", "match", "match_re", "continue", "group_by", "group_wait", "group_interval",
              "repeat_interval", "routes"}
# A route's bounds here (controller/api/alertpolicy.py): children per level, by depth.
CHILDREN = {0: 16, 1: 4, 2: 2, 3: 0}
INTERVALS = {"group_wait": ("groupWaitSeconds", 0, 86400), "group_interval": ("groupIntervalSeconds", 1, 86400),
             "repeat_interval": ("repeatIntervalSeconds", 60, 7 * 86400)}


class Refused(Exception):
    """The configuration holds what an AlertPolicy cannot say; one line per reason."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = reasons


@dataclasses.dataclass
class Migration:
    spec: dict[str, typing.Any]  # channels, defaultRoute, routes, inhibitRules, sendResolved
    secret_keys: dict[str, str]  # key in the Secret -> where its value is in alertmanager.yml
    notes: list[str]


def migrate(config: typing.Any, secret: str) -> Migration:
    if not isinstance(config, dict) or not isinstance(config.get("route"), dict):
        raise Refused(["the file is not an Alertmanager configuration: it has no route"])
    work = _Work(secret, config.get("global") or {})
    channels_of = work.receivers(config.get("receivers") or [])
    for key in ("time_intervals", "mute_time_intervals"):
        if config.get(key):
            work.notes.append(f"{key}: not carried (an AlertPolicy has no time intervals); routes using them are refused")
    if config.get("templates"):
        work.notes.append("templates: not carried; each rule's summary and annotations are the message")
    root = config["route"]
    default = work.settings(root, "route", channels_of, None)
    for key in ("matchers", "match", "match_re"):
        if root.get(key):
            work.refuse(f"route.{key}: the root route matches every alert here; move its matchers to a child route")
    routes = work.children(root, "route", channels_of, 0)
    inhibit = [work.inhibit_rule(rule, f"inhibit_rules[{i}]") for i, rule in enumerate(config.get("inhibit_rules") or [])]
    if work.refusals:
        raise Refused(work.refusals)
    spec: dict[str, typing.Any] = {"channels": work.channels, "defaultRoute": default, "routes": routes,
                                   "sendResolved": work.send_resolved()}
    if inhibit:
        spec["inhibitRules"] = inhibit
    return Migration(spec, work.secret_keys, work.notes)


class _Work:
    def __init__(self, secret: str, global_: typing.Mapping[str, typing.Any]) -> None:
        self.secret, self.global_ = secret, global_
        self.channels: list[dict[str, typing.Any]] = []
        self.secret_keys: dict[str, str] = {}
        self.notes: list[str] = []
        self.refusals: list[str] = []
        self.resolved: dict[str, bool] = {}  # channel -> its config's send_resolved

    def refuse(self, reason: str) -> None:
        self.refusals.append(reason)

    def ref(self, key: str, where: str) -> dict[str, str]:
        self.secret_keys[key] = where
        return {"name": self.secret, "key": key}

    # -- receivers --------------------------------------------------------------------------

    def receivers(self, receivers: typing.Sequence[typing.Any]) -> dict[str, list[str]]:
        channels_of: dict[str, list[str]] = {}
        for index, receiver in enumerate(receivers):
            where = f"receivers[{index}]"
            if not isinstance(receiver, dict) or not isinstance(receiver.get("name"), str):
                self.refuse(f"{where}: a receiver needs a name")
                continue
            base = _dns(receiver["name"])
            names = []
            for kind, configs in receiver.items():
                if kind == "name":
                    continue
                if kind not in CARRIED:
                    self.refuse(f"{where} ({receiver['name']}): {kind} cannot be carried (channels here: slack, email, "
                                "webhook, pagerduty, opsgenie, teams)")
                    continue
                for number, item in enumerate(configs or []):
                    name = _unique(f"{base}-{kind.split('_')[0]}" + (f"-{number + 1}" if number else ""),
                                   {c["name"] for c in self.channels})
                    channel = self.channel(kind, item or {}, name, f"{where}.{kind}[{number}]")
                    if channel is not None:
                        self.channels.append(channel)
                        names.append(name)
            channels_of[receiver["name"]] = names
        return channels_of

    def channel(self, kind: str, item: typing.Mapping[str, typing.Any], name: str, where: str
                ) -> dict[str, typing.Any] | None:
        defaults = {"slack_configs": False, "email_configs": False}  # Alertmanager's send_resolved defaults
        self.resolved[name] = bool(item.get("send_resolved", defaults.get(kind, True)))
        if kind == "slack_configs":
            if not (item.get("api_url") or item.get("api_url_file") or self.global_.get("slack_api_url")):
                self.refuse(f"{where}: no api_url (nor global slack_api_url)")
                return None
            source = f"{where}.api_url" if item.get("api_url") or item.get("api_url_file") else "global.slack_api_url"
            return {"name": name, "slack": {"webhookSecretRef": self.ref(name, source)}}
        if kind == "email_configs":
            to = [t.strip() for t in str(item.get("to") or "").split(",") if t.strip()]
            if not to:
                self.refuse(f"{where}: no `to` address")
                return None
            self.notes.append(f"{where}: the Secret key {name} holds YAML host, port, from, username, password, "
                              "starttls (from smarthost, from, auth_username, auth_password, require_tls)")
            return {"name": name, "email": {"smtpSecretRef": self.ref(name, f"{where} (smarthost, auth_*; global.smtp_*)"),
                                            "to": to}}
        if kind == "webhook_configs":
            if not isinstance(item.get("url"), str):
                self.refuse(f"{where}: url_file cannot be carried (the webhook URL is written in the policy)")
                return None
            return {"name": name, "webhook": {"url": item["url"]}}
        if kind == "pagerduty_configs":
            if item.get("service_key") and not item.get("routing_key"):
                self.refuse(f"{where}: service_key is PagerDuty's Events API v1; use an Events API v2 routing_key")
                return None
            settings: dict[str, typing.Any] = {"routingKeySecretRef": self.ref(name, f"{where}.routing_key")}
            if item.get("url"):
                settings["url"] = item["url"]
            return {"name": name, "pagerduty": settings}
        if kind == "opsgenie_configs":
            settings = {"apiKeySecretRef": self.ref(name, f"{where}.api_key (or global.opsgenie_api_key)")}
            url = item.get("api_url") or self.global_.get("opsgenie_api_url")
            if url:
                settings["url"] = str(url).rstrip("/")
            return {"name": name, "opsgenie": settings}
        return {"name": name, "teams": {"webhookSecretRef": self.ref(name, f"{where}.webhook_url")}}  # msteams(v2)

    def send_resolved(self) -> bool:
        values = set(self.resolved.values())
        if len(values) > 1:
            quiet = sorted(name for name, sends in self.resolved.items() if not sends)
            self.notes.append(f"send_resolved differs between receivers; an AlertPolicy says it once: resolved notices "
                              f"are sent, also to {', '.join(quiet)} (Alertmanager's send_resolved false there)")
        return True in values or not values

    # -- routes -----------------------------------------------------------------------------

    def settings(self, route: typing.Mapping[str, typing.Any], where: str, channels_of: typing.Mapping[str, list[str]],
                 depth: int | None) -> dict[str, typing.Any]:
        out: dict[str, typing.Any] = {}
        for key in route:
            if key not in ROUTE_KEYS:
                self.refuse(f"{where}.{key}: cannot be carried"
                            + (" (no time intervals here)" if "time_intervals" in key else ""))
        receiver = route.get("receiver")
        if receiver is not None:
            if receiver not in channels_of:
                self.refuse(f"{where}.receiver: {receiver} is not a receiver of the file")
            elif not channels_of[receiver]:
                self.notes.append(f"{where}.receiver: {receiver} has no channel (an alert routed there is not sent)")
            out["channels"] = list(channels_of.get(receiver, []))
        if route.get("group_by") is not None:
            group_by = [str(g) for g in route["group_by"]]
            out["groupBy"] = ["..."] if "..." in group_by else group_by
        for key, (field, low, high) in INTERVALS.items():
            if route.get(key) is not None:
                seconds = _seconds(str(route[key]))
                if seconds is None or not low <= seconds <= high:
                    self.refuse(f"{where}.{key}: {route[key]} is not a duration from {low} s to {high} s")
                else:
                    out[field] = int(seconds)
        if depth is None:
            return out
        found = [str(m) for m in route.get("matchers") or []]
        found += [str(matchers.Matcher(k, matchers.REGEX, str(v))) for k, v in (route.get("match_re") or {}).items()]
        for text in found:
            try:
                matchers.parse_all([text])
            except matchers.MatcherError as error:
                self.refuse(f"{where}.matchers: {error}")
        if found:
            out["matchers"] = found
        if route.get("match"):
            out["match"] = {str(k): str(v) for k, v in route["match"].items()}
        if route.get("continue"):
            out["continue"] = True
        return out

    def children(self, route: typing.Mapping[str, typing.Any], where: str, channels_of: typing.Mapping[str, list[str]],
                 depth: int) -> list[dict[str, typing.Any]]:
        routes = route.get("routes") or []
        if len(routes) > CHILDREN[depth]:
            limit = CHILDREN[depth]
            self.refuse(f"{where}.routes: {len(routes)} routes; at most {limit} here at this depth"
                        if limit else f"{where}.routes: deeper than three levels of routes")
            return []
        out = []
        for index, child in enumerate(routes):
            path = f"{where}.routes[{index}]"
            settings = self.settings(child, path, channels_of, depth + 1)
            nested = self.children(child, path, channels_of, depth + 1)
            if nested:
                settings["routes"] = nested
            out.append(settings)
        return out

    def inhibit_rule(self, rule: typing.Mapping[str, typing.Any], where: str) -> dict[str, typing.Any]:
        out: dict[str, typing.Any] = {}
        for side in ("source", "target"):
            found = [str(m) for m in rule.get(f"{side}_matchers") or []]
            found += [str(matchers.Matcher(k, matchers.EQUAL, str(v))) for k, v in (rule.get(f"{side}_match") or {}).items()]
            found += [str(matchers.Matcher(k, matchers.REGEX, str(v)))
                      for k, v in (rule.get(f"{side}_match_re") or {}).items()]
            for text in found:
                try:
                    matchers.parse_all([text])
                except matchers.MatcherError as error:
                    self.refuse(f"{where}.{side}_matchers: {error}")
            out[f"{side}Matchers"] = found
        out["equal"] = [str(e) for e in rule.get("equal") or []]
        return out


def _seconds(text: str) -> float | None:
    if text == "0":
        return 0.0
    found = DURATION.match(text)
    if found is None or not any(found.groups()):
        return None
    return sum(int(value) * unit for value, unit in zip(found.groups(), UNIT_SECONDS, strict=True) if value)


def _dns(name: str) -> str:
    """A receiver's name as a channel name (lower case letters, digits and '-')."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return (cleaned or "receiver")[:40]


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    return candidate
