"""`kubectl capliquify` never prints a terminal control sequence taken from an object (issue
21): whatever text any field holds, the output is printable characters and the newlines of
its own layout, with one line per row."""

from __future__ import annotations

import typing

from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.plugin import views

HOSTILE = ["\x1b]52;c;aGFja2Vk\x07", "\x1b[2J\x1b[H", "web\nshop   forged-row", "\u202egnp.exe", "\r\x1b[1A", "\x9b31m"]
texts = st.text(max_size=20) | st.sampled_from(HOSTILE)


@st.composite
def objects(draw: st.DrawFn) -> tuple[dict, dict, dict]:
    namespace, name = draw(texts), draw(texts)
    decision = {"direction": draw(texts), "from": draw(st.integers(0, 9)), "to": draw(st.integers(0, 9)),
                "reason": draw(texts), "time": draw(texts), "limitedBy": draw(texts)}
    service = {"metadata": {"namespace": namespace, "name": name},
               "status": {"target": draw(texts), "health": draw(texts), "replicas": {"ready": 1, "desired": 2},
                          "rollout": {"phase": draw(texts), "revision": draw(texts)}}}
    policy = {"metadata": {"namespace": namespace, "name": draw(texts)},
              "spec": {"targetRef": {"monitoredService": name}},
              "status": {"target": draw(texts), "currentReplicas": 1, "desiredReplicas": 2, "lastDecision": decision,
                         "recentDecisions": [decision, {**decision, "reason": draw(texts)}],
                         "conditions": [{"type": draw(texts), "status": draw(texts), "reason": draw(texts),
                                         "message": draw(texts)}],
                         "metrics": [{"name": draw(texts), "value": 1.5, "scaleUp": 70, "scaleDown": 30,
                                      "source": draw(texts), "sampledAt": draw(texts)}],
                         "recommendation": draw(texts)}}
    alerts = {"metadata": {"namespace": namespace, "name": draw(texts)},
              "status": {"alerts": [{"rule": draw(texts), "service": name, "state": "Firing",
                                     "acknowledgedBy": draw(texts)}]}}
    return service, policy, alerts


def shape(value: typing.Any) -> typing.Any:
    """The same object with every string a plain one of the same emptiness: its layout's lines."""
    if isinstance(value, str):
        return "x" if value else ""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return value


def printed_safely(text: str) -> bool:
    return all(c.isprintable() or c in " \n" for c in text)


@settings(max_examples=300, deadline=None)
@given(objects())
@example(({"metadata": {"namespace": "shop", "name": "web\x1b]52;c;aGk=\x07"},
           "status": {"health": "\x1b[2J", "target": "a\nb   c"}}, {}, {}))
def test_nothing_an_object_holds_reaches_the_terminal_as_a_control(found: tuple[dict, dict, dict]) -> None:
    service, policy, alerts = found
    for all_namespaces in (True, False):
        rows = views.status_rows([service], [policy] if policy else [], [alerts] if alerts else [])
        table = views.status_table(rows, all_namespaces)
        assert printed_safely(table), repr(table)
        assert table.count("\n") == len(rows), "one line per row, and the header"
    if policy:
        text = views.why(policy)
        assert printed_safely(text), repr(text)
        assert text.count("\n") == views.why(shape(policy)).count("\n"), "no line of its own from a value"


def test_a_control_character_is_shown_not_obeyed() -> None:
    assert views.printable("a\x1b[2Jb\u202ec\nd") == "a\\x1b[2Jb\\u202ec\\nd"
    assert views.printable("plain text, accents é and 日本") == "plain text, accents é and 日本"


def test_the_ack_command_prints_no_control_sequence_from_the_api_server(capsys: typing.Any, monkeypatch: typing.Any) -> None:
    """Its other outputs: the name the API server says you are, and an API error's message."""
    from controller.plugin import main as plugin_main

    class Hostile:
        default_namespace = "shop"
        host = "https://127.0.0.1:6443"

        def __init__(self, *args: typing.Any) -> None:
            pass

        def get(self, *args: str) -> dict:
            return {}

        def whoami(self) -> str:
            return "oidc:\x1b]52;c;aGk=\x07mallory"

        def annotate(self, *args: str) -> None:
            error = plugin_main.kubernetes.client.ApiException(status=422, reason="Invalid")
            error.body = '{"message": "admission denied: \\u001b[2J\\u001b[Hall clear"}'
            raise error

    monkeypatch.setattr(plugin_main, "Cluster", Hostile)
    assert plugin_main.main(["ack", "alp/prod", "LoginAttack/web"]) == 1
    err = capsys.readouterr().err
    assert printed_safely(err) and "\\x1b[2J" in err, repr(err)
    monkeypatch.setattr(Hostile, "annotate", lambda *args: None)
    assert plugin_main.main(["ack", "alp/prod", "LoginAttack/web"]) == 0
    out = capsys.readouterr().out
    assert printed_safely(out) and "\\x1b]52" in out, repr(out)
