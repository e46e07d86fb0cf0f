#!/usr/bin/env bash
# Start a private InfluxDB 1.x (Debian's `influxdb` package) unless one already answers.
#   scripts/influxdb.sh PORT DATA_DIR
# Installs the package when influxd is missing (needs root, as on CI machines). Leaves influxd
# running in the background; its pid is in DATA_DIR/influxd.pid and its log in DATA_DIR/influxd.log.
set -euo pipefail
port="${1:?port}"
data="$(realpath -m "${2:?data dir}")"

ping() { curl -fsS -o /dev/null "http://127.0.0.1:${port}/ping" 2>/dev/null; }

if ping; then
    echo "influxdb: already answering on 127.0.0.1:${port}"
    exit 0
fi
if ! command -v influxd >/dev/null; then
    echo "influxdb: installing Debian's influxdb package"
    (apt-get install -y --no-install-recommends influxdb >/dev/null 2>&1) || {
        apt-get update >/dev/null && apt-get install -y --no-install-recommends influxdb >/dev/null
    }
fi
mkdir -p "${data}/meta" "${data}/data" "${data}/wal"
# The RPC (backup) port defaults to 8088 for every instance; give each its own beside the HTTP one.
cat >"${data}/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((port + 2))"
[meta]
  dir = "${data}/meta"
[data]
  dir = "${data}/data"
  wal-dir = "${data}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${port}"
  log-enabled = false
  max-body-size = 0
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
setsid influxd -config "${data}/influxdb.conf" >"${data}/influxd.log" 2>&1 </dev/null &
echo $! >"${data}/influxd.pid"
for _ in $(seq 1 150); do
    if ping; then
        echo "influxdb: started on 127.0.0.1:${port} (pid $(cat "${data}/influxd.pid"), data ${data})"
        exit 0
    fi
    sleep 0.2
done
echo "influxdb: did not answer on 127.0.0.1:${port} within 30 s; log follows" >&2
tail -n 30 "${data}/influxd.log" >&2
exit 1
