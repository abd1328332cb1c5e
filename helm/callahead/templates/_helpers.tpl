{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "callahead.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, plus the chart name unless it contains it. */}}
{{- define "callahead.fullname" -}}
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

{{- define "callahead.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "callahead.selectorLabels" -}}
app.kubernetes.io/name: {{ include "callahead.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "callahead.labels" -}}
helm.sh/chart: {{ include "callahead.chart" . }}
{{ include "callahead.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: serve
app.kubernetes.io/part-of: callahead
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "callahead.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "callahead.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "callahead.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the pod finds its files. */}}
{{- define "callahead.configDir" -}}/etc/callahead/config{{- end }}
{{- define "callahead.configPath" -}}{{ include "callahead.configDir" . }}/callahead.toml{{- end }}
{{- define "callahead.rulesDir" -}}/etc/callahead/rules{{- end }}
{{- define "callahead.dkimDir" -}}/etc/callahead/dkim{{- end }}

{{- define "callahead.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "callahead.fullname" .)) .Values.rules.existingConfigMap }}
{{- end }}

{{/*
The rules ConfigMap's keys and texts, as YAML (key -> text): the default pack (files/rules/*.toml
and the e-mail templates files/rules/outreach/*, keyed `outreach.<file>`), then rules.files.
A ConfigMap key cannot hold a "/": the service reads a template from outreach/<file> or, as
here, from outreach.<file> in the rules directory itself.
*/}}
{{- define "callahead.ruleFiles" -}}
{{- $files := dict }}
{{- if .Values.rules.includeDefaults }}
{{- range $path, $_ := .Files.Glob "files/rules/*.toml" }}
{{- $_ := set $files (base $path) ($.Files.Get $path) }}
{{- end }}
{{- range $path, $_ := .Files.Glob "files/rules/outreach/*" }}
{{- $_ := set $files (printf "outreach.%s" (base $path)) ($.Files.Get $path) }}
{{- end }}
{{- end }}
{{- range $name, $text := .Values.rules.files }}
{{- if not (or (hasSuffix ".toml" $name) (regexMatch "^outreach\\.[a-z0-9_]+\\.[a-z]{2}\\.(txt|html)$" $name)) }}
{{- fail (printf "rules.files: %q must be a rule file ending in .toml or an e-mail template named outreach.<template>.<language>.txt or .html" $name) }}
{{- end }}
{{- $_ := set $files $name $text }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/*
Checks the values; fails the render with a readable message on a combination that cannot work.
*/}}
{{- define "callahead.validate" -}}
{{- $store := .Values.store.type }}
{{- if not (has $store (list "sqlite" "postgres")) }}
{{- fail (printf "store.type must be \"sqlite\" or \"postgres\", not %q" $store) }}
{{- end }}
{{- if and (eq $store "sqlite") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "store.type=sqlite with replicaCount=%d: every pod would keep its own database in its own emptyDir, so tasks and state checkpoints would be split and lost on rescheduling. Use store.type=postgres (the URL from secrets.existingSecret) or replicaCount=1." (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq $store "postgres") (not (and .Values.secrets.existingSecret .Values.secrets.storeUrlKey)) }}
{{- fail "store.type=postgres needs secrets.existingSecret and secrets.storeUrlKey: the PostgreSQL URL (with its password) comes from that Secret as CALLAHEAD_STORE_URL." }}
{{- end }}
{{- if and .Values.secrets.apiTokensKey (not .Values.secrets.existingSecret) }}
{{- fail "secrets.apiTokensKey is set but secrets.existingSecret is empty." }}
{{- end }}
{{- if and .Values.secrets.saslPasswordKey (not .Values.secrets.existingSecret) }}
{{- fail "secrets.saslPasswordKey is set but secrets.existingSecret is empty." }}
{{- end }}
{{- if hasKey (.Values.config.kafka | default dict) "command_keys" }}
{{- fail "config.kafka.command_keys must not be set here (it would land in a ConfigMap): put the keys in a Secret and set secrets.commandKeysKey." }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.secrets.commandKeysKey) }}
{{- fail (printf "replicaCount=%v needs secrets.commandKeysKey: every pod must sign and verify commands with the same keys (KEYID:BASE64, from the Secret as CALLAHEAD_KAFKA_COMMAND_KEYS)." .Values.replicaCount) }}
{{- end }}
{{- range $key := list "smtpPasswordKey" "linkKeysKey" "dkimKeyKey" "commandKeysKey" }}
{{- if and (get $.Values.secrets $key) (not $.Values.secrets.existingSecret) }}
{{- fail (printf "secrets.%s is set but secrets.existingSecret is empty." $key) }}
{{- end }}
{{- end }}
{{- $outreach := get .Values.config "outreach" | default dict }}
{{- range $key := list "smtp_password" "link_keys" "dkim_key_file" }}
{{- if hasKey $outreach $key }}
{{- fail (printf "config.outreach.%s must not be set here (it would land in a ConfigMap): use secrets.smtpPasswordKey, secrets.linkKeysKey or secrets.dkimKeyKey." $key) }}
{{- end }}
{{- end }}
{{- if and (get $outreach "enabled") (not .Values.secrets.linkKeysKey) }}
{{- fail "config.outreach.enabled needs secrets.linkKeysKey: the keys that sign customers' answer links come from the Secret as CALLAHEAD_OUTREACH_LINK_KEYS." }}
{{- end }}
{{- $client := .Values.config.kafka.client | default dict }}
{{- if hasKey $client "sasl.password" }}
{{- fail "config.kafka.client must not hold \"sasl.password\" (it would land in a ConfigMap): put it in a Secret and set secrets.existingSecret and secrets.saslPasswordKey." }}
{{- end }}
{{- range $key, $_ := $client }}
{{- if regexMatch "(password|secret|\\.key\\.pem)$" $key }}
{{- fail (printf "config.kafka.client must not hold %q (a secret would land in a ConfigMap): pass it from a Secret in extraEnv as CALLAHEAD_KAFKA_CLIENT_%s." $key (upper (replace "." "_" $key))) }}
{{- end }}
{{- end }}
{{- if hasKey .Values.config "http" }}
{{- fail "config.http is set by the chart (metrics.host, metrics.port): remove it from config." }}
{{- end }}
{{- if hasKey .Values.config "store" }}
{{- fail "config.store is set by the chart: use store.type (and, for PostgreSQL, the Secret) instead." }}
{{- end }}
{{- if and (hasKey .Values.config "rules") (hasKey .Values.config.rules "dir") }}
{{- fail "config.rules.dir is set by the chart (the rules ConfigMap's mount point): use rules.files or rules.existingConfigMap." }}
{{- end }}
{{- if .Values.autoscaling.enabled }}
{{- if ne $store "postgres" }}
{{- fail "autoscaling.enabled needs store.type=postgres: the pods of one consumer group must share the task store." }}
{{- end }}
{{- if or (lt (int .Values.autoscaling.minReplicas) 1) (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail (printf "autoscaling: need 1 <= minReplicas (%d) <= maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and (not .Values.rules.existingConfigMap) (not .Values.rules.includeDefaults) (not .Values.rules.files) }}
{{- fail "no rules: set rules.includeDefaults, rules.files or rules.existingConfigMap (the service refuses to start without a rule file)." }}
{{- end }}
{{- end }}

{{/*
callahead.toml: .Values.config with the keys the chart owns set (see values.yaml).
*/}}
{{- define "callahead.configToml" -}}
{{- $config := deepCopy .Values.config }}
{{- $rules := get $config "rules" | default dict }}
{{- $_ := set $rules "dir" (include "callahead.rulesDir" .) }}
{{- $_ := set $config "rules" $rules }}
{{- /* librdkafka settings are strings: 30000 becomes "30000", true "true". */}}
{{- $kafka := get $config "kafka" | default dict }}
{{- $client := dict }}
{{- range $k, $v := (get $kafka "client" | default dict) }}
{{- if not (kindIs "invalid" $v) }}
{{- $_ := set $client $k (ternary $v (include "callahead.tomlValue" $v) (and (kindIs "string" $v) (not (typeIs "json.Number" $v)))) }}
{{- end }}
{{- end }}
{{- $_ := set $kafka "client" $client }}
{{- $_ := set $config "kafka" $kafka }}
{{- $http := dict "listen" (printf "%s:%d" .Values.metrics.host (int .Values.metrics.port)) }}
{{- if .Values.publicPages.enabled }}
{{- $_ := set $http "public_listen" (printf "%s:%d" .Values.metrics.host (int .Values.publicPages.port)) }}
{{- end }}
{{- if .Values.publicPages.hsts }}
{{- $_ := set $http "hsts" true }}
{{- end }}
{{- $_ := set $config "http" $http }}
{{- if .Values.secrets.dkimKeyKey }}
{{- $outreach := get $config "outreach" | default dict }}
{{- $_ := set $outreach "dkim_key_file" (printf "%s/dkim.pem" (include "callahead.dkimDir" .)) }}
{{- $_ := set $config "outreach" $outreach }}
{{- end }}
{{- if eq .Values.store.type "sqlite" }}
{{- $_ := set $config "store" (dict "url" (printf "sqlite://%s/callahead.db" (trimSuffix "/" .Values.store.sqlite.mountPath))) }}
{{- end -}}
# callahead.toml rendered by the {{ include "callahead.chart" . }} chart for release {{ .Release.Name }}.
# Edit the release's values (config:), not this file.
{{- if eq .Values.store.type "postgres" }}
# store.url: from Secret {{ .Values.secrets.existingSecret }}, key {{ .Values.secrets.storeUrlKey }} (CALLAHEAD_STORE_URL).
{{- end }}

{{ include "callahead.tomlTable" (dict "path" "" "table" $config) | trim }}
{{- end }}

{{/*
A TOML renderer for values (Helm's toToml writes a whole number from a -f values file as 5000.0,
which an integer setting refuses). Takes (dict "path" "a.b" "table" MAP): scalar keys first,
then each nested map as a [path.key] table. Null values are left out.
*/}}
{{- define "callahead.tomlTable" -}}
{{- $path := .path }}
{{- $table := .table }}
{{- range $k, $v := $table }}
{{- if and (not (kindIs "map" $v)) (not (kindIs "invalid" $v)) }}
{{ include "callahead.tomlKey" $k }} = {{ include "callahead.tomlValue" $v }}
{{- end }}
{{- end }}
{{- range $k, $v := $table }}
{{- if kindIs "map" $v }}
{{- $sub := ternary (include "callahead.tomlKey" $k) (printf "%s.%s" $path (include "callahead.tomlKey" $k)) (eq $path "") }}

[{{ $sub }}]
{{- include "callahead.tomlTable" (dict "path" $sub "table" $v) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "callahead.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end }}
{{- end }}

{{- define "callahead.tomlValue" -}}
{{- $v := . }}
{{- if typeIs "json.Number" $v }}{{ toString $v }}
{{- else if kindIs "string" $v }}{{ toJson $v }}
{{- else if kindIs "bool" $v }}{{ ternary "true" "false" $v }}
{{- else if kindIs "float64" $v }}
{{- if eq $v (float64 (int64 $v)) }}{{ int64 $v }}{{ else }}{{ toString $v }}{{ end }}
{{- else if or (kindIs "int" $v) (kindIs "int64" $v) (kindIs "uint64" $v) }}{{ toString $v }}
{{- else if kindIs "slice" $v }}
{{- $items := list }}
{{- range $v }}{{ $items = append $items (include "callahead.tomlValue" .) }}{{ end }}
{{- printf "[%s]" (join ", " $items) }}
{{- else if kindIs "map" $v }}
{{- $items := list }}
{{- range $k, $x := $v }}{{ $items = append $items (printf "%s = %s" (include "callahead.tomlKey" $k) (include "callahead.tomlValue" $x)) }}{{ end }}
{{- printf "{ %s }" (join ", " $items) }}
{{- else }}
{{- fail (printf "config: cannot write %v (%s) as TOML" $v (kindOf $v)) }}
{{- end }}
{{- end }}
