{{/*
Names.
*/}}
{{- define "gatehouse.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "gatehouse.fullname" -}}
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

{{- define "gatehouse.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels. "gatehouse.selectorLabels" selects every Gatehouse pod of the release (server and
worker); add app.kubernetes.io/component to select one kind.
*/}}
{{- define "gatehouse.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gatehouse.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "gatehouse.labels" -}}
helm.sh/chart: {{ include "gatehouse.chart" . }}
{{ include "gatehouse.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gatehouse
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Storage mode: "true" when no external database is configured (embedded SQLite).
*/}}
{{- define "gatehouse.sqlite" -}}
{{- if and (not .Values.database.url) (not .Values.database.existingSecret) }}true{{ end }}
{{- end }}

{{/*
Effective server replicas: always 1 on SQLite.
*/}}
{{- define "gatehouse.serverReplicas" -}}
{{- if include "gatehouse.sqlite" . }}1{{ else }}{{ int .Values.server.replicas }}{{ end }}
{{- end }}

{{/*
Separate worker pods: only with an external database.
*/}}
{{- define "gatehouse.workerEnabled" -}}
{{- if and .Values.worker.enabled (not (include "gatehouse.sqlite" .)) }}true{{ end }}
{{- end }}

{{- define "gatehouse.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gatehouse.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "gatehouse.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The chart's own Secret and where each secret value comes from.
*/}}
{{- define "gatehouse.secretName" -}}
{{- include "gatehouse.fullname" . }}
{{- end }}

{{- define "gatehouse.secretKeySecretName" -}}
{{- default (include "gatehouse.secretName" .) .Values.existingSecret }}
{{- end }}

{{- define "gatehouse.secretKeySecretKey" -}}
{{- if .Values.existingSecret }}{{ .Values.existingSecretKey }}{{ else }}secret-key{{ end }}
{{- end }}

{{/*
Auth host: ingress.host, else the host of externalURL without a port.
*/}}
{{- define "gatehouse.host" -}}
{{- if .Values.ingress.host }}
{{- .Values.ingress.host }}
{{- else }}
{{- regexReplaceAll ":[0-9]+$" (urlParse .Values.externalURL).host "" }}
{{- end }}
{{- end }}

{{/*
Checks run once per render (included by the ConfigMap).
*/}}
{{- define "gatehouse.validate" -}}
{{- $url := required "externalURL is required: the public URL of the auth host, e.g. https://auth.homelab.local (it is the OIDC issuer)" .Values.externalURL }}
{{- if not (regexMatch "^https?://[^/?#]+(/[^?#]*)?$" $url) }}
{{- fail (printf "externalURL %q must be an absolute http(s) URL without query or fragment" $url) }}
{{- end }}
{{- with .Values.cookieDomain }}
{{- $domain := trimPrefix "." . }}
{{- $host := regexReplaceAll ":[0-9]+$" (urlParse $url).host "" }}
{{- if not (or (eq $host $domain) (hasSuffix (printf ".%s" $domain) $host)) }}
{{- fail (printf "cookieDomain %q must be the domain of externalURL's host %q or a parent of it, or the browser never sends the cookie back" $domain $host) }}
{{- end }}
{{- end }}
{{- if and .Values.secretKey (lt (len .Values.secretKey) 32) }}
{{- fail "secretKey must be at least 32 bytes (or leave it empty to have one generated and kept)" }}
{{- end }}
{{- if and .Values.secretKey .Values.existingSecret }}
{{- fail "set either secretKey or existingSecret, not both" }}
{{- end }}
{{- if and .Values.database.url .Values.database.existingSecret }}
{{- fail "set either database.url or database.existingSecret, not both" }}
{{- end }}
{{- if and .Values.redis.url .Values.redis.existingSecret }}
{{- fail "set either redis.url or redis.existingSecret, not both" }}
{{- end }}
{{- if and .Values.database.url (not (regexMatch "^postgres(ql)?://" .Values.database.url)) }}
{{- fail "database.url must be a postgres:// or postgresql:// URL (leave it empty for embedded SQLite)" }}
{{- end }}
{{- $grace := int .Values.server.terminationGracePeriodSeconds }}
{{- $need := add (int .Values.server.preStopSleepSeconds) (int (include "gatehouse.shutdownDelaySeconds" .)) 30 }}
{{- if lt $grace $need }}
{{- fail (printf "server.terminationGracePeriodSeconds (%d) must be at least %d: preStopSleepSeconds (%d) + the shutdown delay (%s s) + 30 s for in-flight requests, or the kubelet kills the server mid-request" $grace $need (int .Values.server.preStopSleepSeconds) (include "gatehouse.shutdownDelaySeconds" .)) }}
{{- end }}
{{- if .Values.backup.enabled }}
{{- $jobPods := ternary (int .Values.worker.replicas) (int (include "gatehouse.serverReplicas" .)) (eq (include "gatehouse.workerEnabled" .) "true") }}
{{- if and (gt $jobPods 1) (not .Values.backup.persistence.existingClaim) (not (has "ReadWriteMany" .Values.backup.persistence.accessModes)) }}
{{- fail (printf "backup: %d pods run the background jobs and any of them may take the backups, so backup.persistence.accessModes must include ReadWriteMany (or use one worker: worker.enabled=true, worker.replicas=1)" $jobPods) }}
{{- end }}
{{- if and (eq (int .Values.backup.keep) 0) (not .Values.backup.maxAge) }}
{{- fail "backup: set backup.keep or backup.maxAge, or backups pile up for ever" }}
{{- end }}
{{- end }}
{{- if and (include "gatehouse.workerEnabled" .) (lt (int .Values.worker.terminationGracePeriodSeconds) 30) }}
{{- fail (printf "worker.terminationGracePeriodSeconds (%d) must be at least 30: the worker gives in-flight requests up to 30 s, then stops its jobs" (int .Values.worker.terminationGracePeriodSeconds)) }}
{{- end }}
{{- end }}

{{/*
Drain delay of the server pods in seconds (GATEHOUSE_SHUTDOWN_DELAY): server.shutdownDelaySeconds
with an external database, 0 with SQLite (one pod, nothing to drain to; the binary's default for
role "all").
*/}}
{{- define "gatehouse.shutdownDelaySeconds" -}}
{{- if include "gatehouse.sqlite" . }}0{{ else }}{{ int .Values.server.shutdownDelaySeconds }}{{ end }}
{{- end }}

{{/*
Checksum of every input that reaches the pods through the chart's Secret. The generated
secret key is deliberately left out: it is random on a render without cluster access
(helm template, ArgoCD) and would otherwise roll the pods on every render.
*/}}
{{- define "gatehouse.secretChecksum" -}}
{{- $in := list .Values.secretKey .Values.existingSecret .Values.existingSecretKey .Values.bootstrapPassword .Values.database.url .Values.database.existingSecret .Values.database.existingSecretKey .Values.redis.url .Values.redis.existingSecret .Values.redis.existingSecretKey }}
{{- toJson $in | sha256sum }}
{{- end }}

{{/*
Pod template shared by the server and worker Deployments.
Parameters (dict): root (.), component ("server" | "worker"), args (list), spec (.Values.server |
.Values.worker).
*/}}
{{- define "gatehouse.podTemplate" -}}
{{- $root := .root }}
{{- $spec := .spec }}
{{- $sqlite := include "gatehouse.sqlite" $root -}}
{{- /* The pods that run the background jobs carry the scheduled-backup volume and settings. */ -}}
{{- $runsJobs := or (eq .component "worker") (not (include "gatehouse.workerEnabled" $root)) -}}
{{- $backup := and $root.Values.backup.enabled $runsJobs -}}
metadata:
  labels:
    {{- include "gatehouse.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with $spec.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    checksum/secret: {{ include "gatehouse.secretChecksum" $root }}
    {{- with $spec.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "gatehouse.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ int $spec.terminationGracePeriodSeconds }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- if $spec.affinity }}
  affinity:
    {{- toYaml $spec.affinity | nindent 4 }}
  {{- else if and (eq .component "server") (gt (int (include "gatehouse.serverReplicas" $root)) 1) }}
  affinity:
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 100
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchLabels:
                {{- include "gatehouse.selectorLabels" $root | nindent 16 }}
                app.kubernetes.io/component: {{ .component }}
  {{- end }}
  {{- with $spec.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $spec.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: gatehouse
      image: {{ include "gatehouse.image" $root | quote }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args:
        {{- range .args }}
        - {{ . | quote }}
        {{- end }}
        {{- range $spec.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: GATEHOUSE_CONFIG
          value: /etc/gatehouse/config/gatehouse.yaml
        - name: GATEHOUSE_LISTEN
          value: ":9000"
        - name: GATEHOUSE_METRICS_LISTEN
          value: {{ printf ":%d" (int $root.Values.metrics.port) | quote }}
        - name: GATEHOUSE_DATA_DIR
          value: /data
        - name: GATEHOUSE_EXTERNAL_URL
          value: {{ $root.Values.externalURL | quote }}
        {{- with $root.Values.cookieDomain }}
        - name: GATEHOUSE_COOKIE_DOMAIN
          value: {{ . | quote }}
        {{- end }}
        {{- with $root.Values.trustedProxies }}
        - name: GATEHOUSE_TRUSTED_PROXIES
          value: {{ join "," . | quote }}
        {{- end }}
        - name: GATEHOUSE_SECRET_KEY_FILE
          value: /etc/gatehouse/secret/secret-key
        {{- if and (eq .component "server") (not $sqlite) }}
        - name: GATEHOUSE_SHUTDOWN_DELAY
          value: {{ printf "%ss" (include "gatehouse.shutdownDelaySeconds" $root) | quote }}
        {{- end }}
        {{- if $backup }}
        - name: GATEHOUSE_WORKER_BACKUP_DIR
          value: /backups
        - name: GATEHOUSE_WORKER_BACKUP_INTERVAL
          value: {{ $root.Values.backup.interval | quote }}
        - name: GATEHOUSE_WORKER_BACKUP_KEEP
          value: {{ int $root.Values.backup.keep | quote }}
        {{- with $root.Values.backup.maxAge }}
        - name: GATEHOUSE_WORKER_BACKUP_MAX_AGE
          value: {{ . | quote }}
        {{- end }}
        {{- if $root.Values.backup.passphraseSecret.name }}
        - name: GATEHOUSE_WORKER_BACKUP_PASSPHRASE_FILE
          value: /etc/gatehouse/backup/passphrase
        {{- end }}
        {{- end }}
        {{- if $root.Values.database.existingSecret }}
        - name: GATEHOUSE_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.database.existingSecret }}
              key: {{ $root.Values.database.existingSecretKey }}
        {{- else if $root.Values.database.url }}
        - name: GATEHOUSE_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "gatehouse.secretName" $root }}
              key: database-url
        {{- end }}
        {{- if $root.Values.redis.existingSecret }}
        - name: GATEHOUSE_REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.redis.existingSecret }}
              key: {{ $root.Values.redis.existingSecretKey }}
        {{- else if $root.Values.redis.url }}
        - name: GATEHOUSE_REDIS_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "gatehouse.secretName" $root }}
              key: redis-url
        {{- end }}
        {{- if $root.Values.bootstrapPassword }}
        - name: GATEHOUSE_BOOTSTRAP_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "gatehouse.secretName" $root }}
              key: bootstrap-password
        {{- else if $root.Values.existingSecret }}
        - name: GATEHOUSE_BOOTSTRAP_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ $root.Values.existingSecret }}
              key: bootstrap-password
              optional: true
        {{- end }}
        {{- if $root.Values.goMemLimitFromResources }}
        - name: GOMEMLIMIT
          valueFrom:
            resourceFieldRef:
              containerName: gatehouse
              resource: limits.memory
        {{- end }}
        {{- with $root.Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: 9000
          protocol: TCP
        - name: metrics
          containerPort: {{ int $root.Values.metrics.port }}
          protocol: TCP
      startupProbe:
        httpGet:
          path: /healthz/live
          port: http
        periodSeconds: {{ int $root.Values.probes.startup.periodSeconds }}
        failureThreshold: {{ int $root.Values.probes.startup.failureThreshold }}
        timeoutSeconds: {{ int $root.Values.probes.startup.timeoutSeconds }}
      livenessProbe:
        httpGet:
          path: /healthz/live
          port: http
        periodSeconds: {{ int $root.Values.probes.liveness.periodSeconds }}
        failureThreshold: {{ int $root.Values.probes.liveness.failureThreshold }}
        timeoutSeconds: {{ int $root.Values.probes.liveness.timeoutSeconds }}
      readinessProbe:
        httpGet:
          path: /healthz/ready
          port: http
        periodSeconds: {{ int $root.Values.probes.readiness.periodSeconds }}
        failureThreshold: {{ int $root.Values.probes.readiness.failureThreshold }}
        timeoutSeconds: {{ int $root.Values.probes.readiness.timeoutSeconds }}
      {{- if and (eq .component "server") (gt (int $spec.preStopSleepSeconds) 0) }}
      lifecycle:
        preStop:
          sleep:
            seconds: {{ int $spec.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml $spec.resources | nindent 8 }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/gatehouse/config
          readOnly: true
        - name: secret-key
          mountPath: /etc/gatehouse/secret
          readOnly: true
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        {{- if $backup }}
        - name: backups
          mountPath: /backups
        {{- if $root.Values.backup.passphraseSecret.name }}
        - name: backup-passphrase
          mountPath: /etc/gatehouse/backup
          readOnly: true
        {{- end }}
        {{- end }}
        {{- with $root.Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "gatehouse.fullname" $root }}
    - name: secret-key
      secret:
        secretName: {{ include "gatehouse.secretKeySecretName" $root }}
        defaultMode: 0440
        items:
          - key: {{ include "gatehouse.secretKeySecretKey" $root }}
            path: secret-key
    - name: data
      {{- if and $sqlite $root.Values.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-data" (include "gatehouse.fullname" $root)) $root.Values.persistence.existingClaim }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $backup }}
    - name: backups
      persistentVolumeClaim:
        claimName: {{ default (printf "%s-backups" (include "gatehouse.fullname" $root)) $root.Values.backup.persistence.existingClaim }}
    {{- with $root.Values.backup.passphraseSecret }}
    {{- if .name }}
    - name: backup-passphrase
      secret:
        secretName: {{ .name }}
        defaultMode: 0440
        items:
          - key: {{ .key }}
            path: passphrase
    {{- end }}
    {{- end }}
    {{- end }}
    {{- with $root.Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
