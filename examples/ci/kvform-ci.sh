#!/bin/sh
# The shell steps of the CI recipes (github-actions.yml, gitlab-ci.yml), in one place so that
# both run the same commands and tests/ci_recipe.rs runs them too.
#
#   kvform-ci.sh plan    on a pull / merge request: validate, plan, save the plan, write the
#                        markdown comment to plan.md (exit 0 whether or not there are changes)
#   kvform-ci.sh apply   on merge: plan again against the state as it is now, save that plan,
#                        apply exactly the saved plan
#
# Run it in the bucket (the directory with kvform.hcl). The runner has no secrets/: the state
# is on PostgreSQL (kvform.hcl `state { backend = "postgres" url_env = "…" }`, the variable
# named there holds the connection string) and the bucket key comes from KVFORM_SECRET_KEY
# (`base64 -w0 secrets/kv.key` on the machine that ran `kvform init`). Without the CA files
# a plan leaves the bucket CA in the state as it is and stops if a certificate must be
# issued; copy secrets/ca.crt and secrets/ca.key into the runner if jobs use certificates.
#
# KVFORM names the binary (default: kvform on PATH); KVFORM_MAX_CHARS the comment budget.
set -eu

kvform=${KVFORM:-kvform}
step=${1:?usage: kvform-ci.sh plan|apply}

if [ -z "${KVFORM_SECRET_KEY:-}" ] && [ ! -f secrets/kv.key ]; then
  echo "error: KVFORM_SECRET_KEY is not set and there is no secrets/kv.key" >&2
  echo "  help: store \`base64 -w0 secrets/kv.key\` (from the machine that ran \`kvform init\`) as the CI secret KVFORM_SECRET_KEY" >&2
  exit 1
fi

case "$step" in
plan)
  # Diagnostics as JSON for annotations; the human form goes to the log.
  if ! "$kvform" validate -json > validate.json; then
    "$kvform" validate || true
    exit 1
  fi
  # 0: no changes, 2: changes, 1: error. The comment names the bucket, base serial and
  # commit, and points at the saved plan when it has to be cut.
  code=0
  "$kvform" plan -detailed-exitcode -out=pr.plan.json --format markdown \
    --max-chars "${KVFORM_MAX_CHARS:-60000}" > plan.md || code=$?
  if [ "$code" -eq 1 ]; then
    exit 1
  fi
  "$kvform" show pr.plan.json   # the whole plan, in the job's log
  ;;
apply)
  "$kvform" plan -out=merge.plan.json
  "$kvform" apply -lock-timeout=5m merge.plan.json
  ;;
*)
  echo "error: unknown step \`$step\`" >&2
  echo "  help: kvform-ci.sh plan|apply" >&2
  exit 1
  ;;
esac
