/** The `cloister` command: dispatches to one module per command. */
import { UsageError } from "./errors.ts";
import { attestUsage, devnetUsage, taskUsage, verifyUsage } from "./usage.ts";

const usage = `cloister — confidential computing on attested enclaves, an EVM task market and IPFS

Usage:
  cloister demo                                  run a whole local network and one confidential task, step by step
  cloister task run <program.js> --input <file>  run a program as a confidential task and print its output
  cloister attest verify <evidence> ...          verify SGX/TDX quotes and SEV-SNP reports
  cloister attest policy init [<file>]           write a commented starter attestation policy
  cloister verify <provenance | task-id> ...     check an execution's provenance record
  cloister devnet up [--nodes N] [--dir D]       run a local multi-process network until Ctrl-C
  cloister help                                  this text

${taskUsage}

${attestUsage}

${verifyUsage}

${devnetUsage}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    // Commands load on demand: verifying a quote should not pay for loading the chain and IPFS stacks.
    case "demo":
      return (await import("./commands/demo.ts")).demoCommand(rest);
    case "task":
      return (await import("./commands/task.ts")).taskCommand(rest);
    case "attest":
      return (await import("./commands/attest.ts")).attestCommand(rest);
    case "verify":
      return (await import("./commands/verify.ts")).verifyCommand(rest);
    case "devnet":
      return (await import("./commands/devnet.ts")).devnetCommand(rest);
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`);
      return 0;
    default:
      throw new UsageError(`unknown command '${command}'. Run 'cloister help' for the list of commands.`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError || (error as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    process.stderr.write(`cloister: ${(error as Error).message}\n`);
    process.exitCode = 2;
  } else {
    const e = error as Error & { code?: string };
    process.stderr.write(`cloister: ${e.code ? `[${e.code}] ` : ""}${e.message}\n`);
    if (process.env.CLOISTER_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}
