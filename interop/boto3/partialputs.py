#!/usr/bin/python3
"""boto3 against PutRecords entries that fail one by one (runnel serve
--inject PutRecords:record-throttle:R,...): the retry pattern AWS's
documentation gives for PutRecords, resending only the entries whose
result carries an ErrorCode until FailedRecordCount is 0. Usage:
partialputs.py ENDPOINT STREAM N [CA_BUNDLE]. Puts records "boto3-0" ..
"boto3-{N-1}" in batches of 100; the Go test reads the stream back. Prints
a summary; exits non-zero naming the failed check."""
import sys
import time

import boto3
from botocore.config import Config

endpoint, stream, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
verify = sys.argv[4] if len(sys.argv) > 4 else None
kin = boto3.client(
    "kinesis", endpoint_url=endpoint, region_name="us-east-1", verify=verify,
    aws_access_key_id="k", aws_secret_access_key="s",
    config=Config(retries={"max_attempts": 3}))


def check(cond, what):
    if not cond:
        sys.exit("boto3 partial puts: " + what)


calls = resent = 0
codes = set()
for start in range(0, n, 100):
    pending = [{"PartitionKey": "k%d" % (i % 16), "Data": b"boto3-%d" % i} for i in range(start, min(start + 100, n))]
    attempt = 0
    while pending:
        attempt += 1
        check(attempt <= 60, "records still failing after 60 calls: %d" % len(pending))
        res = kin.put_records(StreamName=stream, Records=pending)
        calls += 1
        check(len(res["Records"]) == len(pending), "%d results for %d entries" % (len(res["Records"]), len(pending)))
        failed = []
        for entry, result in zip(pending, res["Records"]):
            if "ErrorCode" in result:
                check("SequenceNumber" not in result and result.get("ErrorMessage"), "failed entry %r" % result)
                codes.add(result["ErrorCode"])
                failed.append(entry)
            else:
                check(result.get("SequenceNumber") and result.get("ShardId"), "stored entry %r" % result)
        check(res["FailedRecordCount"] == len(failed), "FailedRecordCount %d, %d entries with an ErrorCode" % (res["FailedRecordCount"], len(failed)))
        resent += len(failed)
        pending = failed
        if pending:
            time.sleep(min(0.01 * 2 ** attempt, 0.2))
print("boto3 partial puts: %d records in %d calls, %d entries resent, codes %s" % (n, calls, resent, ",".join(sorted(codes))))
