"""A real local Kubernetes control plane for tests and the demo.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built from
pinned upstream Go modules by `hack/controlplane/build.sh` and started here on
loopback with locally generated certificates and RBAC on.
"""
