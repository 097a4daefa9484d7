{{/*
Helpers of the PrometheusRule (prometheusrule.yaml) and the dashboard ConfigMap
(dashboard-configmap.yaml). docs/operations.md explains every alert.
*/}}

{{/* The job label of one service's series: the Service's name, as the ServiceMonitor sets it.
Usage: include "guestloop.monitoring.job" (dict "root" $ "name" "notification") */}}
{{- define "guestloop.monitoring.job" -}}
{{- include "guestloop.component" . -}}
{{- end -}}

{{/* Label matchers of one service's series. */}}
{{- define "guestloop.monitoring.selector" -}}
{{- printf "namespace=%q,job=%q" .root.Release.Namespace (include "guestloop.monitoring.job" .) -}}
{{- end -}}

{{/* Label matchers of every enabled service's series in this release. */}}
{{- define "guestloop.monitoring.releaseSelector" -}}
{{- $jobs := list -}}
{{- range $name, $svc := .Values.services -}}
{{- if $svc.enabled -}}
{{- $jobs = append $jobs (include "guestloop.monitoring.job" (dict "root" $ "name" $name)) -}}
{{- end -}}
{{- end -}}
{{- printf "namespace=%q,job=~%q" .Release.Namespace (join "|" $jobs) -}}
{{- end -}}

{{/* One service's objectives: monitoring.slo with monitoring.slo.services.<name> over it, as
YAML. Usage: $slo := include "guestloop.monitoring.slo" (dict "root" $ "name" $name) | fromYaml */}}
{{- define "guestloop.monitoring.slo" -}}
{{- $slo := .root.Values.monitoring.slo -}}
{{- $own := index ($slo.services | default dict) .name | default dict -}}
{{- toYaml (mergeOverwrite (deepCopy (omit $slo "services")) (deepCopy $own)) -}}
{{- end -}}

{{/* An alert's runbook_url: the base URL and the alert's section in docs/operations.md.
Usage: include "guestloop.monitoring.runbook" (list $ "GuestloopOutboxLag") */}}
{{- define "guestloop.monitoring.runbook" -}}
{{- printf "%s#%s" (index . 0).Values.monitoring.runbookBaseUrl (index . 1 | lower) -}}
{{- end -}}

{{/* The labels of an alert: its severity and monitoring.prometheusRule.alertLabels.
Usage: include "guestloop.monitoring.alertLabels" (list $ "critical") | nindent 10 */}}
{{- define "guestloop.monitoring.alertLabels" -}}
{{- $labels := merge (dict "severity" (index . 1)) (deepCopy ((index . 0).Values.monitoring.prometheusRule.alertLabels | default dict)) -}}
{{- toYaml $labels -}}
{{- end -}}

{{/* A multi-window burn-rate condition: for each pair, the SLI's error ratio over the long
and the short window both above factor x budget; pairs joined by `or`.
Usage: include "guestloop.monitoring.burn" (list "guestloop:rpc_errors:ratio_rate" $sel $budget $pairs)
with $pairs a list of dicts {long, short, factor}. */}}
{{- define "guestloop.monitoring.burn" -}}
{{- $record := index . 0 -}}
{{- $sel := index . 1 -}}
{{- $budget := index . 2 -}}
{{- range $i, $p := index . 3 -}}
{{- if $i }}
or
{{ end -}}
(
  {{ $record }}{{ $p.long }}{ {{- $sel -}} } > ({{ $p.factor }} * {{ $budget }})
  and
  {{ $record }}{{ $p.short }}{ {{- $sel -}} } > ({{ $p.factor }} * {{ $budget }})
)
{{- end -}}
{{- end -}}
