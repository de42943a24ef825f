"""The memory budget, and every answer-size cap and connection count derived from it.

A cap chosen on its own says nothing about the process: six Prometheus answers of 16 MiB,
each parsed into ~7x its size at once, added 700 MB to a pod whose limit was 512 Mi. Here the
caps are worked out from the limit instead (a unit test holds the arithmetic, and the
memory benchmark measures it: `python -m bench --suites memory`).

    pod limit (manifests/base/deployment.yaml)              1024 MiB
    the operator's own state (view, records, clients)        768 MiB  (README's bench: 661 MB
                                                                      at 10,000 policies and
                                                                      10,000 services; the
                                                                      parser process ~40 MB)
    answers in flight, all clients together                  256 MiB  = 1024 - 768

Per client, what one answer byte costs while it is in flight:

- Prometheus: each of its C connections holds its body (x2 while the pieces are joined);
  the lane sends one body to the parser process (x1 pickled) and that process holds the
  body and the parsed document (x(1 + E), E the worst growth of a JSON text into Python
  objects, measured: `[{},{},...]` is x25). So an answer may be
  128 MiB / (2C + 1 + (1 + E)) = 128 MiB / 46 = 2.78 MiB, about 30,000 series of
  `sum by (namespace, workload)`: three times the 10,000 workloads of the largest bench.
- Railway: its connections hold their bodies (x2 each) and its answers are parsed on the
  loop one at a time (x(1 + E)): 512 KiB x (2 x 8 + 29) = 22.5 MiB. A poll answer is a few KiB.
- Health checks: a body is searched as it streams (`bodyContains`), never held whole: one
  read buffer per probe, 256 x 2 x 16 KiB = 8 MiB at most.
- Notifications: 4 KiB of a receiver's answer, 64 connections: 0.5 MiB.
- The metrics API's pod lists (adapters/source_metrics_api.py): read in pages of 32 pods, each
  page's bytes capped; every KUBE thread (32) may hold a page as it arrives (x2: a bytearray
  growing), and one page at a time is parsed (x(1 + E)): 64 MiB / (2 x 32 + 1 + 29) = 697 KiB
  a page, 21 KiB a pod (a pod is 4-16 KiB with its managed fields).

- Service reads for egress (adapters/kubernetes_services.py, with --cluster-networks): 4 at
  once, each holding its page as it arrives (x2) and one page parsed at a time (x(1 + E)):
  8 MiB / (2 x 4 + 1 + 29) = 215 KiB a page (8 EndpointSlices of 100 endpoints are ~80 KiB).

128 + 22.5 + 8 + 0.5 + 64 + 8 = 231 MiB <= 256 MiB.
"""

from __future__ import annotations

MiB = 1024 * 1024
POD_LIMIT = 1024 * MiB  # manifests/base/deployment.yaml's limits.memory (a unit test compares)
STATE = 768 * MiB
ANSWERS = POD_LIMIT - STATE

# The worst growth of a JSON text parsed by json.loads, bytes of Python objects per byte of
# text (a unit test measures the worst shapes and holds this above them).
JSON_EXPANSION = 28

PROMETHEUS_CONNECTIONS = 8
# A namespace's share: past it only while a share's worth stays free (shares.FairShares), so
# one slow namespace uses at most 6 of 8 and never makes another wait; it takes four slow
# namespaces before a fifth waits (one deadline at most).
PROMETHEUS_PER_NAMESPACE = 2
PROMETHEUS_PARSERS = 1  # answers parsed at once, in the parser process
PROMETHEUS_BUDGET = 128 * MiB
PROMETHEUS_ANSWER = PROMETHEUS_BUDGET // (2 * PROMETHEUS_CONNECTIONS + 1 + (1 + JSON_EXPANSION) * PROMETHEUS_PARSERS)
# A series costs at least ~60 bytes of answer (`{"metric":{},"value":[0,"0"]},`); more series
# than an answer this size can carry legitimately is not a Prometheus answering a policy.
PROMETHEUS_SERIES = 50_000
# Answers smaller than this are parsed on the loop (a few ms at most): the process hop is for
# the large ones.
INLINE_PARSE = 64 * 1024

RAILWAY_CONNECTIONS = 8
RAILWAY_PER_NAMESPACE = 2
RAILWAY_ANSWER = 512 * 1024
RAILWAY_BUDGET = RAILWAY_ANSWER * (2 * RAILWAY_CONNECTIONS + 1 + JSON_EXPANSION)

HEALTH_CONNECTIONS = 256
HEALTH_PER_NAMESPACE = 32  # one namespace alone: up to 224 probes in flight; 32 always left
HEALTH_READ = 16 * 1024  # one read's buffer: bodies stream past it
HEALTH_BODY = 64 * 1024  # how far into a body `bodyContains` looks
HEALTH_BUDGET = HEALTH_CONNECTIONS * 2 * HEALTH_READ

NOTIFY_CONNECTIONS = 64
NOTIFY_PER_NAMESPACE = 16  # a namespace (else a receiver host) of hanging receivers: 48 at most
NOTIFY_ANSWER = 4096
NOTIFY_BUDGET = NOTIFY_CONNECTIONS * 2 * NOTIFY_ANSWER

METRICS_API_READS = 32  # operator/pools.KUBE_THREADS (a unit test compares)
METRICS_API_PAGE_PODS = 32  # a list call's `limit`
METRICS_API_PODS = 5000  # Running pods a namespace may have for the metrics API: past it, its error
METRICS_API_BUDGET = 64 * MiB
METRICS_API_PAGE = METRICS_API_BUDGET // (2 * METRICS_API_READS + 1 + 1 + JSON_EXPANSION)  # bytes a page

SERVICES_READS = 4  # Service and EndpointSlice reads for egress at once (kubernetes_services.py)
SERVICES_PER_NAMESPACE = 1  # one namespace's: one at a time, while a share's worth stays free past it
SERVICES_BUDGET = 8 * MiB
SERVICES_PAGE = SERVICES_BUDGET // (2 * SERVICES_READS + 1 + JSON_EXPANSION)  # bytes a page

IN_FLIGHT = PROMETHEUS_BUDGET + RAILWAY_BUDGET + HEALTH_BUDGET + NOTIFY_BUDGET + METRICS_API_BUDGET + SERVICES_BUDGET
