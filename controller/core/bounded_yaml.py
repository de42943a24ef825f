"""YAML as input from someone else: safe types only, and bounded.

A YAML alias is a reference, so a few hundred bytes of anchors and aliases (a "billion
laughs") load as a small graph that expands into hundreds of megabytes the moment anything
walks it: printing it, validating it, dumping it. `capliquify validate` once printed 300 MB
for a 415-byte file. Here each document's node graph is measured as it would expand before
anything is built from it: aliases are allowed (shared labels are common in manifests) but
the nodes they add are bounded, a recursive alias is refused, and so is nesting deeper than
the parser can follow. Every refusal is a `YamlRefused` with a one-line reason. Pure: text
in, documents out.
"""

from __future__ import annotations

import typing

import yaml

MAX_ALIAS_NODES = 100_000  # nodes aliases may add beyond those written out (a manifest uses a handful)
SECRET_ALIAS_NODES = 1_000  # a Secret's few settings (SMTP, SMS gateway) need none
MAX_DEPTH = 100  # nesting (a manifest goes ~20 deep); the parser recurses per level, so bounded by us,
#                  not by whatever recursion limit the process happens to have


class YamlRefused(ValueError):
    """Not YAML, or YAML refused (the reason is one line)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting past MAX_DEPTH as it composes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: typing.Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlRefused(f"refused: nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_all(text: str, max_alias_nodes: int = MAX_ALIAS_NODES, unique_keys: bool = False) -> list[typing.Any]:
    """Every document of `text`, each checked by `expansion` before it is constructed; with
    `unique_keys`, a mapping that names a key twice is refused, as kubectl refuses it (YAML
    says keys are unique; PyYAML keeps the last silently)."""
    documents = []
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here already
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            written, expanded = expansion(node)
            if expanded - written > max_alias_nodes:
                raise YamlRefused(f"refused: aliases expand this document by more than {max_alias_nodes} nodes "
                                  f"({written} written, {expanded} once expanded)")
            if unique_keys:
                repeated_key(node)
            documents.append(loader.construct_document(node))
    except yaml.YAMLError as error:
        raise YamlRefused(_one_line(error)) from None
    except RecursionError:
        raise YamlRefused("refused: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


def load(text: str, max_alias_nodes: int = MAX_ALIAS_NODES) -> typing.Any:
    """The one document of `text` (None for none); more than one is refused."""
    documents = load_all(text, max_alias_nodes)
    if len(documents) > 1:
        raise YamlRefused(f"expected one YAML document, found {len(documents)}")
    return documents[0] if documents else None


def expansion(root: yaml.Node) -> tuple[int, int]:
    """(distinct nodes, nodes once every alias is expanded) of a composed document, without
    expanding anything: each node's expanded size is computed once (iteratively, so depth
    costs no recursion). A node that contains itself is refused."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        ident = id(node)
        if children_done:
            on_path.discard(ident)
            sizes[ident] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        if ident in sizes:
            continue
        if ident in on_path:
            raise YamlRefused("refused: a recursive alias (a node that contains itself)")
        on_path.add(ident)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YamlRefused("refused: a recursive alias (a node that contains itself)")
            if id(child) not in sizes:
                stack.append((child, False))
    return len(sizes), sizes[id(root)]


def repeated_key(root: yaml.Node) -> None:
    """Refuses a mapping with a scalar key written twice (each node visited once: aliases add
    no work, and the walk is iterative)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in first:
                        line = key.start_mark.line + 1
                        earlier = first[key.value].start_mark.line + 1
                        shown = key.value if len(key.value) <= 60 and key.value.isprintable() else repr(key.value[:60])
                        raise YamlRefused(f"not YAML for the API server: line {line}: mapping key {shown!r} "
                                          f"already defined at line {earlier}")
                    first[key.value] = key
        stack.extend(_children(node))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _one_line(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.reader.ReaderError):
        return f"not YAML: character #x{error.character:04x} at position {error.position} is not allowed"
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not YAML: {where}{problem}"
