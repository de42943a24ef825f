"""The seam every metric source sits behind (as KEDA's scalers do): one file per source.

A source is given every request of a round at once, so that it can batch them its own way
(Prometheus: one query per distinct text; the metrics API: one list per namespace), and
answers each owner's samples. A source never raises for one bad request: the sample says
what went wrong.
"""

from __future__ import annotations

import dataclasses
import typing

from controller.core import scaling
from controller.core import selectors
from controller.core import targets

Samples = dict[typing.Hashable, dict[scaling.MetricKey, scaling.Sample]]
# Called with an owner and its samples as soon as they are all in (a source that can say so
# early sets `streams = True` and takes `on_owner` in read()).
OnOwner = typing.Callable[[typing.Hashable, dict[scaling.MetricKey, scaling.Sample]], None]


@dataclasses.dataclass(frozen=True)
class Request:
    owner: typing.Hashable  # a ScalingPolicy's or MonitoredService's key
    metric: scaling.MetricKey
    target: targets.Target
    selector: selectors.Selector = selectors.Selector()  # the workload's pods (metrics API)


class MetricSource(typing.Protocol):
    async def read(self, requests: typing.Sequence[Request]) -> Samples: ...
