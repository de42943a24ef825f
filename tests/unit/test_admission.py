"""The admission policy's text (controller/admission.py): what it covers, and the ack rule
against the operator's reading of the ack. tests/integration/test_isolation.py applies the
policy to the real API server and runs it."""

from __future__ import annotations

import re

import hypothesis
import pydantic
import pytest
import yaml
from hypothesis import strategies as st

from controller import admission
from controller.api import alertpolicy
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import alerting
from controller.plugin import views

# User names as authenticators issue them: OIDC issuers (`https://...#sub`), service accounts
# (`system:serviceaccount:ns:sa`), e-mail addresses, and the characters that end a name in the ack.
NAMES = st.one_of(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=300),
    st.text(st.sampled_from("ab:/ ,@#.-"), min_size=1, max_size=12),
    st.builds(lambda ns, sa: f"system:serviceaccount:{ns}:{sa}", st.from_regex(r"[a-z]{1,8}", fullmatch=True),
              st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
)
ALERTS = st.builds(lambda rule, service: f"{rule}/{service}", st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True),
                   st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True))


def policy_doc() -> dict:
    return next(doc for doc in yaml.safe_load_all(admission.render()) if doc["kind"] == "ValidatingAdmissionPolicy")


def split(expression: str) -> tuple[str, str]:
    """`variables.kind != K || !(WHEN) || ALLOWED` → (WHEN, ALLOWED), parentheses balanced."""
    start = expression.index("|| !(") + len("|| !(")
    depth = 1
    for index in range(start, len(expression)):
        depth += {"(": 1, ")": -1}.get(expression[index], 0)
        if depth == 0:
            assert expression[index:index + 5] == ") || ", expression
            return expression[start:index], expression[index + 5:]
    raise AssertionError(expression)


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(user=NAMES, value=st.one_of(NAMES, st.builds(lambda a, b: a + b, NAMES, NAMES),
                                             st.builds(lambda user, alerts: f"{user}:{alerts}", NAMES, NAMES)))
def test_an_accepted_ack_is_read_as_the_requesting_user(user: str, value: str) -> None:
    """No value the policy accepts from `user` is recorded under another name."""
    if admission.ack_accepted(user, value):
        assert alerting.parse_ack(value)[0] == user


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(user=NAMES, alert=ALERTS)
def test_the_plugins_ack_is_accepted_for_every_user_name(user: str, alert: str) -> None:
    """Whatever the user's name holds (':' or '/' included), `kubectl capliquify ack` writes a
    value the policy accepts and the operator reads as that user and that one alert."""
    hypothesis.assume(len(user) <= admission.MAX_ACKER)
    value = views.ack_value(user, alert)
    assert admission.ack_accepted(user, value)
    who, alerts = alerting.parse_ack(value)
    rule, service = alert.split("/")
    assert who == user and alerts == frozenset({alert}) and alerting.acknowledges((who, alerts), rule, service)


@pytest.mark.parametrize("user,value,accepted", [
    ("alice", "alice: HighErrorRate/web", True),
    ("alice", "alice", True),                      # every firing alert
    ("alice", "alice:", True),                     # the same, for names that hold ':' or '/'
    ("bob", "alice: HighErrorRate/web", False),    # another's name
    ("alice", "HighErrorRate/web", False),         # no name: recorded as "ack"
    ("alice", "alice:x: Down/web", False),         # read as "alice:x"
    ("a:b", "a:b", False),                         # read as "a" acknowledging rule "b"
    ("a:b", "a:b: Down/web", True),
    ("alice", " alice: Down/web", False),
])
def test_ack_values(user: str, value: str, accepted: bool) -> None:
    assert admission.ack_accepted(user, value) is accepted


def test_the_ack_rule_in_cel_says_what_ack_accepted_says() -> None:
    """The CEL is the Python rule spelled in CEL: same operators, same order (reviewed here,
    run for real in tests/integration/test_isolation.py)."""
    rule = next(v for v in policy_doc()["spec"]["validations"] if "variables.ack" in v["expression"])
    assert ("(variables.ack == variables.user && !variables.user.contains(':') && !variables.user.contains('/')) || "
            "(variables.ack.startsWith(variables.user + ':') && "
            "!variables.ack.substring(size(variables.user) + 1).contains(':'))") in rule["expression"]
    assert f"size(variables.user) <= {admission.MAX_ACKER}" in rule["expression"]
    assert "variables.ack != variables.oldAck" in rule["expression"]


def test_every_check_of_a_right_runs_only_on_create_or_on_a_change() -> None:
    """An update touching only annotations, labels or finalizers (an ack, the operator's own
    finalizer) asks for no right: every rule that asks RBAC is guarded by a comparison with
    oldObject (or, for the ack, with the old annotation)."""
    for rule in policy_doc()["spec"]["validations"]:
        expression = rule["expression"]
        guard, check = split(expression)
        assert "authorizer" in check or "variables.user" in check, expression
        assert "authorizer" not in guard
        assert "oldObject == null" in guard or "variables.oldAck" in guard, expression


@pytest.mark.parametrize("kind,model", [
    ("monitoredservices", monitoredservice.MonitoredServiceSpec),
    ("alertpolicies", alertpolicy.AlertPolicySpec),
    ("scalingpolicies", scalingpolicy.ScalingPolicySpec),
])
def test_every_spec_field_is_checked_or_declared_inert(kind: str, model: type[pydantic.BaseModel]) -> None:
    """A field added to a spec fails here until someone decides which right it needs."""
    checked: set[str] = set()
    for rule in policy_doc()["spec"]["validations"]:
        if f"variables.kind != '{kind}'" not in rule["expression"]:
            continue
        guard = split(rule["expression"])[0]
        if "object.spec == oldObject.spec" in guard:
            checked |= set(model.model_fields)
        checked |= set(re.findall(r"object\.spec\.(\w+) == oldObject\.spec\.\1\b", guard))
        checked |= set(re.findall(r"oldObject\.spec\.(\w+)\[\d+\] != object\.spec\.\1\[", guard))
    assert set(model.model_fields) - checked == admission.INERT[kind]
    assert not checked & admission.INERT[kind]


def test_a_policy_through_a_service_needs_the_scale_of_both_kinds_and_a_named_target_its_own_kind() -> None:
    rules = policy_doc()["spec"]["validations"]
    via = next(r["expression"] for r in rules if "has(object.spec.targetRef.monitoredService)" in r["expression"])
    assert ".resource('deployments').subresource('scale').namespace(variables.ns).check('update').allowed() && " \
           "authorizer.group('apps').resource('statefulsets')" in via
    rollback = next(r for r in rules if r["messageExpression"].startswith("'spec.rollout.autoRollback"))
    assert "object.spec.target.kubernetes.kind == 'StatefulSet' ? 'statefulsets' : 'deployments'" in rollback["expression"]
    assert "check('patch')" in rollback["expression"]
