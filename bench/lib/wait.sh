# Waiting on a named condition in the benchmarks (source it).

wait_until() { # what deadline_s command...: runs command every 0.1 s until it succeeds; exits 1 at the deadline
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for $what" >&2; exit 1; }
    sleep 0.1
  done
}
