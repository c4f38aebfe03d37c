/**
 * A task's limits under a manifest: what the requester left out comes from
 * limits.task.defaults, and nothing may exceed limits.task.max, refused
 * before anything is encrypted or sent.
 */
import { resolveTaskLimits, type TaskLimits } from "../../protocol/task.ts";
import { ManifestError } from "./errors.ts";
import type { Manifest } from "./schema.ts";

export function taskLimitsUnder(manifest: Manifest, requested: Partial<TaskLimits> = {}): TaskLimits {
  const limits = resolveTaskLimits(requested, manifest.limits.task.defaults);
  const max = manifest.limits.task.max;
  const over = [
    limits.memoryMb > max.memoryMb && `memoryMb ${limits.memoryMb} > ${max.memoryMb}`,
    limits.cpuTimeMs > max.timeMs && `cpuTimeMs ${limits.cpuTimeMs} > ${max.timeMs}`,
    limits.timeoutMs > max.timeMs && `timeoutMs ${limits.timeoutMs} > ${max.timeMs}`,
    limits.maxOutputBytes > max.outputBytes && `maxOutputBytes ${limits.maxOutputBytes} > ${max.outputBytes}`,
  ].filter((x): x is string => typeof x === "string");
  if (over.length > 0) {
    throw new ManifestError("LIMITS_EXCEEDED", `the task asks for more than the policy manifest allows (${over.join(", ")}; limits.task.max): ask for less, or use a manifest that allows it`, { details: { requested: limits, max } });
  }
  return limits;
}
