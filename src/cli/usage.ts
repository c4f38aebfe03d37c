/** Usage texts, kept apart from the commands so `cloister help` loads nothing heavy. */
export const attestUsage = `Usage:
  cloister attest verify <quote-file> [--collateral <json> | --pccs <url>] [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest verify <report-file> --vcek <der> --chain <pem> [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest verify <evidence.json> [--now <unix-seconds>] [--policy <json>] [--json]
  cloister attest verify <certificate.pem|.der> [--collateral <json> | --pccs <url>] [--policy <json>] [--json]
  cloister attest policy init [<file>] [--force]   write a commented starter policy manifest (default: cloister-manifest.jsonc)
  cloister attest policy schema                    print the policy manifest's JSON Schema

Options of attest verify:
  --collateral <json>     Intel collateral file (tcb_info, qe_identity, CRLs and chains)
  --pccs <url>            fetch collateral from a PCCS or Intel PCS v4 (cached in --cache-dir, default ~/.cache/cloister/collateral)
  --vcek <der> --chain <pem>  AMD VCEK certificate and the ASK/ARK chain of an SEV-SNP report
  --now <unix-seconds>    evaluation time (default: now)
  --policy <json>         policy manifest (see 'attest policy init'; an old policy file is converted)
  --role <name>           the manifest role whose code to accept (default task)
  --report-data <hex>     the 64-byte report_data the evidence must carry (your nonce binding)
  --measurement <hex>     accept this MRENCLAVE / MRTD / SNP measurement (repeatable; added to the policy's)
  --mrsigner <hex>        accept SGX enclaves of this MRSIGNER (repeatable; added to the policy's)
  --any-code              accept ANY code (no measurement or signer checked): only to inspect evidence
  --json                  print one JSON object instead of text

An attested TLS certificate (interoperable RA-TLS: Cloister's, Gramine's, RATS-TLS's, the Intel SGX SDK's) is
verified from its evidence extension; keyBinding says whether that evidence binds the certificate's key. Without
--collateral / --pccs the collateral the certificate carries (if any) is used.

Exit status: 0 authentic and accepted by the policy (and, for a certificate, its key bound), 1 not, 2 unusable
arguments or unreadable files.
Without --policy the strict production manifest applies (Intel root only, Cloister's released enclave measurements
only (releases/enclave-measurements.json; none yet), UpToDate only, no debug, no simulation). Evidence of code that
no policy pins is authentic at best, never accepted: pin it with --measurement / --mrsigner or a manifest.`;

export const policyUsage = `Usage:
  cloister policy show [--network <dir> | --policy <file> | --sim-pki <dir>] [--json]

  Prints the policy manifest a command would trust (docs/attestation.md, "Policy manifest"): --policy's file
  (a manifest, or an old policy file converted), else a devnet's simulated root (--sim-pki <dir>/sim-tee),
  else the network file's (--network or CLOISTER_NETWORK), else the strict production manifest; and its
  digest, which jobs bind to. With --json stdout is the normalized manifest itself and the digest goes to
  stderr: 'cloister policy show --policy old-policy.json --json > manifest.json' converts an old policy file.`;

export const networkOptionsUsage = `Against a running network:
  --network <dir | file>     a devnet's directory (cloister devnet up --dir <dir>) or its network.json; or set
                             CLOISTER_NETWORK. It names the chain, IPFS node, contracts and the policy to trust
                             the devnet's simulated enclaves (docs/architecture.md, "Network file")
  --account <i>              sign as the devnet's funded test account i (0 to 9, 'cloister devnet accounts');
                             on any other network set CLOISTER_PRIVATE_KEY=0x<64 hex digits> instead
  Any other Ethereum JSON-RPC endpoint and Kubo node (these also override a network file's values):
  --rpc <url> --ipfs <url>   the chain's JSON-RPC URL and the IPFS node's Kubo RPC API URL
  --ws <url>                 the chain's JSON-RPC over WebSocket: every chain request goes over it, and the
                             result is picked up on the new block (eth_subscribe "newHeads") instead of by polling
  --cas <url> | --deployment <file>
                             where the contract addresses come from: an attestation service (GET /deployment)
                             or a deployment file
  --sim-pki <dir> | --policy <file>
                             the policy manifest enclaves are verified against (its "task" role): a devnet's
                             simulated root (<dir>/sim-tee) with this checkout's enclave measurement, or a
                             manifest file (an old policy file is converted); default the network file's
                             manifest, else the strict production manifest ('cloister policy show')`;

export const taskUsage = `Usage:
  cloister task run <program.js> --input <file> [--data-dir <dir>] [--timeout-ms <ms>] [--json] [--quiet]
  cloister task run <program.js> --input <file> --network <dir> --account <i> [--timeout-ms <ms>] [--json] [--quiet]

  Runs <program.js> (an ES module whose default export takes the input bytes and returns bytes or a string)
  as a confidential task and prints the decrypted output. Without --network (and CLOISTER_NETWORK) it runs on
  an embedded network (in-process chain, embedded IPFS, one node on the SIMULATED TEE); with --data-dir that
  network's state lives and persists there.

${networkOptionsUsage}

  e.g. cloister devnet up &        # prints 'ready' once it serves
       cloister task run examples/echo.js --input in.txt --network .cloister/devnet --account 0`;

export const verifyUsage = `Usage:
  cloister verify <provenance.json> [--evidence <file>] [--output <file>] [--operator <address>] [--network <dir> | --policy <file> | --sim-pki <dir>] [--json]
  cloister verify <task-id> --data-dir <dir> [--policy <file>] [--json]
  cloister verify <collaboration-id>:<run> [--data-dir <dir> | --network <dir>] [--json]   a clean-room run (docs/cleanroom.md)

  Checks an execution's provenance record: the DSSE signature by the enclave it names, that enclave's
  attestation under the policy (default: the strict production policy; with --sim-pki or a --data-dir,
  that network's simulated root and this checkout's enclave measurement; with --network or CLOISTER_NETWORK,
  that network's policy; its report_data must commit to the enclave's keys and its operator: --operator, or
  with --data-dir the operator that completed the task), the output digest, and with --data-dir the on-chain
  anchor (the task's completion names the same enclave and digests).
  Exit status: 0 verified, 1 not, 2 unusable arguments.`;

export const vaultUsage = `Usage:
  cloister vault store <file> [--threshold 3 --shares 5] [--json]   split, mint a token, store in a cluster; prints the token id and the synced clusters
  cloister vault status <token> [--json]                           per cluster: synced or not, and each slot's confirmation
  cloister vault get <token> [--out <file>]                        as the owner: the secret goes to stdout or the file, nowhere else
  cloister vault transfer <token> <address> [--json]
  cloister vault burn <token> [--json]
  cloister vault reshare <token> --cluster <id> [--json]          the cluster's host re-shares the token: same secret, new shares (version + 1)
  cloister vault reshare --cluster <id> [--json]                  every token the cluster holds and has synced (progress on stderr)

  Every vault command takes --network <devnet dir> (or CLOISTER_NETWORK): a devnet started with
  'cloister devnet up --clusters C'. Signing: --account <i> (a devnet test account) or CLOISTER_PRIVATE_KEY.
  With --json, store ends with {"token":…,"clusters":[…]} and status with {"token":…,"clusters":[{"id":…,"synced":…,"slots":[…]}]};
  reshare with {"token":…,"cluster":…,"version":…,"newRoot":…,"transactionHash":…}, or for a whole cluster
  {"cluster":…,"reshared":[…],"skipped":[{"token":…,"code":…,"message":…}]}. After a member is replaced the
  devnet's hosts re-share the cluster's tokens on their own; this is for a refresh now.
  docs/vault.md describes the protocol.`;

export const dashboardUsage = `Usage:
  cloister dashboard --network <devnet dir | network.json> [--port <port>]
  cloister dashboard --rpc <url> [--ws <url>] --ipfs <url> --deployment <file> [--policy <manifest> | --sim-pki <dir>] [--node <url>]... [--port <port>]

  Serves the read-only web dashboard of any Cloister network on http://127.0.0.1:<port>/ (default 8560;
  0 picks a free port) until Ctrl-C: the network, its enclaves (SIMULATED ones marked), tasks, clean-room
  runs, pipeline runs and grant uses with their provenance, the vault, and node health. The page reads the chain
  (viem, live over --ws when given) and IPFS from the browser: the network must allow the dashboard's
  origin (a devnet: 'cloister devnet up --allow-origin http://127.0.0.1:<port>'). This process verifies
  enclave evidence and provenance records against the policy manifest (--policy, --sim-pki, the network
  file's, else the strict production manifest) and relays the health and metrics of each --node <url>.
  --deployment takes a deployment.json or a network.json; one that is unusable is shown as the page's
  error. It holds no key and sends no transaction. The web bundle is built on first use when missing
  ('npm run build:web' builds it ahead).`;

export const devnetUsage = `Usage:
  cloister devnet up [--nodes <n>] [--clusters <c>] [--dir <dir>] [--port <port>] [--allow-origin <origin>]... [--no-dashboard] [--json] [--quiet] [limits]
  cloister devnet accounts [--json] [--show-private-keys]

devnet up:
  Runs a local network as separate processes: the chain (JSON-RPC over HTTP and WebSocket on 127.0.0.1:<port>), one IPFS node
  (Kubo RPC API on <port>+1), the attestation service (HTTP on <port>+2, GET /deployment gives the
  contract addresses) and <n> node daemons (default 2), each with its enclave process on the SIMULATED TEE
  and GET /healthz and /metrics on <port>+3+i, and the dashboard (a read-only web console) on <port>+3+<n>.
  The chain RPC and IPFS API refuse browser requests (an Origin header) except from the dashboard's origin
  and each --allow-origin <origin> (repeatable, e.g. --allow-origin http://localhost:5173); a page from an
  allowed origin reads and may send transactions its own wallet signed, never the node's unlocked accounts.
  --no-dashboard serves no dashboard.
  Once every node's enclave is registered and every endpoint answers, it writes <dir>/network.json (what
  --network reads) and prints its endpoints and a last line that starts with 'ready' (with --json, one JSON
  object with "ready": true); then it keeps running. Ctrl-C (or SIGTERM) stops every process and removes
  network.json. State lives in <dir> (default .cloister/devnet) and a second 'devnet up --dir <dir>' resumes
  the same chain, IPFS blocks, contracts and enclave identities. Default port 8545; 0 picks free ports.
  Progress goes to stderr when it is a terminal (CLOISTER_PROGRESS=1 shows it in a pipe too).
  Everything binds to 127.0.0.1.
  --clusters <c> also runs c vault clusters of 5 vault enclave processes (supervised by the devnet process),
  prints them, and serves their gateway on <port>+3+<n> ('cloister vault ...' uses it through network.json).

  Limits (raise them only for clients you trust; docs/threat-model.md, Public endpoints):
  --rpc-max-batch <n>                       requests in one JSON-RPC batch (default 1000)
  --rpc-max-response-bytes <n>              one reply, or a batch's replies together (default 33554432, 32 MiB)
  --ipfs-max-upload-bytes <n>               one add request's body (default 268435456, 256 MiB)
  --ipfs-max-uploads-in-flight-bytes <n>    the bodies of all add requests at once (default 536870912, 512 MiB)

devnet accounts:
  Lists the ten user accounts every devnet funds with native currency and its test token: indexes 0 to 9
  of the standard test mnemonic ("test test ... junk", m/44'/60'/0'/0/i), the same on every devnet.
  Use one with --account <i>. --show-private-keys prints their keys too: they are public test keys that
  anyone can use, so never send anything of value to these addresses on a real network.`;

export const grantUsage = `Usage:
  cloister grant create --dataset <name> --ops update,delete --statement <file> --purpose <text>
                        --expires <ISO time | duration> --uses N --operator <address>
                        [--not-before <ISO time | duration>] [--datasets <file>] [--out <file>]
  cloister grant revoke <grant-id> [--datasets <file>]
  cloister grant list [--owner <address>] [--operator <address>]
  cloister grant uses <grant-id>
  (each with --network <devnet dir> --account <i>, or CLOISTER_PRIVATE_KEY; and --json)

  An owner grant lets one operator run one exact statement (its digest) of the granted operations (read,
  insert, update, delete) on one dataset, from --not-before (default: now) until --expires (30m, 12h, 7d or
  an ISO time), at most N times (docs/pipelines.md, "Owner grants"). create signs it (EIP-712), seals the
  dataset's connection to each enclave of the operator your policy manifest accepts, records it on chain
  and writes the grant document (--out, default grant-<id>.json; also put on IPFS) to give to the operator.
  The dataset <name> is looked up in your datasets file (--datasets, else CLOISTER_DATASETS, else
  ./cloister-datasets.json): {"<name>": {"table": "accounts", "connection": {"type": "postgres", "url":
  "postgres://user:password@host/db"}}} (types postgres, mysql, duckdb with "path"). Its credentials leave
  your machine only sealed to enclaves. revoke ends a grant at once (on chain, and in the dataset itself
  when your datasets file names it, so that even a node proving the grant at an older block is refused); list shows grants by owner (default:
  you) or operator; uses lists every recorded use: run id, enclave, provenance digest, transaction.`;

export const operateUsage = `Usage:
  cloister operate register [--enclave-dir <dir>]
  cloister operate <grant-id> --statement <file> --grant <file | CID> [--enclave-dir <dir>]
  (each with --network <devnet dir> --account <i>, or CLOISTER_PRIVATE_KEY; and --json)

  The operator's side of an owner grant. register starts this operator's enclave (sealed state in
  --enclave-dir, default <devnet dir>/operators/<address>/enclave), has the network's attestation service
  register it for your account, and prints it: owners seal datasets to it. operate sends it the statement
  and the owner's grant document; the enclave checks the statement against the owner's signed terms and
  the grant's state on chain (revocation, window, uses, your operator), refuses with a code naming the
  violated limit (GRANT_NOT_FOUND, GRANT_EXPIRED, GRANT_USED_UP, GRANT_STATEMENT_NOT_GRANTED, ...), or runs
  it once and the use is recorded on chain with its provenance. A granted read (SELECT) prints the rows,
  sealed by the enclave to a key made for the run. Simulated TEE only for now.`;

export const demoGrantsUsage = `Usage:
  cloister demo grants [--data-dir <dir>] [--json]

  Owner grants on an embedded network over a DuckDB file (no server): an operator's manipulation refused
  without a grant, allowed once under the owner's grant (the use recorded on chain with its provenance),
  refused when the grant is used up; then the owner lists the grant's uses. Every check is printed.`;
export const collabUsage = `Usage:
  cloister collab run <collaboration.json> [--data-dir <dir>] [--json] [--quiet]
  cloister collab create <collaboration.json> --network <dir> --account <i> [--json]
  cloister collab approve <id> [--party <name> --file <collaboration.json> | --party <index>] [--node <enclave> [--key <file>]] --network <dir> --account <i> [--json]
  cloister collab run <id> [--key <recipient-key>] [--timeout <s>] --network <dir> --account <i> [--json] [--quiet]
  cloister collab withdraw <id> --network <dir> --account <i> [--json]
  cloister collab status <id> --network <dir> [--json]
  cloister collab runs <id> --network <dir> [--json]

  A clean room (docs/cleanroom.md): partners compute on each other's data in enclaves without seeing a row.
  collab run <file> does it all on an embedded network: one node with its own enclave process per party
  (SIMULATED TEE), the collaboration created on chain, approved by every party, run once; each partner's
  enclave reads its own data and seals it to the attested compute enclave, which runs the approved SQL in
  DuckDB under the output policy and seals the result to the recipient party, whose node stores it. Prints
  the delivered rows; with --json the last stdout line is
  {"collaboration":…,"run":…,"columns":[…],"rows":[[…]],"suppressed":N,"provenance":"<cid>","verified":true}.
  Exit status: 0 delivered and verified, 1 refused (the typed error, e.g. ROW_LEVEL_OUTPUT), 2 a bad file
  or an unreachable source (what to fix).
  Against a running network, create takes the file with each party's "account"; approve signs as --account
  (the party's own account) and relays the approval; with --node (and --file, --party <name>) it also seals
  the party's datasets to that node's enclave (its signer address, as 'cloister node' prints it) and names
  the node on chain; the recipient party's approve reads its key (--key, default <file>.<party>.recipient-key).
  run <id> (a party's account) requests the next run; every party's node runs its side; it waits for the run
  on chain (--timeout, 300 s), verifies it as 'cloister verify' does and, with the recipient's key (--key),
  prints the rows (same --json line; without the key no "columns"/"rows"). withdraw withdraws the signing
  party's approval: no run is requested or recorded until it approves again. status and runs read the chain.`;

/** The commands and subcommands, each with its usage text; `cloister <words> --help` prints it. */
export const pipelineUsage = `Usage:
  cloister pipeline run <pipeline.json> [--data-dir <dir>] [--json] [--quiet]

  Runs a pipeline file (source → transform → destination, docs/pipelines.md) once inside an enclave on an
  embedded network, anchors the run on chain and verifies its provenance. Run it again with the same
  --data-dir for the next, incremental run (only rows past the last anchored cursor are read).
  --json prints {"pipeline","run","read","written","cursor","provenance","verified"} as the last line.
  Exit 2: a bad pipeline file, or a source or destination to fix (unreachable, unknown table, bad SQL).

  cloister pipeline create <pipeline.json> --network <dir> --account <i> [--json]
  cloister pipeline run <id> --network <dir> --account <i> [--timeout-ms <ms>] [--json]
  cloister pipeline runs <id> --network <dir> [--json]
  cloister pipeline status <id> --network <dir> [--json]

  On a running network the owner creates the pipeline (its credentials sealed to the enclaves it verifies
  under its policy, its digest registered on chain); the candidate nodes run it when its schedule says
  (cron, or "@every 30s"), each slot by the node whose turn it is, or by the next one after a deadline.
  'pipeline run <id>' (the owner's --account) requests a run now, schedule or not: the candidate whose
  turn it is runs it at once, the next one after the deadline; it waits for the run anchored after the
  request (--timeout-ms, default 10 minutes), verifies it and prints what 'pipeline run <file>' prints.
  Not the owner or a retired pipeline: exit 2; no run anchored in time: exit 1 (PIPELINE_RUN_TIMEOUT).
  'cloister verify <run-id>' checks any run.

${networkOptionsUsage}

  e.g. cloister pipeline run examples/pipeline/orders.json --data-dir .cloister/pipeline`;

export const commandUsages: readonly { words: string; usage: string }[] = [
  { words: "demo", usage: `Usage:
  cloister demo [--data-dir <dir>] [--json]
  cloister demo vault [--json]     the secret vault: store, sync to a second cluster, two enclaves stopped,
                                   retrieval still works, a non-owner refused, transfer, old owner refused

  Runs a whole local network (embedded, SIMULATED TEE) and one confidential task through it, every step
  told on stderr. With --json the result is one JSON object on stdout (and the steps only on a terminal).` },
  { words: "demo vault", usage: `Usage:
  cloister demo [--data-dir <dir>] [--json]
  cloister demo vault [--json]     the secret vault: store, sync to a second cluster, two enclaves stopped,
                                   retrieval still works, a non-owner refused, transfer, old owner refused

  Runs a whole local network (embedded, SIMULATED TEE) and one confidential task through it, every step
  told on stderr. With --json the result is one JSON object on stdout (and the steps only on a terminal).

  cloister demo pipeline [--data-dir <dir>] [--json]

  A pipeline over files (no server needed) on two nodes: a first run, an incremental second run, a replayed
  cursor that writes nothing and is refused on chain, the other candidate running the next run; every check.` },
  { words: "pipeline", usage: pipelineUsage },
  { words: "pipeline run", usage: pipelineUsage },
  { words: "demo grants", usage: demoGrantsUsage },
  { words: "demo clean-room", usage: `Usage:
  cloister demo clean-room [--data-dir <dir>] [--json]

  Two partners (a retailer's csv, a bank's parquet file), each with its own node and enclave process, join
  their data in a clean room without seeing each other's rows; one group is suppressed by the output policy;
  the result is delivered to the retailer and every check is shown. Needs no database server.` },
  { words: "collab", usage: collabUsage },
  { words: "collab run", usage: collabUsage },
  { words: "collab create", usage: collabUsage },
  { words: "collab approve", usage: collabUsage },
  { words: "collab status", usage: collabUsage },
  { words: "collab withdraw", usage: collabUsage },
  { words: "collab runs", usage: collabUsage },
  { words: "task", usage: taskUsage },
  { words: "task run", usage: taskUsage },
  { words: "grant", usage: grantUsage },
  { words: "grant create", usage: grantUsage },
  { words: "grant revoke", usage: grantUsage },
  { words: "grant list", usage: grantUsage },
  { words: "grant uses", usage: grantUsage },
  { words: "operate", usage: operateUsage },
  { words: "attest", usage: attestUsage },
  { words: "attest verify", usage: attestUsage },
  { words: "attest policy", usage: attestUsage },
  { words: "attest policy init", usage: attestUsage },
  { words: "attest policy schema", usage: attestUsage },
  { words: "policy", usage: policyUsage },
  { words: "policy show", usage: policyUsage },
  { words: "verify", usage: verifyUsage },
  { words: "vault", usage: vaultUsage },
  { words: "vault store", usage: vaultUsage },
  { words: "vault status", usage: vaultUsage },
  { words: "vault get", usage: vaultUsage },
  { words: "vault transfer", usage: vaultUsage },
  { words: "vault burn", usage: vaultUsage },
  { words: "vault reshare", usage: vaultUsage },
  { words: "devnet", usage: devnetUsage },
  { words: "devnet up", usage: devnetUsage },
  { words: "devnet accounts", usage: devnetUsage },
  { words: "dashboard", usage: dashboardUsage },
  { words: "help", usage: `Usage:
  cloister help [<command> [<subcommand>]] [--json]
  cloister <command> [<subcommand>] --help | -h

  Prints the usage of a command (or the list of commands).` },
];

/** The usage of the longest command prefix of `argv` (e.g. ["task", "run", "x.js"] → "task run"). */
export function commandOf(argv: readonly string[]): { words: string; usage: string } | undefined {
  let found: { words: string; usage: string } | undefined;
  for (let n = 1; n <= argv.length; n++) {
    const match = commandUsages.find((c) => c.words === argv.slice(0, n).join(" "));
    if (!match) break;
    found = match;
  }
  return found;
}
