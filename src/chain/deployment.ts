/**
 * The one shape of a Cloister deployment: what a client of a network needs to
 * find its contracts. Its JSON form (deployBlock as a decimal string) is what
 * deployment files and the attestation service's GET /deployment carry.
 */
import type { Address } from "viem";
import { z } from "zod";
import { addressSchema } from "../protocol/schemas.ts";
import { CloisterError, type CloisterErrorOptions } from "../util/base-error.ts";

export interface Deployment {
  chainId: number;
  registry: Address;
  market: Address;
  /** SecretVault (issue 15); absent in deployment files written before it was deployed. */
  vault?: Address;
  /** Block of the market's deployment: where event crawlers start. */
  deployBlock: bigint;
  /** Pipelines (issue 14), where the network has one. */
  pipelines?: Address;
  /** Owner grants (contracts/Grants.sol); absent in deployments made before it was deployed with the rest. */
  grants?: Address;
  /** Collaborations (clean rooms, issue 13); absent in deployments made before it was part of deployCloister. */
  collaborations?: Address;
}

export const deploymentJsonSchema = z
  .object({
    chainId: z.number().int().positive(),
    registry: addressSchema,
    market: addressSchema,
    vault: addressSchema.optional(),
    deployBlock: z.string().regex(/^\d+$/, "must be a decimal block number"),
    pipelines: addressSchema.optional(),
    grants: addressSchema.optional(),
    collaborations: addressSchema.optional(),
  })
  .strict();

export type DeploymentJson = z.infer<typeof deploymentJsonSchema>;

/** A deployment document that is not one: names where it came from and the field. */
export class DeploymentFormatError extends CloisterError<"DEPLOYMENT_INVALID"> {
  constructor(message: string, options?: CloisterErrorOptions) {
    super("DEPLOYMENT_INVALID", message, options);
  }
}

export function deploymentToJson(d: Deployment): DeploymentJson {
  return {
    chainId: d.chainId, registry: d.registry, market: d.market, deployBlock: d.deployBlock.toString(),
    ...(d.pipelines ? { pipelines: d.pipelines } : {}),
    ...(d.grants ? { grants: d.grants } : {}),
    ...(d.collaborations ? { collaborations: d.collaborations } : {}),
    ...(d.vault ? { vault: d.vault } : {}),
  };
}

/** Parses the JSON form; `source` names the file or URL in the error. Addresses come back as written. */
export function deploymentFromJson(json: unknown, source: string): Deployment {
  const parsed = deploymentJsonSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DeploymentFormatError(`${source}: ${issue.path.join(".") || "(top level)"} ${issue.message}; a deployment holds chainId, registry, market, deployBlock and optionally vault`);
  }
  const d = parsed.data;
  return {
    chainId: d.chainId, registry: d.registry, market: d.market, deployBlock: BigInt(d.deployBlock),
    ...(d.pipelines ? { pipelines: d.pipelines } : {}),
    ...(d.grants ? { grants: d.grants } : {}),
    ...(d.collaborations ? { collaborations: d.collaborations } : {}),
    ...(d.vault ? { vault: d.vault } : {}),
  };
}
