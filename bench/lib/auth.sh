# Operators' credentials for the benchmarks (source it): the first controller of a bench cluster
# writes its admin token to DATA_DIR/admin.token; every hoist command (HOIST_TOKEN), every
# member that joins (HOIST_TOKEN) and every curl (a .curlrc in WORK, by CURL_HOME) then sends it.

bench_admin_token() { # DATA_DIR WORK
  local dir=$1 work=$2
  for _ in $(seq 300); do [ -s "$dir/admin.token" ] && break; sleep 0.1; done
  [ -s "$dir/admin.token" ] || { echo "no admin token in $dir after 30 s" >&2; return 1; }
  HOIST_TOKEN=$(cat "$dir/admin.token")
  export HOIST_TOKEN
  printf 'header = "Authorization: Bearer %s"\n' "$HOIST_TOKEN" >"$work/.curlrc"
  chmod 600 "$work/.curlrc"
  export CURL_HOME=$work
}
