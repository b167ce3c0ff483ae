#!/bin/sh
# 1,000 streams with 4,096 shards in all (904 of 4 shards, 96 of 5): RSS idle, RSS once
# every stream has taken 64 records (keys k0..k63, so every shard gets some), and the
# time a restart takes until /healthz answers.
set -e
BIN=${BIN:-bin/runnel}; D=$(mktemp -d); A=127.0.0.1:7171; U=http://$A
rss() { awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$1/status; }
$BIN serve --data $D --addr $A --log-level warn & P=$!
until curl -sf $U/healthz >/dev/null; do sleep 0.1; done
for i in $(seq 0 999); do n=4; [ $i -lt 96 ] && n=5
  curl -sf -o /dev/null -H 'Content-Type: application/json' -d "{\"name\":\"s$i\",\"shards\":$n}" $U/api/v1/streams; done
sleep 5; echo "idle, 4,096 shards: $(rss $P)"
R=$(for k in $(seq 0 63); do printf '{"key":"k%d","data":"x"},' $k; done)
for i in $(seq 0 999); do
  curl -sf -o /dev/null -H 'Content-Type: application/json' -d "{\"records\":[${R%,}]}" $U/api/v1/streams/s$i/records; done
sleep 5; echo "after a put to every shard: $(rss $P)"
kill $P; wait $P || true
T0=$(date +%s.%N); $BIN serve --data $D --addr $A --log-level warn & P=$!
until curl -sf $U/healthz >/dev/null; do sleep 0.05; done
echo "restart until /healthz answers: $(echo "$(date +%s.%N) - $T0" | bc) s; streams listed: $(curl -s $U/api/v1/streams | grep -o '"name"' | wc -l)"
echo "RSS after restart: $(rss $P); $(curl -s $U/metrics | grep "^runnel_store_open_shards")"; kill $P; wait $P || true; rm -rf $D
