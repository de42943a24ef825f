{{- define "capliquify.name" -}}capliquify-operator{{- end -}}
{{/* Cluster-scoped objects (ClusterRole, its binding, the admission policy) are named after the
     release, so two releases (namespaced installs, say) never claim the same object. A release
     named capliquify-operator keeps the plain name, as manifests/ have it. */}}
{{- define "capliquify.clusterName" -}}
{{- if eq .Release.Name (include "capliquify.name" .) -}}
{{ .Release.Name }}
{{- else -}}
{{ printf "%s-%s" .Release.Name (include "capliquify.name" .) | trunc 63 | trimSuffix "-" }}
{{- end -}}
{{- end -}}
{{- define "capliquify.labels" -}}
app.kubernetes.io/name: {{ include "capliquify.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The operator's rules, one list for the ClusterRole and for each namespaced Role.
     Keep in step with manifests/base/rbac.yaml (a test compares them). */}}
{{- define "capliquify.rules" }}
  - apiGroups: [ops.capliquify.io]
    resources: [monitoredservices, scalingpolicies, alertpolicies]
    verbs: [list, watch]
  # A scale first confirms its ScalingPolicy still exists (a deletion a broken watch missed).
  - apiGroups: [ops.capliquify.io]
    resources: [scalingpolicies]
    verbs: [get]
  - apiGroups: [ops.capliquify.io]
    resources: [monitoredservices/status, scalingpolicies/status, alertpolicies/status]
    verbs: [patch]
  - apiGroups: [apps]
    resources: [deployments, statefulsets]
    verbs: [list, watch]
  # The rollout guard rolls back as `kubectl rollout undo` does (read the Deployment and its
  # ReplicaSets, patch the template); probe management server-side applies only container
  # probes (probes.manage).
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get]
  - apiGroups: [apps]
    resources: [deployments, statefulsets]
    verbs: [patch]
  - apiGroups: [apps]
    resources: [replicasets]
    verbs: [list]
  # Scaling acts only through the scale subresource.
  - apiGroups: [apps]
    resources: [deployments/scale, statefulsets/scale]
    verbs: [patch]
  # Read-only: an HPA on the same workload is a conflict, and the operator stands back.
  - apiGroups: [autoscaling]
    resources: [horizontalpodautoscalers]
    verbs: [list, watch]
  # The metrics API source (cpu/memory without Prometheus, as HPA reads them): each round lists
  # a namespace's running pods (readiness, requests) and their PodMetrics.
  - apiGroups: [""]
    resources: [pods]
    verbs: [list]
  - apiGroups: [metrics.k8s.io]
    resources: [pods]
    verbs: [list]
  - apiGroups: [""]
    resources: [events]
    verbs: [create]
  # Point reads of the Secrets that objects reference (no list, no watch).
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get]
  # Egress with --cluster-networks: a tenant's name of its own namespace is answered from its
  # Service and that Service's EndpointSlices (never DNS: an ExternalName or a hand-written
  # slice would lead to another namespace). Point reads and a list by the service-name label;
  # the endpoints about to be dialled are checked against `list pods` (above) by status.podIP.
  - apiGroups: [""]
    resources: [services]
    verbs: [get]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [list]
  {{- if .Values.hooks.enabled }}
  # Post-deploy hooks (spec.rollout.hooks): create a hook's Job under its fixed name and read it
  # back (no list, watch or delete: a finished Job goes by its TTL, all of them with their
  # MonitoredService). The admission policy admits hooks only from authors who may create Jobs.
  # The chart's hooks.enabled=false leaves this rule out.
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [create, get]
  {{- end }}
  {{- range .Values.scaleTargets }}
  # Opt-in (scaleTargets): a ScalingPolicy's spec.targetRef.scale on {{ .resource }}.{{ .apiGroup }}.
  - apiGroups: [{{ .apiGroup | quote }}]
    resources: [{{ printf "%s/scale" .resource | quote }}]
    verbs: [get, patch]
  {{- end }}
{{- end -}}
