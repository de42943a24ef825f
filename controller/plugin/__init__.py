"""`kubectl capliquify`: what the operator decided, in one table, without reading YAML."""
