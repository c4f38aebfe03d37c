/** Node health and metrics, for the nodes the serving process knows (the devnet's own, or --node URLs). */
import type { App } from "../app.ts";
import { nodeReports } from "../data/nodes.ts";
import { errorBox, facts, h, hex, simulatedMark, stateTag, table, verdict } from "../dom.ts";

const shown = ["tasks_seen_total", "tasks_accepted_total", "tasks_completed_total", "tasks_in_flight", "rpc_errors_total", "chain_block_checkpoint", "enclave_up", "task_duration_seconds_sum", "task_duration_seconds_count"];

/** From the node's task_duration_seconds histogram: seen on chain → completed on chain. */
function meanTaskTime(metrics: Record<string, number> | undefined): string {
  const count = metrics?.task_duration_seconds_count ?? 0;
  if (!metrics || count === 0) return "— (no task completed yet)";
  return `${((metrics.task_duration_seconds_sum! / count) * 1000).toFixed(0)} ms over ${count} tasks (seen on chain → completed on chain, by the node's clock)`;
}

export async function nodesPage(app: App): Promise<HTMLElement> {
  const title = h("h1", { tabindex: "-1" }, "Nodes");
  if (app.config.nodeCount === 0) {
    return h("section", null, title, h("p", null, "No node health endpoints were given: 'cloister devnet up' relays its own nodes'; 'cloister dashboard --node <url>' relays any node's GET /healthz and /metrics."));
  }
  const nodes = await nodeReports(app);
  return h(
    "section",
    null,
    title,
    nodes.map((n) =>
      h(
        "article",
        { class: "card", "data-testid": "node" },
        h("h2", null, `Node ${n.index}`, " ", n.health ? stateTag(n.health.status) : stateTag("unreachable"), n.health?.enclave.simulated ? [" ", simulatedMark()] : null),
        !n.ok && !n.health
          ? errorBox(`Node ${n.index} does not answer`, n.error ?? "no answer", `Its health endpoint is ${n.url}/healthz.`)
          : facts([
              ["Health endpoint", h("code", null, `${n.url}/healthz`)],
              ["Enclave", n.health ? h("span", null, hex(n.health.enclave.signer), " ", verdict(n.health.enclave.up, "process up", "process DOWN")) : "—"],
              ["Registration", n.health ? `${n.health.registration.state}${n.health.registration.secondsToExpiry !== null ? `, expires in ${n.health.registration.secondsToExpiry} s` : ""}${n.health.registration.failures ? `, ${n.health.registration.failures} failed attempts` : ""}` : "—"],
              ["Chain checkpoint", n.health?.checkpointBlock ?? "—"],
              ["Last crawl", n.health?.lastCrawlAgeMs != null ? `${n.health.lastCrawlAgeMs} ms ago` : "—"],
              ["Mean task time", meanTaskTime(n.metrics)],
              ...(n.health?.reason ? ([["Problem", n.health.reason]] as [string, string][]) : []),
            ]),
        n.metrics ? table("Metrics", ["Metric", "Value"], shown.filter((m) => n.metrics![m] !== undefined).map((m) => [h("code", null, m), String(Number.isInteger(n.metrics![m]) ? n.metrics![m] : Number(n.metrics![m]!.toPrecision(6)))])) : null,
      ),
    ),
  );
}
