{{/*
Names, labels, the merged warden.yaml, and the Warden container and volumes, shared by
the gateway workload and the `warden.sidecar` template app charts include.
*/}}

{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "warden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "warden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: {{ .Values.mode }}
{{- end }}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "warden.policiesConfigMap" -}}
{{- default (printf "%s-policies" (include "warden.fullname" .)) .Values.policies.existingConfigMap }}
{{- end }}

{{/* Where the audit signing key Secret is mounted. */}}
{{- define "warden.auditKeyDir" -}}/etc/warden/secrets/audit{{- end }}

{{/*
warden.yaml: the shipped file (files/warden.yaml) with .Values.config merged over it, and
what the chart itself decides: the admin token and audit signing key from Secrets, a
chain per pod, closed at shutdown unless the spool is persistent.
*/}}
{{- define "warden.config" -}}
{{- $cfg := dict }}
{{- if .Values.baseConfig }}
{{- $cfg = .Files.Get "files/warden.yaml" | fromYaml }}
{{- end }}
{{- $cfg = mergeOverwrite $cfg (deepCopy .Values.config) }}
{{- $_ := set $cfg "listen" (printf "%s:%v" (ternary "0.0.0.0" "127.0.0.1" (eq .Values.mode "gateway")) .Values.ports.http) }}
{{- $_ := set $cfg "admin_listen" (printf "0.0.0.0:%v" .Values.ports.admin) }}
{{- if .Values.secrets.adminToken.name }}
{{- $_ := set $cfg "admin_token" "${WARDEN_ADMIN_TOKEN}" }}
{{- end }}
{{- if or .Values.tls.secretName .Values.h2c }}
{{- $server := get $cfg "server" | default dict }}
{{- if .Values.tls.secretName }}
{{- $tls := dict "cert_file" "/etc/warden/tls/tls.crt" "key_file" "/etc/warden/tls/tls.key" }}
{{- if ne .Values.tls.clientAuth "none" }}
{{- $_ := set $tls "client_ca_file" "/etc/warden/tls/ca.crt" }}
{{- $_ := set $tls "client_auth" .Values.tls.clientAuth }}
{{- end }}
{{- $_ := set $server "tls" $tls }}
{{- end }}
{{- if .Values.h2c }}
{{- $_ := set $server "h2c" true }}
{{- end }}
{{- $_ := set $cfg "server" $server }}
{{- end }}
{{- if hasKey $cfg "audit" }}
{{- $audit := get $cfg "audit" }}
{{- if not (hasKey $audit "chain_id") }}
{{- $_ := set $audit "chain_id" "${POD_NAME}" }}
{{- end }}
{{- if not (hasKey $audit "close_on_shutdown") }}
{{- $_ := set $audit "close_on_shutdown" (not (include "warden.persistent" . )) }}
{{- end }}
{{- if .Values.secrets.auditSigningKey.name }}
{{- $_ := set $audit "signing_key_file" (printf "%s/%s" (include "warden.auditKeyDir" .) .Values.secrets.auditSigningKey.key) }}
{{- end }}
{{- if and (eq (toString ($audit.sink).kind) "s3") (not $audit.signing_key_file) }}
{{- fail "an s3 audit sink signs its digests with a key kept apart from the spool: set secrets.auditSigningKey (a Secret made with `warden audit keygen`)" }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* "true" when pods keep their spool on a volume of their own (a StatefulSet). */}}
{{- define "warden.persistent" -}}
{{- if and (eq .Values.mode "gateway") .Values.audit.persistence.enabled }}true{{ end }}
{{- end }}

{{- define "warden.graceSeconds" -}}
{{- $cfg := include "warden.config" . | fromYaml }}
{{- $grace := 30 }}
{{- with $cfg.server }}{{ if hasKey . "shutdown_grace_seconds" }}{{ $grace = .shutdown_grace_seconds }}{{ end }}{{ end }}
{{- add (int .Values.shutdown.preStopSeconds) (int $grace) (int .Values.shutdown.auditFlushSeconds) }}
{{- end }}

{{- define "warden.checksumAnnotations" -}}
checksum/warden-config: {{ include "warden.config" . | sha256sum }}
{{- end }}

{{- define "warden.secretEnv" -}}
{{- $named := list (list "WARDEN_ADMIN_TOKEN" .Values.secrets.adminToken) (list "WARDEN_STATE_KEY" .Values.secrets.stateKey) (list "WARDEN_PII_HASH_KEY" .Values.secrets.piiHashKey) (list "WARDEN_AUDIT_SUBJECT_KEY" .Values.secrets.auditSubjectKey) }}
{{- range $named }}
{{- $ref := index . 1 }}
{{- if $ref.name }}
- name: {{ index . 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- range .Values.secrets.env }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}

{{/*
The Warden container. Its listeners are in warden.yaml: the proxy on every address for a
gateway and on 127.0.0.1 for a sidecar; the admin listener on every address, for the
kubelet's probes and Prometheus.
*/}}
{{- define "warden.container" -}}
name: warden
image: "{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: [serve, --config, /etc/warden/warden.yaml]
ports:
  - name: http
    containerPort: {{ .Values.ports.http }}
    protocol: TCP
  - name: admin
    containerPort: {{ .Values.ports.admin }}
    protocol: TCP
env:
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
{{- with include "warden.secretEnv" . | trim }}
{{- . | nindent 2 }}
{{- end }}
{{- with .Values.env }}
{{- toYaml . | nindent 2 }}
{{- end }}
volumeMounts:
  - name: warden-config
    mountPath: /etc/warden/warden.yaml
    subPath: warden.yaml
    readOnly: true
  - name: warden-policies
    mountPath: /etc/warden/policies
    readOnly: true
  - name: warden-var
    mountPath: /etc/warden/var
  - name: warden-tmp
    mountPath: /tmp
{{- if .Values.secrets.auditSigningKey.name }}
  - name: warden-audit-key
    mountPath: {{ include "warden.auditKeyDir" . }}
    readOnly: true
{{- end }}
{{- if .Values.tls.secretName }}
  - name: warden-tls
    mountPath: /etc/warden/tls
    readOnly: true
{{- end }}
startupProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.shutdown.preStopSeconds }}
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- with .Values.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The pod's volumes for the container above. The spool (warden-var) is an emptyDir unless
the workload is a StatefulSet, whose volumeClaimTemplates provide it.
*/}}
{{- define "warden.volumes" -}}
- name: warden-config
  configMap:
    name: {{ include "warden.fullname" . }}-config
- name: warden-policies
  configMap:
    name: {{ include "warden.policiesConfigMap" . }}
{{- if not (include "warden.persistent" .) }}
- name: warden-var
  emptyDir:
    sizeLimit: {{ .Values.audit.emptyDirSizeLimit }}
{{- end }}
- name: warden-tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- with .Values.tls.secretName }}
- name: warden-tls
  secret:
    secretName: {{ . }}
    defaultMode: 0400
{{- end }}
{{- with .Values.secrets.auditSigningKey }}
{{- if .name }}
- name: warden-audit-key
  secret:
    secretName: {{ .name }}
    defaultMode: 0400
    items:
      - key: {{ .key }}
        path: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
For app charts that depend on this one with `mode: sidecar` (charts/examples/):
  initContainers: (or containers: with sidecar.native false)
    {{- include "warden.sidecar" .Subcharts.warden | nindent 4 }}
  volumes:
    {{- include "warden.sidecar.volumes" .Subcharts.warden | nindent 4 }}
and in the pod template's annotations, `warden.sidecar.annotations` (rolls the pods when
warden.yaml changes). The app reaches Warden at `warden.sidecar.baseURL`.
*/}}
{{- define "warden.sidecar" -}}
- {{ include "warden.container" . | nindent 2 | trim }}
{{- if .Values.sidecar.native }}
  restartPolicy: Always
{{- end }}
{{- end }}

{{- define "warden.sidecar.volumes" -}}
{{- include "warden.volumes" . }}
{{- end }}

{{- define "warden.sidecar.annotations" -}}
{{- include "warden.checksumAnnotations" . }}
{{- end }}

{{- define "warden.sidecar.baseURL" -}}
http://127.0.0.1:{{ .Values.ports.http }}/v1
{{- end }}
