/**
 * A fixed single-threaded workload whose CPU time says how fast the machine
 * runs right now. On the shared 2-core machines the same benchmark run uses
 * about a third more CPU per task in some periods of minutes than in others,
 * and this workload slows down with it; a benchmark reports it beside its
 * figures so that runs from different periods can be compared.
 *
 * The mix follows what the task benchmark's processes do: JSON, small
 * objects and strings (JavaScript), and hashing (native).
 */
import { createHash } from "node:crypto";

const record = { taskId: "12345678901234567890", cid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", digest: `0x${"ab".repeat(32)}`, sizes: [1, 2, 3, 4, 5, 6, 7, 8] };
const block = new Uint8Array(4096).fill(7);

function workload(): number {
  let checksum = 0;
  for (let i = 0; i < 20_000; i++) {
    const text = JSON.stringify({ ...record, n: i });
    checksum += (JSON.parse(text) as { n: number }).n & 1;
  }
  for (let i = 0; i < 4_000; i++) checksum += createHash("sha256").update(block).digest()[0]!;
  return checksum;
}

/** CPU milliseconds of the workload: the median of three runs, after one not counted (it compiles the code). */
export function machineSpeedMs(): number {
  workload();
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const before = process.cpuUsage();
    workload();
    const used = process.cpuUsage(before);
    runs.push((used.user + used.system) / 1000);
  }
  return runs.sort((a, b) => a - b)[1]!;
}
