/**
 * Task throughput and latency on a multi-process devnet:
 *
 *   npm run bench -- tasks [--tasks N] [--nodes K] [--concurrency C] [--warmup W] [--poll-ms P] [--stages] [--json] [--dir D]
 *
 * Starts `cloister devnet up`'s network (K node processes, each with its
 * enclave process) in a fresh data dir, connects one SDK client over JSON-RPC
 * (over WebSocket) and the Kubo RPC API, runs one task and then W more at once
 * (default 600, not measured: a network that has been running a while, whose
 * processes' JIT compilers have settled; --warmup 0 measures a fresh one),
 * then N echo tasks with at most C in flight (default: all N at once). Latency is per task, from the
 * runTask call (encryption, IPFS puts and submit included) to the verified,
 * decrypted result. Gas is read from the receipts of the measured tasks'
 * transactions. The last line of stdout is one JSON object; progress goes to
 * stderr on a terminal (or with CLOISTER_PROGRESS=1), and without --json a
 * human summary goes to stdout before it.
 * --stages adds, on stderr, the CPU time per task of each process and of
 * each kind of thread (main, EDR, V8's workers; user and system), and the
 * median time between the stages of a task (client and node events).
 * machine_speed_ms is the CPU time of a fixed workload (machine-speed.ts),
 * measured before and after the batch: the same code uses more CPU per task
 * when it is higher, so it tells runs from slow periods of a shared machine.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseEventLogs, type Hex } from "viem";
import { getLogs, getTransactionReceipt } from "viem/actions";
import { taskMarketAbi } from "../src/chain/abi/TaskMarket.ts";
import { progressWanted } from "../src/cli/output.ts";
import { connectToNetwork } from "../src/devnet/remote-client.ts";
import { startMultiProcessDevnet } from "../src/devnet/multi-process.ts";
import type { HostEvent } from "../src/host/log.ts";
import { machineSpeedMs } from "./machine-speed.ts";

const { values } = parseArgs({
  options: {
    tasks: { type: "string", default: "200" },
    nodes: { type: "string", default: "3" },
    concurrency: { type: "string" },
    warmup: { type: "string" },
    "poll-ms": { type: "string" },
    json: { type: "boolean", default: false },
    stages: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`--${name} takes a positive integer, got '${raw}'\n`);
    process.exit(2);
  }
  return n;
}

const taskCount = positive("tasks", values.tasks, 200);
const nodeCount = positive("nodes", values.nodes, 3);
const concurrency = positive("concurrency", values.concurrency, taskCount);
const warmup = values.warmup === "0" ? 0 : positive("warmup", values.warmup, 600);
const pollMs = values["poll-ms"] === undefined ? undefined : positive("poll-ms", values["poll-ms"], 0);
const log = (m: string) => process.stderr.write(`${m}\n`);
/** Progress, shown on a terminal (or with CLOISTER_PROGRESS=1); what --stages asks for is always shown. */
const progress = (m: string) => {
  if (progressWanted()) log(m);
};

const echo = new Uint8Array(await readFile(new URL("../examples/echo.js", import.meta.url)));
const dataDir = values.dir ?? (await mkdtemp(join(tmpdir(), "cloister-bench-tasks-")));
progress(`starting a ${nodeCount}-node devnet in ${dataDir}`);
/**
 * Per task: when each stage was reached, in ms since the Unix epoch; node stages carry the time the node
 * emitted them (their IPC messages can queue behind the warm-up's).
 */
const stamps = new Map<string, Record<string, number>>();
const epochMs = () => performance.timeOrigin + performance.now();
const stamp = (taskId: string, stage: string, at = epochMs()) => {
  const s = stamps.get(taskId) ?? {};
  s[stage] ??= at;
  stamps.set(taskId, s);
};
const stageEvents: HostEvent["type"][] = ["task-seen", "task-accepted", "task-executed", "task-completed"];
const devnet = await startMultiProcessDevnet({
  dataDir,
  nodes: nodeCount,
  ...(pollMs === undefined ? {} : { pollIntervalMs: pollMs }),
  // Only --stages needs the nodes' events; without it the nodes report none.
  hostEvents: values.stages ? stageEvents : [],
  onNodeMessage: (_node, m) => {
    if (m.event !== "host" || !stageEvents.includes(m.host.type)) return;
    const taskId = "taskId" in m.host ? m.host.taskId : undefined;
    if (taskId) stamp(taskId, m.host.type, m.at);
  },
});
const remote = await connectToNetwork({ rpcUrl: devnet.rpcUrl, wsUrl: devnet.wsUrl, ipfsUrl: devnet.ipfsUrl, deployment: devnet.deployment, manifest: devnet.manifest, privateKey: devnet.requesterKey, ...(pollMs === undefined ? {} : { pollingIntervalMs: pollMs }) });

try {
  const input = (i: number) => new TextEncoder().encode(`bench task ${i}`);
  progress(`warm-up: 1 task, then ${warmup} at once`);
  await remote.client.runTask({ program: echo, input: input(-1), timeoutMs: 60_000 });
  await Promise.all(Array.from({ length: warmup }, (_, i) => remote.client.runTask({ program: echo, input: input(-2 - i), timeoutMs: 600_000 })));
  const fromBlock = (await remote.writer.getBlockNumber({ cacheTime: 0 })) + 1n;

  progress(`${taskCount} tasks, at most ${concurrency} in flight`);
  const latencies: number[] = [];
  const submitHashes = new Set<Hex>();
  const taskIds = new Set<bigint>();
  let next = 0;
  const speedBefore = machineSpeedMs();
  const threadsBefore = values.stages ? await Promise.all(devnetPids().map(threadCpuOf)) : [];
  const cpuBefore = await Promise.all(devnetPids().map((pid) => cpuMsOf([pid])));
  const started = performance.now();
  const worker = async () => {
    while (next < taskCount) {
      const i = next++;
      const t0 = performance.now();
      let id = "";
      const result = await remote.client.runTask({
        program: echo,
        input: input(i),
        timeoutMs: 600_000,
        onProgress: (p) => {
          if (p.step === "submitted") {
            submitHashes.add(p.task.transactionHash);
            id = p.task.taskId.toString();
            stamps.set(id, { ...stamps.get(id), start: performance.timeOrigin + t0 });
          }
          if (values.stages && id) stamp(id, p.step);
        },
      });
      latencies.push(performance.now() - t0);
      taskIds.add(result.taskId);
      if (new TextDecoder().decode(result.output) !== `bench task ${i}`) throw new Error(`task ${i} returned the wrong output`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, taskCount) }, worker));
  const elapsedMs = performance.now() - started;
  const cpuByProcess = (await Promise.all(devnetPids().map((pid) => cpuMsOf([pid])))).map((ms, i) => ms - cpuBefore[i]!);
  const cpuMs = cpuByProcess.reduce((a, b) => a + b, 0);
  const speedMs = (speedBefore + machineSpeedMs()) / 2;
  if (values.stages) {
    log(`CPU ms per task: devnet+client ${round(cpuByProcess[0]! / taskCount)}, nodes ${cpuByProcess.slice(1).filter((_, i) => i % 2 === 0).map((ms) => round(ms / taskCount)).join(" ")}, enclaves ${cpuByProcess.slice(1).filter((_, i) => i % 2 === 1).map((ms) => round(ms / taskCount)).join(" ")}`);
    const threadsAfter = await Promise.all(devnetPids().map(threadCpuOf));
    const roles = [["devnet+client", [0]], ["nodes", threadsAfter.map((_, i) => i).filter((i) => i % 2 === 1)], ["enclaves", threadsAfter.map((_, i) => i).filter((i) => i > 0 && i % 2 === 0)]] as const;
    for (const [role, indexes] of roles) {
      const used = new Map<string, { user: number; system: number }>();
      for (const i of indexes) {
        for (const [name, after] of threadsAfter[i]!) {
          const before = threadsBefore[i]!.get(name) ?? { user: 0, system: 0 };
          const sum = used.get(name) ?? { user: 0, system: 0 };
          used.set(name, { user: sum.user + after.user - before.user, system: sum.system + after.system - before.system });
        }
      }
      const parts = [...used].filter(([, t]) => t.user + t.system > 0).sort((a, b) => b[1].user + b[1].system - (a[1].user + a[1].system));
      log(`  ${role} by thread (ms per task, user+system): ${parts.map(([name, t]) => `${name} ${round(t.user / taskCount)}+${round(t.system / taskCount)}`).join(", ")}`);
    }
  }

  const gas = await gasOf(fromBlock, taskIds, submitHashes);
  latencies.sort((a, b) => a - b);
  const summary = {
    tasks: taskCount,
    nodes: nodeCount,
    p50_ms: round(quantile(latencies, 0.5)),
    p95_ms: round(quantile(latencies, 0.95)),
    tasks_per_s: round((taskCount * 1000) / elapsedMs),
    gas: gas.gas,
    blocks_per_task: round(gas.transactionsPerTask),
    concurrency,
    warmup,
    cpu_ms_per_task: round(cpuMs / taskCount),
    tasks_per_transaction: gas.tasksPerTransaction,
    machine_speed_ms: round(speedMs),
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "unknown",
    node: process.version,
  };
  if (values.stages) {
    const order = ["start", "submitted", "task-seen", "task-accepted", "task-executed", "task-completed", "completed", "verified"];
    const lines = order.slice(1).map((stage, i) => {
      // Only the measured tasks: the nodes also report the warm-up's.
      const d = [...stamps.values()].filter((s) => s.start !== undefined && s[stage] !== undefined && s[order[i]!] !== undefined).map((s) => s[stage]! - s[order[i]!]!).sort((a, b) => a - b);
      return `  ${order[i]} -> ${stage}: p50 ${round(quantile(d, 0.5))} ms, p95 ${round(quantile(d, 0.95))} ms`;
    });
    log(`stage durations (median over tasks):\n${lines.join("\n")}`);
  }
  if (!values.json) {
    process.stdout.write(
      `${taskCount} tasks on ${nodeCount} nodes, ${concurrency} in flight: ${summary.tasks_per_s} tasks/s, latency p50 ${summary.p50_ms} ms, p95 ${summary.p95_ms} ms\n` +
        `gas per task: submit ${gas.gas.submit}, accept ${gas.gas.accept}, complete ${gas.gas.complete}, total ${gas.gas.total}; ${summary.blocks_per_task} transactions on a task's critical path\n` +
        `tasks per transaction: submit ${gas.tasksPerTransaction.submit}, accept ${gas.tasksPerTransaction.accept}, complete ${gas.tasksPerTransaction.complete}\n`,
    );
  }
  process.stdout.write(`${JSON.stringify(summary)}\n`);
} finally {
  await remote.close();
  await devnet.close();
  if (values.dir === undefined) await rm(dataDir, { recursive: true, force: true });
}

function devnetPids(): number[] {
  return [process.pid, ...devnet.nodes.flatMap((n) => [n.pid, n.enclavePid])];
}

/** CPU ms (user, system) a process's threads have used so far, summed by thread name (MainThread, V8Worker, …), from /proc (Linux). */
async function threadCpuOf(pid: number): Promise<Map<string, { user: number; system: number }>> {
  const byName = new Map<string, { user: number; system: number }>();
  let tids: string[] = [];
  try {
    tids = await readdir(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const tid of tids) {
    try {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const sum = byName.get(name) ?? { user: 0, system: 0 };
      byName.set(name, { user: sum.user + Number(fields[11]) * 10, system: sum.system + Number(fields[12]) * 10 });
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return byName;
}

/** CPU time (user + system) the processes have used so far, from /proc (Linux); NaN elsewhere. */
async function cpuMsOf(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return ticks * 10;
}

/**
 * Mean gasUsed per task of each transaction kind: the gas of the distinct transactions that carried the
 * measured tasks (a batch transaction carries several) over the number of tasks. Also the transactions on a
 * task's path (its submit, accepts and completion) and the mean number of tasks per transaction by kind.
 */
async function gasOf(fromBlock: bigint, taskIds: Set<bigint>, submitHashes: Set<Hex>) {
  const logs = await getLogs(remote.writer, { address: devnet.deployment.market, fromBlock, toBlock: "latest" });
  const mine = parseEventLogs({ abi: taskMarketAbi, logs, eventName: ["TaskAccepted", "TaskCompleted"] }).filter((l) => taskIds.has(l.args.taskId));
  const accepts = mine.filter((l) => l.eventName === "TaskAccepted");
  const completions = mine.filter((l) => l.eventName === "TaskCompleted");
  const hashes = {
    submit: [...submitHashes],
    accept: [...new Set(accepts.map((l) => l.transactionHash))],
    complete: [...new Set(completions.map((l) => l.transactionHash))],
  };
  const sum = async (list: Hex[]) => (await Promise.all(list.map((hash) => getTransactionReceipt(remote.writer, { hash })))).reduce((s, r) => s + r.gasUsed, 0n);
  const [submit, accept, complete] = await Promise.all([sum(hashes.submit), sum(hashes.accept), sum(hashes.complete)]);
  const n = taskIds.size;
  const perTask = (total: bigint) => Math.round(Number(total) / n);
  const g = { submit: perTask(submit), accept: perTask(accept), complete: perTask(complete) };
  return {
    gas: { ...g, total: g.submit + g.accept + g.complete },
    transactionsPerTask: (n + accepts.length + completions.length) / n,
    tasksPerTransaction: { submit: round(n / hashes.submit.length), accept: round(accepts.length / hashes.accept.length), complete: round(completions.length / hashes.complete.length) },
  };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
