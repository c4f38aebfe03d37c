/**
 * The job kinds this enclave runs, by name. Typed: a kind named in
 * src/protocol/job-kinds.ts must have its module here, and the module's
 * params are the ones the gate validated for that kind (jobs/params.ts).
 */
import type { JobKind } from "../../protocol/job-kinds.ts";
import type { RunJobParams } from "../call-gate.ts";
import type { JobModule } from "./job-module.ts";
import { operateJob } from "./operate.ts";
import { collabComputeJob } from "./collab-compute.ts";
import { collabPartnerJob } from "./collab-partner.ts";
import { taskJob } from "./task.ts";
import { pipelineJob } from "./pipeline.ts";

type ParamsOf<K extends JobKind> = Extract<RunJobParams, { kind: K }>["params"];

export const jobModules: { [K in JobKind]: JobModule<K, ParamsOf<K>, unknown> } = {
  task: taskJob as JobModule<"task", ParamsOf<"task">, unknown>,
  pipeline: pipelineJob as JobModule<"pipeline", ParamsOf<"pipeline">, unknown>,
  operate: operateJob as JobModule<"operate", ParamsOf<"operate">, unknown>,
  "collab-partner": collabPartnerJob as JobModule<"collab-partner", ParamsOf<"collab-partner">, unknown>,
  "collab-compute": collabComputeJob as JobModule<"collab-compute", ParamsOf<"collab-compute">, unknown>,
};
