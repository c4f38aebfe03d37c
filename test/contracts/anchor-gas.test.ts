/**
 * The JobAnchor (src/protocol/anchor.ts) checked by Solidity as a contract of
 * a future job kind would check it (OpenZeppelin EIP712 + ECDSA): the digest
 * the enclave signs off chain is the one the contract computes, and the gas
 * of checking it against checking TaskMarket's Completion, the task kind's
 * anchor, in a probe contract that does nothing else (docs/protocol.md,
 * "Anchors").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import solc from "solc";
import { encodeFunctionData, hashTypedData, sha256, type Abi, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createWriterClient } from "../../src/chain/clients.ts";
import { startLocalChain } from "../../src/chain/local-chain.ts";
import { anchorDigest, anchorDomain, digestSet, type JobAnchor } from "../../src/protocol/anchor.ts";
import { completionTypes } from "../../src/protocol/completion.ts";

const PROBE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract AnchorProbe is EIP712 {
    bytes32 public constant JOB_ANCHOR_TYPEHASH = keccak256(
        "JobAnchor(string kind,uint256 jobId,bytes32 approvedDigest,bytes32 inputDigest,bytes32 outputDigest,bytes32 provenanceDigest)"
    );
    bytes32 public constant COMPLETION_TYPEHASH = keccak256(
        "Completion(uint256 taskId,bytes32 programDigest,bytes32 inputDigest,bytes32 outputDigest,bytes32 provenanceDigest,string outputCid,string provenanceCid)"
    );
    struct Anchor { string kind; uint256 jobId; bytes32 approvedDigest; bytes32 inputDigest; bytes32 outputDigest; bytes32 provenanceDigest; }
    event Checked(address signer);

    constructor() EIP712("Cloister AnchorProbe", "1") {}

    function anchorDigest(Anchor calldata a) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(
            JOB_ANCHOR_TYPEHASH, keccak256(bytes(a.kind)), a.jobId, a.approvedDigest, a.inputDigest, a.outputDigest, a.provenanceDigest
        )));
    }

    function checkAnchor(Anchor calldata a, bytes calldata signature) external {
        emit Checked(ECDSA.recover(anchorDigest(a), signature));
    }

    /// The anchor with the CIDs in calldata, as TaskMarket would still carry them to emit in TaskCompleted.
    function checkAnchorBesideCids(Anchor calldata a, string calldata, string calldata, bytes calldata signature) external {
        emit Checked(ECDSA.recover(anchorDigest(a), signature));
    }

    function checkCompletion(uint256 taskId, bytes32 program, bytes32 input, bytes32 output, bytes32 provenance, string calldata outputCid, string calldata provenanceCid, bytes calldata signature) external {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(
            COMPLETION_TYPEHASH, taskId, program, input, output, provenance, keccak256(bytes(outputCid)), keccak256(bytes(provenanceCid))
        )));
        emit Checked(ECDSA.recover(digest, signature));
    }
}
`;

const require = createRequire(import.meta.url);

function compileProbe(): { abi: Abi; bytecode: Hex } {
  const input = {
    language: "Solidity",
    sources: { "AnchorProbe.sol": { content: PROBE } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
  };
  const findImport = (path: string) => {
    try {
      return { contents: readFileSync(require.resolve(path), "utf8") };
    } catch {
      return { error: `import not found: ${path}` };
    }
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImport })) as {
    errors?: { severity: string; formattedMessage: string }[];
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (out.errors ?? []).filter((e) => e.severity === "error");
  assert.equal(errors.length, 0, errors.map((e) => e.formattedMessage).join("\n"));
  const probe = out.contracts["AnchorProbe.sol"]!["AnchorProbe"]!;
  return { abi: probe.abi, bytecode: `0x${probe.evm.bytecode.object}` };
}

test("a contract computes the JobAnchor digest the enclave signs, and recovers the enclave; gas against the Completion", async (t) => {
  const { abi, bytecode } = compileProbe();
  const chain = await startLocalChain();
  try {
    const client = createWriterClient({ endpoint: { provider: chain.provider }, chain: chain.chain, account: chain.accounts.deployer });
    const deployed = await client.waitForTransactionReceipt({ hash: await client.deployContract({ abi, bytecode }) });
    const address = deployed.contractAddress!;
    const enclave = privateKeyToAccount(generatePrivateKey());
    const d = (n: number) => sha256(new Uint8Array([n]));

    const anchor: JobAnchor = {
      kind: "task",
      jobId: 12345n,
      approvedDigest: d(1),
      inputDigest: digestSet([{ name: "input", digest: d(2) }]),
      outputDigest: digestSet([{ name: "result", digest: d(3) }]),
      provenanceDigest: d(4),
    };
    const domain = anchorDomain("Cloister AnchorProbe", BigInt(chain.chain.id), address);
    const args = [anchor] as const;
    assert.equal(await client.readContract({ address, abi, functionName: "anchorDigest", args }), anchorDigest(domain, anchor), "the same digest on and off chain");

    const anchorSignature = await enclave.sign({ hash: anchorDigest(domain, anchor) });
    const anchorGas = await client.estimateGas({ to: address, data: encode(abi, "checkAnchor", [...args, anchorSignature]) });
    const anchorTx = await client.waitForTransactionReceipt({ hash: await client.writeContract({ address, abi, functionName: "checkAnchor", args: [...args, anchorSignature] }) });
    assert.equal(`0x${anchorTx.logs[0]!.data.slice(26)}`.toLowerCase(), enclave.address.toLowerCase(), "the contract recovers the enclave");

    const completion = {
      taskId: anchor.jobId,
      programDigest: d(5),
      inputDigest: d(2),
      outputDigest: d(3),
      provenanceDigest: d(4),
      outputCid: "bafkreibi7wwob5ifivsztx2aq57r3ve4gifacxlixus3ddnxs3nq7wnxha",
      provenanceCid: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    };
    const completionSignature = await enclave.sign({ hash: hashTypedData({ domain, types: completionTypes, primaryType: "Completion", message: completion }) });
    const completionArgs = [completion.taskId, completion.programDigest, completion.inputDigest, completion.outputDigest, completion.provenanceDigest, completion.outputCid, completion.provenanceCid, completionSignature] as const;
    const completionGas = await client.estimateGas({ to: address, data: encode(abi, "checkCompletion", completionArgs) });

    const besideCidsGas = await client.estimateGas({
      to: address,
      data: encode(abi, "checkAnchorBesideCids", [...args, completion.outputCid, completion.provenanceCid, anchorSignature]),
    });

    t.diagnostic(`gas to check: a JobAnchor ${anchorGas}; the same with a task's two CIDs in calldata ${besideCidsGas}; a Completion (signs the CIDs) ${completionGas}`);
    assert.ok(anchorGas > 21_000n && completionGas > 21_000n);
    // For a task the CIDs are in calldata either way (TaskCompleted emits them): the Completion costs no more than the anchor beside them.
    assert.ok(completionGas <= besideCidsGas + 200n, `${completionGas} vs ${besideCidsGas}`);
  } finally {
    await chain.close();
  }
});

function encode(abi: Abi, functionName: string, args: readonly unknown[]): Hex {
  return encodeFunctionData({ abi, functionName, args } as Parameters<typeof encodeFunctionData>[0]);
}
