{{- define "orders-app.labels" -}}
app.kubernetes.io/name: orders-app
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
