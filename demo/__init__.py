"""`make demo`: the main job on the embedded local cluster."""
