"""Adapters: the I/O behind small Protocols, one file each. Blocking clients live here
and are called from the event loop only through the operator's bounded pools (operator/pools.py)."""
