"""The thin kopf layer: events and one evaluation loop in, core calls and patches out."""
