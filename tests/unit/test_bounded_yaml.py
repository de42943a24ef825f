"""YAML handed to `capliquify validate` / `simulate` is bounded (issue 21): an alias bomb is
refused in one line with a non-zero exit instead of expanding into hundreds of megabytes;
recursive aliases, deep nesting, broken YAML and unreadable files are one line too."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller import cli
from controller.core import bounded_yaml


def bomb(levels: int) -> str:
    """The classic "billion laughs", as the name of a ScalingPolicy (printed in every problem)."""
    names = "abcdefghij"[:levels]
    lines = ['  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  {name}: &{name} [" + ",".join([f"*{names[index]}"] * 9) + "]" for index, name in enumerate(names[1:])]
    return ("x:\n" + "\n".join(lines) + "\napiVersion: ops.capliquify.io/v1alpha1\nkind: ScalingPolicy\n"
            f"metadata: {{name: *{names[-1]}}}\nspec: {{}}\n")


def validate(tmp_path: pathlib.Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "input.yaml"
    path.write_text(text)
    code = cli.main(["validate", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_alias_bomb_is_refused_in_one_line(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = bomb(7)  # 9**7 = 4.8 million strings once expanded
    assert len(text) < 520
    code, out, err = validate(tmp_path, text, capsys)
    assert code != 0
    assert len(out) + len(err) < 1000, f"{len(out) + len(err)} bytes of output"
    assert err.count("\n") == 1 and "refused: aliases expand" in err


@pytest.mark.parametrize("text,words", [
    ("a: &a [*a]\n", "recursive alias"),
    ("a: &a {b: *a}\n", "recursive alias"),
    ("[" * 1200 + "]" * 1200 + "\n", "nested deeper than 100 levels"),
    ("a: [1, 2\nb: c\n", "not YAML: line"),
    ("a: !!python/object:os.system {}\n", "not YAML"),
    ("kind: \x1f\n", "not YAML: character #x001f at position 6 is not allowed"),
    ("apiVersion: v1\nkind: ScalingPolicy\nmetadata: [not, a, map]\nspec: {}\n", "ScalingPolicy/#"),
])
def test_hostile_yaml_is_one_line_never_a_traceback(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
                                                     text: str, words: str) -> None:
    code, out, err = validate(tmp_path, text, capsys)
    assert code != 0 and words in err, err
    assert "Traceback" not in err and all(len(line) < 400 for line in err.splitlines())


def test_an_unreadable_file_is_one_line(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(tmp_path / "missing.yaml")]) != 0
    assert "cannot read: No such file or directory" in capsys.readouterr().err
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00kind")
    assert cli.main(["validate", str(binary)]) != 0
    assert "not UTF-8 text" in capsys.readouterr().err


def test_ordinary_aliases_still_load(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("apiVersion: ops.capliquify.io/v1alpha1\n"
            "kind: ScalingPolicy\nmetadata: {name: web, labels: &labels {app: web, team: shop}, annotations: *labels}\n"
            "spec: {targetRef: {kubernetes: {kind: Deployment, name: web}}, minReplicas: 1, maxReplicas: 5,\n"
            "       metrics: [{type: cpu, scaleUp: 70, scaleDown: 30}]}\n")
    code, out, err = validate(tmp_path, text, capsys)
    assert (code, err) == (0, "") and "1 object(s) checked, 0 problem(s)" in out


def test_simulate_refuses_a_bomb_too(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(bomb(7).replace("kind: ScalingPolicy", "kind: AlertPolicy"))
    assert cli.main(["simulate", str(policy), "--series", str(policy)]) == 2
    assert "refused: aliases expand" in capsys.readouterr().err


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30)


@settings(max_examples=100, deadline=None)
@given(yaml_values)
def test_without_aliases_it_loads_what_safe_load_loads(value: object) -> None:
    text = yaml.safe_dump(value)
    assert bounded_yaml.load_all(text) == list(yaml.safe_load_all(text))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=6))
def test_the_expansion_counted_is_the_expansion_built(fan_outs: list[int]) -> None:
    """Chains of anchors (each level `fan_out` aliases of the previous): the size computed from
    the graph equals the number of nodes the fully expanded document has."""
    lines = ["l0: &l0 [x]"]
    for level, fan_out in enumerate(fan_outs, 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * fan_out) + "]")
    text = "\n".join(lines) + "\n"
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    _, expanded = bounded_yaml.expansion(node)
    assert expanded == _count(yaml.safe_load(text))


def _count(value: object) -> int:
    if isinstance(value, list):
        return 1 + sum(_count(item) for item in value)
    if isinstance(value, dict):
        return 1 + sum(_count(key) + _count(item) for key, item in value.items())
    return 1


# -- Secrets holding YAML (SMTP, SMS gateway) are read the same bounded way --------------------

def secret_bomb(levels: int, field: str) -> str:
    names = "abcdefghij"[:levels]
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{name}: &{name} [" + ",".join([f"*{names[index]}"] * 9) + "]" for index, name in enumerate(names[1:])]
    return "\n".join(lines) + f"\nurl: https://sms.example/send\nhost: mail.example\nfrom: a@b.c\n{field}: *{names[-1]}\n"


@pytest.mark.parametrize("module,field", [("notify_sms", "token"), ("notify_email", "password")])
def test_a_secrets_alias_bomb_is_refused_not_expanded(module: str, field: str) -> None:
    """An SMS token or SMTP password that is an alias bomb (used as text it would be a 40 MB
    string in the operator, every delivery) is a DeliveryError naming no part of it."""
    import importlib

    from controller.adapters import notify

    notifier = importlib.import_module(f"controller.adapters.{module}")
    with pytest.raises(notify.DeliveryError, match="must be YAML with") as refused:
        notifier._settings(secret_bomb(7, field))  # type: ignore[attr-defined]
    assert "lol" not in str(refused.value)


def test_no_yaml_is_loaded_but_through_bounded_yaml() -> None:
    """A search: every YAML the operator or its CLI reads comes from someone else (files,
    Secrets), so none is loaded but through core/bounded_yaml.py."""
    import re

    root = pathlib.Path(__file__).resolve().parents[2] / "controller"
    loading = re.compile(r"(?<![\w.])yaml\.((safe_|full_|unsafe_)?load|compose|parse|scan)\w*\(|(?<![\w.])yaml\.\w*Loader\(")
    offenders = [f"{path.relative_to(root.parent)}:{number}"
                 for path in sorted(root.rglob("*.py")) if path.name != "bounded_yaml.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if loading.search(line)]
    assert offenders == [], offenders


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25)
kinds = st.sampled_from(["ScalingPolicy", "MonitoredService", "AlertPolicy", "Other"])


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.text(max_size=300),
    st.builds(lambda kind, meta, spec: yaml.safe_dump({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": kind,
                                                       "metadata": meta, "spec": spec}),
              kinds, json_values, json_values)))
def test_validate_answers_anything_in_lines_never_a_traceback(text: str) -> None:
    import contextlib
    import io
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8", errors="surrogatepass") as handle:
        handle.write(text)
        handle.flush()
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["validate", handle.name])
    assert code in (0, 1)
    assert "object(s) checked" in out.getvalue()
    assert len(out.getvalue()) + len(err.getvalue()) < 200 + 40 * len(text) + 2000, "output grows with the input only"
