{{- define "bucket-iam.labels" -}}
app.kubernetes.io/name: bucket-iam
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
