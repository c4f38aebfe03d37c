/**
 * The `cloister` command: help, dispatch to one module per command, and the one mapping from errors to
 * exit codes. An error goes to stderr only, --json or not: stdout holds results, and an error object
 * there could be read as a result (attest verify's {"ok": false} means "not authentic"). With --json the
 * error's last stderr line is also one JSON object, {"error": {code, message, details?}}.
 */
import { parseArgs } from "node:util";
import { describeFailure, UsageError } from "./errors.ts";
import { printJson, printJsonError } from "./output.ts";
import { commandOf } from "./usage.ts";

const usage = `cloister — confidential computing on attested enclaves, an EVM task market and IPFS

Usage:
  cloister demo [clean-room]                     run a whole local network and one confidential task (or a clean room: two
                                                 partners join their data in enclaves, only aggregates come out), step by step
  cloister demo grants                           owner grants over a local file: refused, allowed once, used up
  cloister demo vault                            store a secret in enclave clusters, lose two enclaves, retrieve, transfer
  cloister task run <program.js> --input <file>  run a program as a confidential task and print its output
  cloister pipeline run <pipeline.json>          run an ETL pipeline in an enclave, anchor and verify the run
  cloister collab run <collaboration.json>       run a clean-room collaboration: partners' data joined in enclaves, only aggregates out
  cloister attest verify <evidence> ...          verify SGX/TDX quotes and SEV-SNP reports
  cloister attest policy init [<file>]           write a commented starter policy manifest
  cloister attest policy schema                  print the policy manifest's JSON Schema
  cloister policy show [--network <dir>]         print the policy manifest a command trusts, and its digest
  cloister verify <provenance | task-id> ...     check an execution's provenance record
  cloister grant create|revoke|list|uses ...     a data owner's grants: one operator, one statement, limited uses
  cloister operate <grant-id> --statement <f>    the operator's side: run a granted statement in its enclave
  cloister devnet up [--nodes N] [--dir D]       run a local multi-process network until Ctrl-C (--clusters C: vault clusters)
  cloister vault store <file> [--threshold 3]    store a secret k-of-n in enclave clusters (needs devnet up --clusters)
  cloister vault status <token>                  which clusters and slots hold a token's shares
  cloister vault get <token> [--out <file>]      as the token's owner: rebuild the secret from k shares
  cloister vault transfer <token> <address>      transfer the token (and with it the right to the secret)
  cloister vault burn <token>                    burn the token; the enclaves drop its shares
  cloister vault reshare [<token>] --cluster C   re-share a token (or all) of a cluster: same secret, new shares
  cloister devnet accounts                       list the devnet's ten funded test accounts
  cloister dashboard --network <dir>             serve the read-only web dashboard of a network
  cloister help [<command>]                      this text, or a command's usage

Every command takes --help (or -h) and --json (one JSON object as the last line on stdout; on failure,
{"error": {code, message, details}} as the last line on stderr).
A running network is named by --network <devnet dir> (or CLOISTER_NETWORK); a devnet's test account by
--account <i>, any other key by CLOISTER_PRIVATE_KEY.
Progress goes to stderr when it is a terminal; CLOISTER_PROGRESS=1 shows it in a pipe too, CLOISTER_DEBUG=1
adds stack traces to errors.
Exit status: 0 done, 1 refused or failed, 2 bad usage or unreadable input.`;

/** Arguments before a `--` terminator: only they can be options. */
function optionArgs(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf("--");
  return end === -1 ? argv : argv.slice(0, end);
}

async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h") {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (command === "help") return helpCommand(rest);
  const options = optionArgs(argv);
  if (options.includes("--help") || options.includes("-h")) {
    const found = commandOf(argv);
    if (!found) throw new UsageError(`unknown command '${command}'. Run 'cloister help' for the list of commands.`);
    process.stdout.write(`${found.usage}\n`);
    return 0;
  }
  switch (command) {
    // Commands load on demand: verifying a quote should not pay for loading the chain and IPFS stacks.
    case "demo":
      return (await import("./commands/demo.ts")).demoCommand(rest);
    case "task":
      return (await import("./commands/task.ts")).taskCommand(rest);
    case "attest":
      return (await import("./commands/attest.ts")).attestCommand(rest);
    case "pipeline":
      return (await import("./commands/pipeline.ts")).pipelineCommand(rest);
    case "collab":
      return (await import("./commands/collab.ts")).collabCommand(rest);
    case "verify":
      return (await import("./commands/verify.ts")).verifyCommand(rest);
    case "devnet":
      return (await import("./commands/devnet.ts")).devnetCommand(rest);
    case "policy":
      return (await import("./commands/policy.ts")).policyCommand(rest);
    case "grant":
      return (await import("./commands/grant.ts")).grantCommand(rest);
    case "operate":
      return (await import("./commands/operate.ts")).operateCommand(rest);
    case "vault":
      return (await import("./commands/vault.ts")).vaultCommand(rest);
    case "dashboard":
      return (await import("./commands/dashboard.ts")).dashboardCommand(rest);
    default:
      throw new UsageError(`unknown command '${command}'. Run 'cloister help' for the list of commands.`);
  }
}

/** `cloister help [<command> [<subcommand>]] [--json]`; `cloister help --help` is help's own usage. */
function helpCommand(argv: string[]): number {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: "boolean", default: false }, help: { type: "boolean", short: "h", default: false } } });
  const words = values.help ? ["help"] : positionals;
  const found = commandOf(words);
  if (words.length > 0 && found?.words !== words.join(" ")) throw new UsageError(`no command 'cloister ${words.join(" ")}'; run 'cloister help' for the list of commands`);
  const text = found?.usage ?? usage;
  if (values.json) printJson({ command: found?.words ?? null, usage: text });
  else process.stdout.write(`${text}\n`);
  return 0;
}

const argv = process.argv.slice(2);
try {
  process.exitCode = await run(argv);
} catch (error) {
  const failure = describeFailure(error, commandOf(argv)?.words);
  process.stderr.write(`cloister: ${failure.exitCode === 1 && failure.code !== "UNEXPECTED" ? `[${failure.code}] ` : ""}${failure.message}\n`);
  if (process.env.CLOISTER_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  const options = argv.includes("--") ? argv.slice(0, argv.indexOf("--")) : argv;
  if (options.includes("--json")) printJsonError({ code: failure.code, message: failure.message, ...(failure.details ? { details: failure.details } : {}) });
  process.exitCode = failure.exitCode;
}
