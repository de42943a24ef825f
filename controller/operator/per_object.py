"""State the operator keeps in memory for one object, valid only for that object.

A name is not an identity: an object deleted and created again under the same name (or
deleted while a watch was broken, and re-listed as a new object) is a different object, and
must not inherit the old one's probe history, rollout verdict, alerts or anything else. So
every entry remembers the uid of the object it was made for (None: written while no object
held the name). An entry is never read for another object: once the view holds a different
uid under its key, reads drop it. Otherwise it behaves as the dict it replaces: work still
in flight for a deleted object may read back what it wrote, and iteration lists every entry
held (so a loop that forgets what deleted objects left still finds them), until `prune()`
removes every entry whose object is gone or replaced: memory returns to nothing once objects
are gone.
"""

from __future__ import annotations

import collections.abc
import typing

from controller.operator import view as view_module

T = typing.TypeVar("T")


def uid_of(view: view_module.View, key: view_module.Key) -> str | None:
    """The uid of the object the view holds under `key`, or None when it holds none."""
    obj = view.objects.get(key)
    if obj is None:
        return None
    return str((obj.get("metadata") or {}).get("uid") or "")


class PerObject(collections.abc.MutableMapping[view_module.Key, T]):
    """A dict by object key whose entries die with their object (see the module's text)."""

    def __init__(self, view: view_module.View) -> None:
        self._view = view
        self._items: dict[view_module.Key, tuple[str | None, T]] = {}

    def _live(self, key: view_module.Key) -> tuple[str | None, T] | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        current = uid_of(self._view, key)
        if current is not None and entry[0] != current:
            del self._items[key]  # another object holds the name now: the old state is gone
            return None
        return entry

    def __getitem__(self, key: view_module.Key) -> T:
        entry = self._live(key)
        if entry is None:
            raise KeyError(key)
        return entry[1]

    def __setitem__(self, key: view_module.Key, value: T) -> None:
        self._items[key] = (uid_of(self._view, key), value)

    def __delitem__(self, key: view_module.Key) -> None:
        del self._items[key]

    def __iter__(self) -> typing.Iterator[view_module.Key]:
        return iter(list(self._items))  # a copy: callers delete while they iterate

    def __len__(self) -> int:
        return len(self._items)

    def prune(self) -> int:
        """Drops the entries of objects deleted or replaced; how many were dropped."""
        stale = [key for key, (uid, _) in self._items.items()
                 if (current := uid_of(self._view, key)) is None or uid != current]
        for key in stale:
            del self._items[key]
        return len(stale)

    def stored(self) -> int:
        """Entries held right now, stale ones included (what memory holds)."""
        return len(self._items)
