"""Closed-loop scaling simulation: a documented plant, our policy, an HPA v2 port, an oracle.

Pure and deterministic (seeded noise, simulated time); used by `capliquify simulate
--trace` and `make bench-quality`. It imports the core and the API, never the operator.
"""
