#!/usr/bin/env bash
# One command on a fresh box: build osprey-agent and osprey-collector, start the agent on
# 127.0.0.1:9100 and a collector scraping it (and itself) on 127.0.0.1:9090, print where to
# look, and stop both on Ctrl-C. Data goes to ./demo-data (override: DEMO_DATA=/path).
set -euo pipefail
cd "$(dirname "$0")/.."
AGENT_ADDR=${AGENT_ADDR:-127.0.0.1:9100}
COLLECTOR_ADDR=${COLLECTOR_ADDR:-127.0.0.1:9090}
DATA=${DEMO_DATA:-./demo-data}

# DEMO_PROFILE=debug builds faster (for trying the script itself).
PROFILE=${DEMO_PROFILE:-release}
flags=()
[ "$PROFILE" = release ] && flags+=(--release)
echo ">> building osprey-agent and osprey-collector ($PROFILE)…"
cargo build "${flags[@]}" -p exporters --bin osprey-agent -p osprey-collector --bin osprey-collector
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE

CFG=$(mktemp --suffix=.toml)
cat >"$CFG" <<TOML
[global]
scrape_interval = "5s"
scrape_timeout = "5s"

[[scrape_configs]]
job_name = "collector"
static_configs = [{ targets = ["$COLLECTOR_ADDR"] }]

[[scrape_configs]]
job_name = "node"
static_configs = [{ targets = ["$AGENT_ADDR"] }]
TOML

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -f "$CFG"
}
trap cleanup EXIT INT TERM

"$BIN/osprey-agent" --web.listen-address="$AGENT_ADDR" &
pids+=($!)
"$BIN/osprey-collector" --config "$CFG" --data-dir "$DATA" --web.listen-address="$COLLECTOR_ADDR" \
  --discovery.debounce=1s &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://$COLLECTOR_ADDR/-/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

Osprey is running:
  agent metrics      http://$AGENT_ADDR/metrics
  collector targets  http://$COLLECTOR_ADDR/api/v1/targets
  latest samples     http://$COLLECTOR_ADDR/federate?match[]=up
  collector metrics  http://$COLLECTOR_ADDR/metrics
  data directory     $DATA   (osprey-collector --data-dir $DATA tsdb analyze, after stopping)
Ctrl-C stops both.
MSG
wait
