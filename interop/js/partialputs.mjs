// The AWS SDK for JavaScript v3 against PutRecords entries that fail one by
// one (runnel serve --inject PutRecords:record-throttle:R,...): the retry
// pattern AWS's documentation gives for PutRecords, resending only the
// entries whose result carries an ErrorCode until FailedRecordCount is 0.
// Usage: node partialputs.mjs ENDPOINT STREAM N (NODE_EXTRA_CA_CERTS for a
// self-signed certificate). Puts records "js-0" .. "js-{N-1}" in batches of
// 100; the Go test reads the stream back. Prints a summary; exits 1 naming
// the failed check.
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";

const [endpoint, stream, nArg] = process.argv.slice(2);
const n = Number(nArg);
const kin = new KinesisClient({
  endpoint, region: "us-east-1", maxAttempts: 3,
  credentials: { accessKeyId: "k", secretAccessKey: "s" },
});
const check = (ok, what) => { if (!ok) { console.error("js partial puts: " + what); process.exit(1); } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const enc = new TextEncoder();

let calls = 0, resent = 0;
const codes = new Set();
for (let start = 0; start < n; start += 100) {
  let pending = [];
  for (let i = start; i < Math.min(start + 100, n); i++) pending.push({ PartitionKey: "k" + (i % 16), Data: enc.encode("js-" + i) });
  for (let attempt = 1; pending.length > 0; attempt++) {
    check(attempt <= 60, `records still failing after 60 calls: ${pending.length}`);
    const res = await kin.send(new PutRecordsCommand({ StreamName: stream, Records: pending }));
    calls++;
    check(res.Records.length === pending.length, `${res.Records.length} results for ${pending.length} entries`);
    const failed = [];
    res.Records.forEach((r, i) => {
      if (r.ErrorCode) {
        check(!r.SequenceNumber && r.ErrorMessage, "failed entry " + JSON.stringify(r));
        codes.add(r.ErrorCode);
        failed.push(pending[i]);
      } else {
        check(r.SequenceNumber && r.ShardId, "stored entry " + JSON.stringify(r));
      }
    });
    check(res.FailedRecordCount === failed.length, `FailedRecordCount ${res.FailedRecordCount}, ${failed.length} entries with an ErrorCode`);
    resent += failed.length;
    pending = failed;
    if (pending.length > 0) await sleep(Math.min(10 * 2 ** attempt, 200));
  }
}
console.log(`js partial puts: ${n} records in ${calls} calls, ${resent} entries resent, codes ${[...codes].sort().join(",")}`);
