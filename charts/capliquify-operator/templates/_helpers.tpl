{{- define "capliquify.name" -}}capliquify-operator{{- end -}}
{{- define "capliquify.labels" -}}
app.kubernetes.io/name: {{ include "capliquify.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
