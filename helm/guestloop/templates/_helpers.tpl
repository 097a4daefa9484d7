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

{{- /* Key names, inside the JWT Secret, of the previous public keys (see values jwt). */ -}}
{{- define "guestloop.jwtPreviousKeys" -}}
{{- $j := .Values.jwt -}}
{{- if $j.existingSecret -}}
{{- if $j.previousPublicKeys }}{{ fail "jwt.previousPublicKeys: with jwt.existingSecret, put the keys in that Secret and name them in jwt.previousPublicKeyKeys" }}{{ end -}}
{{- toJson $j.previousPublicKeyKeys -}}
{{- else -}}
{{- if $j.previousPublicKeyKeys }}{{ fail "jwt.previousPublicKeyKeys: only with jwt.existingSecret; give the PEMs in jwt.previousPublicKeys" }}{{ end -}}
{{- $keys := list -}}
{{- range $i, $_ := $j.previousPublicKeys }}{{ $keys = append $keys (printf "jwt-previous-%d.pem" $i) }}{{ end -}}
{{- toJson $keys -}}
{{- end -}}
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
{{- $previous := list -}}
{{- range $i, $_ := include "guestloop.jwtPreviousKeys" $root | fromJsonArray }}
{{- $previous = append $previous (printf "/etc/guestloop/keys/jwt-previous-%d.pem" $i) }}
{{- end }}
{{- with $previous }}
{{- $_ := set $env "GUESTLOOP__AUTH__PREVIOUS_PUBLIC_KEY_PATHS" (join "," .) }}
{{- end }}
{{- with $root.Values.otel.endpoint }}
{{- $_ := set $env "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- with .cfg.database.schema }}
{{- $_ := set $env "GUESTLOOP__DATABASE__SCHEMA" . }}
{{- end }}
{{- /* Peers and subscribers come from `calls` alone, so the NetworkPolicies match them. */ -}}
{{- range $k, $_ := merge (deepCopy $root.Values.env) (deepCopy .cfg.env) }}
{{- if or (hasPrefix "GUESTLOOP__PEERS__" $k) (eq $k "GUESTLOOP__OUTBOX__SUBSCRIBERS") }}
{{- fail (printf "env %s: set peers in `calls` (and URL overrides in `peers`), not in env" $k) }}
{{- end }}
{{- end }}
{{- $peers := include "guestloop.peers" . | fromJson }}
{{- range $peer, $url := $peers.urls }}
{{- $_ := set $env (printf "GUESTLOOP__PEERS__%s" ($peer | upper | replace "-" "_")) $url }}
{{- end }}
{{- with $peers.subscribers }}
{{- $_ := set $env "GUESTLOOP__OUTBOX__SUBSCRIBERS" (join "," .) }}
{{- end }}
{{- toYaml (mergeOverwrite $env (deepCopy $root.Values.env) (deepCopy .cfg.env)) }}
{{- end -}}

{{/*
Whom one service talks to, from `calls` (its rpc and events lists), as JSON:
  urls:        peer -> URL, for GUESTLOOP__PEERS__<PEER> (a `peers` override wins; a disabled
               peer without an override gets none)
  internal:    the peers reached at this release's own pods (for the NetworkPolicies)
  subscribers: the events peers that have a URL, as config names (follow_up_scheduler)
Usage: $p := include "guestloop.peers" (dict "root" $ "name" $name) | fromJson
*/}}
{{- define "guestloop.peers" -}}
{{- $root := .root -}}
{{- $calls := index $root.Values.calls .name | default dict -}}
{{- $urls := dict -}}
{{- $internal := list -}}
{{- $subscribers := list -}}
{{- range $peer := concat ($calls.rpc | default list) ($calls.events | default list) | uniq -}}
{{- $svc := index $root.Values.services $peer | default dict -}}
{{- with index $root.Values.peers $peer -}}
{{- $_ := set $urls $peer . -}}
{{- else -}}
{{- if $svc.enabled -}}
{{- $_ := set $urls $peer (printf "http://%s:50051" (include "guestloop.component" (dict "root" $root "name" $peer))) -}}
{{- $internal = append $internal $peer -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $peer := $calls.events | default list -}}
{{- if hasKey $urls $peer -}}
{{- $subscribers = append $subscribers ($peer | replace "-" "_") -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "urls" $urls "internal" $internal "subscribers" $subscribers) -}}
{{- end -}}

{{/* The gRPC services (the .proto files under proto/guestloop) each chart service serves to clients; the
EventIngestService every service also serves is for peers only and never exposed. */}}
{{- define "guestloop.grpcApis" -}}
guest-profile: guestloop.guestprofile.v1.GuestProfileService
feedback-intake: guestloop.feedback.v1.FeedbackIntakeService
follow-up-scheduler: guestloop.followup.v1.FollowUpSchedulerService
notification: guestloop.notification.v1.NotificationService
metrics: guestloop.metrics.v1.MetricsService
{{- end -}}

{{/* The exposed services that are enabled, as a JSON list. */}}
{{- define "guestloop.exposed" -}}
{{- $out := list -}}
{{- range $name := .Values.expose.services -}}
{{- if (index $.Values.services $name | default dict).enabled -}}
{{- $out = append $out $name -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Volumes and mounts for the database CA, when database.caSecret names one. */}}
{{- define "guestloop.dbCaVolume" -}}
{{- with .cfg.database.caSecret.name }}
- name: db-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - {key: {{ $.cfg.database.caSecret.key }}, path: ca.crt}
{{- end }}
{{- end -}}

{{- define "guestloop.dbCaMount" -}}
{{- if .cfg.database.caSecret.name }}
- {name: db-ca, mountPath: /etc/guestloop/db-ca, readOnly: true}
{{- end }}
{{- end -}}
