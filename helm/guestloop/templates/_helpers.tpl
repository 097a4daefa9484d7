{{/* The release name, not release-chart: peers are http://<release>-<service>:50051. */}}
{{- define "guestloop.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 35 | trimSuffix "-" -}}
{{- end -}}

{{- define "guestloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <fullname>-<service>; fullname is cut to 35 so "-follow-up-scheduler-migrate" fits 63. */}}
{{- define "guestloop.component" -}}
{{- printf "%s-%s" (include "guestloop.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guestloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guestloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "guestloop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "guestloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: guestloop
{{- end -}}

{{- define "guestloop.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ default .Chart.AppVersion $img.tag }}
{{- end -}}
{{- end -}}

{{- define "guestloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "guestloop.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{- define "guestloop.configMapName" -}}
{{ default (printf "%s-config" (include "guestloop.fullname" .)) .Values.config.existingConfigMap }}
{{- end -}}

{{- define "guestloop.jwtSecretName" -}}
{{ default (printf "%s-jwt" (include "guestloop.fullname" .)) .Values.jwt.existingSecret }}
{{- end -}}

{{/*
One service's settings: serviceDefaults with the service's entry merged over it, as YAML.
Usage: $cfg := include "guestloop.serviceConfig" (dict "root" $ "name" $name) | fromYaml
*/}}
{{- define "guestloop.serviceConfig" -}}
{{- $svc := index .root.Values.services .name | default dict -}}
{{- $cfg := mergeOverwrite (deepCopy .root.Values.serviceDefaults) (deepCopy $svc) -}}
{{- /* mergeOverwrite cannot turn a true default off: take the service's own value. */ -}}
{{- if and (hasKey $svc "autoscaling") (hasKey $svc.autoscaling "enabled") -}}
{{- $_ := set $cfg.autoscaling "enabled" $svc.autoscaling.enabled -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "guestloop.dbSecretName" -}}
{{- default (printf "%s-db" (include "guestloop.component" .)) .cfg.database.secretName -}}
{{- end -}}

{{/* Pod-level settings shared by Deployments and migration Jobs. */}}
{{- define "guestloop.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The plain env of one service as a map, so overrides replace keys instead of adding
duplicate entries: chart defaults < .Values.env < the service's env.
*/}}
{{- define "guestloop.envMap" -}}
{{- $root := .root -}}
{{- $env := dict
  "GUESTLOOP_CONFIG" "/etc/guestloop/guestloop.toml"
  "GUESTLOOP__GRPC__LISTEN_ADDR" "0.0.0.0:50051"
  "GUESTLOOP__GRPC__SHUTDOWN_GRACE" (printf "%sms" (toString $root.Values.shutdownGraceMs))
  "GUESTLOOP__GRPC__DRAIN_DELAY" (printf "%ss" (toString $root.Values.drainDelaySeconds))
  "GUESTLOOP__ADMIN__LISTEN_ADDR" "0.0.0.0:9090"
  "GUESTLOOP__DATABASE__MIGRATE_ON_START" "false"
  "GUESTLOOP__AUTH__PUBLIC_KEY_PATH" "/etc/guestloop/keys/jwt-public.pem"
  "GUESTLOOP__AUTH__SIGNING_KEY_PATH" "/etc/guestloop/keys/jwt-signing.pem"
  "OTEL_SERVICE_NAME" .name
  "OTEL_RESOURCE_ATTRIBUTES" (printf "service.namespace=guestloop,service.version=%s,k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME)" (default $root.Chart.AppVersion $root.Values.image.tag))
  "RUST_LOG" $root.Values.logLevel
-}}
{{- with $root.Values.otel.endpoint }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- range $peer, $_ := $root.Values.services }}
{{- $url := printf "http://%s:50051" (include "guestloop.component" (dict "root" $root "name" $peer)) }}
{{- $_ := set $env (printf "GUESTLOOP__PEERS__%s" ($peer | upper | replace "-" "_")) (default $url (index $root.Values.peers $peer)) }}
{{- end }}
{{- toYaml (mergeOverwrite $env (deepCopy $root.Values.env) (deepCopy .cfg.env)) }}
{{- end -}}
