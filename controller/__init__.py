"""CapLiquify Operator: keeps production services healthy and right-sized."""

API_GROUP = "ops.capliquify.io"
API_VERSION = "v1alpha1"
