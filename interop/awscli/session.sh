#!/usr/bin/env bash
# A scripted AWS CLI session against runnel serve: every Kinesis command of
# this CLI (read from its bundled service model, so a newer CLI that adds
# operations fails here until they are covered), its auto-pagination and
# its waiters. Usage: session.sh ENDPOINT [CA_BUNDLE]. Uses Debian's
# /usr/bin/aws (a pyenv shim may shadow `aws` on PATH); AWS_CLI overrides.
# Exits non-zero naming the failed step; prints "awscli session: N
# operations ok" at the end.
set -euo pipefail
ep=$1
aws=${AWS_CLI:-/usr/bin/aws}
export AWS_ACCESS_KEY_ID=k AWS_SECRET_ACCESS_KEY=s AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= AWS_MAX_ATTEMPTS=2
common=(--endpoint-url "$ep" --output json --cli-binary-format raw-in-base64-out)
[ -n "${2:-}" ] && common+=(--ca-bundle "$2")
covered=$(mktemp); trap 'rm -f "$covered"' EXIT
k() { # k operation-name cli-args...: run one command, remember its operation
  local op=$1; shift
  echo "$op" >>"$covered"
  if ! out=$("$aws" kinesis "$@" "${common[@]}" 2>&1); then
    echo "awscli $op failed: $out" >&2; exit 1
  fi
  printf '%s' "$out"
}
check() { if ! eval "$1"; then echo "awscli check failed: $2" >&2; exit 1; fi; }
json() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# The waiter polls every 10 s; a short pause first lets its first poll see
# the stream ACTIVE (Runnel's status windows last 300 ms).
wait_active() { sleep 0.5; "$aws" kinesis wait stream-exists --stream-name "$name" "${common[@]}"; }

name=awscli-$RANDOM$RANDOM
k CreateStream create-stream --stream-name "$name" --shard-count 2 >/dev/null
wait_active
arn=$(k DescribeStreamSummary describe-stream-summary --stream-name "$name" | json 'd["StreamDescriptionSummary"]["StreamARN"]')
k DescribeLimits describe-limits >/dev/null
check "k ListStreams list-streams --page-size 1 | grep '\"$name\"' >/dev/null" "list-streams (auto-paginated by one)"
check "[ \$(k DescribeStream describe-stream --stream-name $name --page-size 1 | json 'len(d[\"StreamDescription\"][\"Shards\"])') = 2 ]" "describe-stream (auto-paginated)"
check "[ \$(k ListShards list-shards --stream-name $name | json 'len(d[\"Shards\"])') = 2 ]" "list-shards"
put=$(k PutRecord put-record --stream-name "$name" --partition-key k --data hello)
shard=$(printf '%s' "$put" | json 'd["ShardId"]')
seq=$(printf '%s' "$put" | json 'd["SequenceNumber"]')
check "[ \$(k PutRecords put-records --stream-name $name --records PartitionKey=a,Data=x PartitionKey=b,Data=y | json 'd[\"FailedRecordCount\"]') = 0 ]" "put-records"
it=$(k GetShardIterator get-shard-iterator --stream-name "$name" --shard-id "$shard" --shard-iterator-type AT_SEQUENCE_NUMBER --starting-sequence-number "$seq" | json 'd["ShardIterator"]')
check "[ \"\$(k GetRecords get-records --shard-iterator $it --limit 1 | json 'd[\"Records\"][0][\"Data\"]')\" = aGVsbG8= ]" "get-records returns the record"
k AddTagsToStream add-tags-to-stream --stream-name "$name" --tags team=data,env=test >/dev/null
check "[ \$(k ListTagsForStream list-tags-for-stream --stream-name $name | json 'len(d[\"Tags\"])') = 2 ]" "list-tags-for-stream"
k RemoveTagsFromStream remove-tags-from-stream --stream-name "$name" --tag-keys env >/dev/null
k IncreaseStreamRetentionPeriod increase-stream-retention-period --stream-name "$name" --retention-period-hours 48 >/dev/null
k DecreaseStreamRetentionPeriod decrease-stream-retention-period --stream-name "$name" --retention-period-hours 24 >/dev/null
k EnableEnhancedMonitoring enable-enhanced-monitoring --stream-name "$name" --shard-level-metrics IncomingBytes >/dev/null
k DisableEnhancedMonitoring disable-enhanced-monitoring --stream-name "$name" --shard-level-metrics IncomingBytes >/dev/null
k StartStreamEncryption start-stream-encryption --stream-name "$name" --encryption-type KMS --key-id alias/aws/kinesis >/dev/null
wait_active
k StopStreamEncryption stop-stream-encryption --stream-name "$name" --encryption-type KMS --key-id alias/aws/kinesis >/dev/null
wait_active
carn=$(k RegisterStreamConsumer register-stream-consumer --stream-arn "$arn" --consumer-name c1 | json 'd["Consumer"]["ConsumerARN"]')
for _ in $(seq 100); do
  st=$(k DescribeStreamConsumer describe-stream-consumer --consumer-arn "$carn" | json 'd["ConsumerDescription"]["ConsumerStatus"]')
  [ "$st" = ACTIVE ] && break; sleep 0.1
done
check "[ \$(k ListStreamConsumers list-stream-consumers --stream-arn $arn --page-size 1 | json 'len(d[\"Consumers\"])') = 1 ]" "list-stream-consumers"
k DeregisterStreamConsumer deregister-stream-consumer --stream-arn "$arn" --consumer-name c1 >/dev/null
if "$aws" kinesis split-shard --stream-name "$name" --shard-to-split "$shard" --new-starting-hash-key 1 "${common[@]}" >/dev/null 2>&1; then
  echo "awscli: split at hash key 1 accepted" >&2; exit 1
fi
first=$("$aws" kinesis list-shards --stream-name "$name" "${common[@]}" | json 'd["Shards"][0]["ShardId"]')
k SplitShard split-shard --stream-name "$name" --shard-to-split "$first" --new-starting-hash-key 85070591730234615865843651857942052864 >/dev/null
wait_active
kids=$("$aws" kinesis list-shards --stream-name "$name" --shard-filter Type=AT_LATEST "${common[@]}" | json '" ".join(s["ShardId"] for s in d["Shards"][-2:])')
set -- $kids
k MergeShards merge-shards --stream-name "$name" --shard-to-merge "$1" --adjacent-shard-to-merge "$2" >/dev/null
wait_active
k UpdateShardCount update-shard-count --stream-name "$name" --target-shard-count 4 --scaling-type UNIFORM_SCALING >/dev/null
wait_active
k UpdateStreamMode update-stream-mode --stream-arn "$arn" --stream-mode-details StreamMode=ON_DEMAND >/dev/null
if out=$("$aws" kinesis describe-stream-summary --stream-name "$name-missing" "${common[@]}" 2>&1); then
  echo "awscli: a missing stream was found" >&2; exit 1
fi
check "printf '%s' \"\$out\" | grep ResourceNotFoundException >/dev/null" "a missing stream is ResourceNotFoundException: $out"
k DeleteStream delete-stream --stream-name "$name" >/dev/null
sleep 0.5; "$aws" kinesis wait stream-not-exists --stream-name "$name" "${common[@]}"

# SubscribeToShard is an event-stream operation, which the AWS CLI does not
# offer as a command; every other operation of its model must be covered.
model=$(/usr/bin/python3 -c "import awscli, json, os; print(' '.join(json.load(open(os.path.join(os.path.dirname(awscli.__file__), 'botocore/data/kinesis/2013-12-02/service-2.json')))['operations']))")
missing=()
for op in $model; do
  [ "$op" = SubscribeToShard ] && continue
  grep -qx "$op" "$covered" || missing+=("$op")
done
if [ ${#missing[@]} -gt 0 ]; then echo "awscli: operations not covered: ${missing[*]}" >&2; exit 1; fi
echo "awscli session: $(sort -u "$covered" | wc -l) operations ok ($("$aws" --version 2>&1 | cut -d' ' -f1))"
