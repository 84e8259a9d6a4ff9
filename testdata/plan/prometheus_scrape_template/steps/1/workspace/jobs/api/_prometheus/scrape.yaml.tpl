# Rendered when the catalog is built: the job's vars, its version, the job's first worker and its port.
- job_name: {{ .Job }}-{{ lower "HTTP" }}
  metrics_path: {{ get "vars/job/api" "metrics_path" }}
  static_configs:
    - targets: ["maand:port/api_metrics"]
      labels:
        version: "{{ .NewVersion }}"
        # maand's build syncs job_name = the job's name before the catalog replaces it
        seen_job_name: {{ get "maand/job/api" "job_name" }}
{{- range $i, $k := keys "vars/job/api" }}
        var_{{ $i }}: {{ $k }}
{{- end }}
- job_name: api-first
  static_configs:
    - targets: ["{{ get "maand/job/api" "worker_0" }}:{{ get "maand/bucket" "api_metrics" }}"]
