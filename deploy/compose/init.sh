#!/bin/sh
# The compose deployment's one-shot setup: the bus authority, a nats-server config for each of
# the three servers, and one NATS credential per daemon, all in the `bus` volume (0700, files
# 0600, owned by the apiary user). Run again, it keeps what is there.
set -eu
umask 077
BUS="${APIARY_BUS_DIR:-/bus}"
APP="${APIARY_APP:-/app}"
keeper() { node "$APP/packages/keeper/bin/keeper.mjs" "$@"; }

if [ ! -f "$BUS/nats-server-nats-1.conf" ]; then
  keeper bus init --dir "$BUS"
  for n in 1 2 3; do
    keeper bus server-config --dir "$BUS" --host 0.0.0.0 --port 4222 --server-name "nats-$n" \
      --store-dir "/data/jetstream-nats-$n" --cluster-name apiary --cluster-listen 0.0.0.0:6222 \
      --routes nats-1:6222,nats-2:6222,nats-3:6222
  done
fi
issue() {
  out="$BUS/creds/$1"
  shift
  [ -f "$out" ] || keeper bus issue --dir "$BUS" "$@" --out "$out"
}
mkdir -p "$BUS/creds"
issue queen-a.creds --role queen --id queen-a
issue queen-b.creds --role queen --id queen-b
issue hive-eu-1.creds --role hive --region eu --id hive-eu-1
issue hive-eu-2.creds --role hive --region eu --id hive-eu-2
for n in 1 2 3; do issue "web-$n.creds" --role worker --region eu --node-id "web-$n"; done
# The token Prometheus (or an operator) presents to the hives' and workers' /metrics.
[ -f "$BUS/metrics.token" ] || (umask 077 && node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64url"))' > "$BUS/metrics.token")
echo "init: the bus authority, three nats-server configs and the daemons' credentials are in $BUS"
