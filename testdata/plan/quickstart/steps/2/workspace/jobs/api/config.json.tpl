{
  "listen": "{{ .WorkerIP }}:{{ get "maand/bucket" "api_http" }}",
  "base_path": "{{ get "vars/job/api" "base_path" }}",
  "workers": {{ get "vars/job/api" "workers" }},
  "peers": "{{ get (printf "maand/job/api/worker/%s" .WorkerIP) "peer_workers" }}",
  "database": "{{ get "maand/job/database" "workers" }}:{{ get "maand/bucket" "database_port" }}",
  "database_password": "{{ get "secrets/job/database" "admin_password" }}",
  "version": "{{ .NewVersion }}",
  "tls_cert": "{{ .JobPath }}/certs/server.crt"
}
