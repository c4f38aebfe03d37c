// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Cloister pipelines: an owner's data pipeline, the enclaves that may run it, and one anchor per run.
/// @notice registerPipeline (the owner; digest, candidate enclaves, schedule) -> recordRun by a candidate enclave
/// active in the registry (an EIP-712 Run it signed), once per run id, each run continuing from the cursor the
/// previous run left (cursorBefore must equal the stored cursor), so no host can replay an old cursor or skip
/// a run's record. The owner may add or remove candidates, request a run outside the schedule (requestRun: the
/// candidates' nodes run it in turn, as a scheduled slot) and retire the pipeline.
/// @dev Formats must match src/protocol/pipelines.ts. The pipeline file itself is off chain, bound by its digest.
contract Pipelines is EIP712 {
    /// @dev One slot: owner, runs, retired, requests.
    struct Pipeline {
        address owner;
        uint32 runs;
        bool retired;
        /// @dev How many runs the owner requested (requestRun); the latest request's number.
        uint32 requests;
        bytes32 pipelineDigest;
        /// @dev The cursorAfter of the last run (zero before the first).
        bytes32 cursor;
    }

    /// @dev Mirrors `RunAnchor` in src/protocol/pipelines.ts.
    struct RunAnchor {
        bytes32 runId;
        bytes32 cursorBefore;
        bytes32 cursorAfter;
        uint64 recordsRead;
        uint64 recordsWritten;
        bytes32 provenanceDigest;
    }

    bytes32 public constant RUN_TYPEHASH = keccak256(
        "Run(uint256 pipelineId,bytes32 pipelineDigest,bytes32 runId,bytes32 cursorBefore,bytes32 cursorAfter,uint64 recordsRead,uint64 recordsWritten,bytes32 provenanceDigest)"
    );
    uint256 public constant MAX_CANDIDATES = 32;

    IEnclaveRegistry public immutable registry;

    mapping(uint256 pipelineId => Pipeline) public pipelines;
    mapping(uint256 pipelineId => mapping(address enclave => bool)) public isCandidate;
    mapping(uint256 pipelineId => mapping(bytes32 runId => bool)) public runAnchored;

    error InvalidPipeline(string reason);
    error PipelineExists(uint256 pipelineId);
    error UnknownPipeline(uint256 pipelineId);
    error NotPipelineOwner(uint256 pipelineId, address caller, address owner);
    error PipelineIsRetired(uint256 pipelineId);
    error CandidateUnchanged(uint256 pipelineId, address enclave, bool allowed);
    error RunAlreadyAnchored(uint256 pipelineId, bytes32 runId);
    error CursorMismatch(uint256 pipelineId, bytes32 cursorBefore, bytes32 expected);
    error ProvenanceMissing(uint256 pipelineId, bytes32 runId);
    error NotACandidate(uint256 pipelineId, address enclave);
    error EnclaveNotActive(address enclave);

    event PipelineRegistered(uint256 indexed pipelineId, address indexed owner, bytes32 pipelineDigest, address[] candidates, string schedule, bytes32 salt);
    event CandidateSet(uint256 indexed pipelineId, address indexed enclave, bool allowed);
    event PipelineRetired(uint256 indexed pipelineId, uint32 runs);
    event RunRequested(uint256 indexed pipelineId, address indexed requester, uint32 request);
    event RunAnchored(
        uint256 indexed pipelineId,
        bytes32 indexed runId,
        address indexed enclave,
        uint32 run,
        bytes32 cursorBefore,
        bytes32 cursorAfter,
        uint64 recordsRead,
        uint64 recordsWritten,
        bytes32 provenanceDigest
    );

    constructor(IEnclaveRegistry registry_) EIP712("Cloister Pipelines", "1") {
        registry = registry_;
    }

    /// @notice The caller registers a pipeline it owns. The id is pipelineIdOf(caller, salt).
    function registerPipeline(bytes32 pipelineDigest, address[] calldata candidates, string calldata schedule, bytes32 salt)
        external
        returns (uint256 pipelineId)
    {
        if (pipelineDigest == bytes32(0)) revert InvalidPipeline("pipelineDigest is zero");
        uint256 n = candidates.length;
        if (n == 0) revert InvalidPipeline("no candidate enclave");
        if (n > MAX_CANDIDATES) revert InvalidPipeline("at most 32 candidate enclaves");
        pipelineId = pipelineIdOf(msg.sender, salt);
        Pipeline storage p = pipelines[pipelineId];
        if (p.owner != address(0)) revert PipelineExists(pipelineId);
        for (uint256 i = 0; i < n; ++i) {
            address enclave = candidates[i];
            if (enclave == address(0)) revert InvalidPipeline("a candidate is the zero address");
            if (isCandidate[pipelineId][enclave]) revert InvalidPipeline("a candidate appears twice");
            isCandidate[pipelineId][enclave] = true;
        }
        p.owner = msg.sender;
        p.pipelineDigest = pipelineDigest;
        emit PipelineRegistered(pipelineId, msg.sender, pipelineDigest, candidates, schedule, salt);
    }

    /// @notice The owner adds (`allowed`) or removes a candidate enclave.
    function setCandidate(uint256 pipelineId, address enclave, bool allowed) external {
        _owned(pipelineId);
        if (enclave == address(0)) revert InvalidPipeline("a candidate is the zero address");
        if (isCandidate[pipelineId][enclave] == allowed) revert CandidateUnchanged(pipelineId, enclave, allowed);
        isCandidate[pipelineId][enclave] = allowed;
        emit CandidateSet(pipelineId, enclave, allowed);
    }

    /// @notice The owner retires the pipeline: no run is anchored after this.
    function retirePipeline(uint256 pipelineId) external {
        Pipeline storage p = _owned(pipelineId);
        p.retired = true;
        emit PipelineRetired(pipelineId, p.runs);
    }

    /// @notice The owner asks for a run now, schedule or not: the candidates' nodes treat the request as a due slot,
    /// done once a run is anchored after it. Requests made before that run are served by it.
    function requestRun(uint256 pipelineId) external {
        Pipeline storage p = _owned(pipelineId);
        uint32 request = p.requests + 1;
        p.requests = request;
        emit RunRequested(pipelineId, msg.sender, request);
    }

    /// @notice Anchors one run, signed (EIP-712 Run) by a candidate enclave active in the registry. Anyone may send
    /// it. The run must start from the cursor the previous run left.
    function recordRun(uint256 pipelineId, RunAnchor calldata anchor, bytes calldata signature) external {
        Pipeline storage p = pipelines[pipelineId];
        if (p.owner == address(0)) revert UnknownPipeline(pipelineId);
        if (p.retired) revert PipelineIsRetired(pipelineId);
        if (runAnchored[pipelineId][anchor.runId]) revert RunAlreadyAnchored(pipelineId, anchor.runId);
        if (anchor.cursorBefore != p.cursor) revert CursorMismatch(pipelineId, anchor.cursorBefore, p.cursor);
        if (anchor.provenanceDigest == bytes32(0)) revert ProvenanceMissing(pipelineId, anchor.runId);
        address enclave = ECDSA.recover(runDigest(pipelineId, anchor), signature);
        if (!isCandidate[pipelineId][enclave]) revert NotACandidate(pipelineId, enclave);
        if (!registry.isActive(enclave)) revert EnclaveNotActive(enclave);

        uint32 run = p.runs + 1;
        p.runs = run;
        p.cursor = anchor.cursorAfter;
        runAnchored[pipelineId][anchor.runId] = true;
        _emitRun(pipelineId, enclave, run, anchor);
    }

    /// @notice The id a pipeline registered by `owner` with `salt` gets on this chain and contract.
    function pipelineIdOf(address owner, bytes32 salt) public view returns (uint256) {
        return uint256(keccak256(abi.encode(block.chainid, address(this), owner, salt)));
    }

    /// @notice The EIP-712 digest a candidate enclave signs for `anchor` of `pipelineId` (with its stored digest).
    function runDigest(uint256 pipelineId, RunAnchor calldata anchor) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(RUN_TYPEHASH, pipelineId, pipelines[pipelineId].pipelineDigest, anchor.runId, anchor.cursorBefore),
                abi.encode(anchor.cursorAfter, anchor.recordsRead, anchor.recordsWritten, anchor.provenanceDigest)
            )
        );
        return _hashTypedDataV4(structHash);
    }

    function _owned(uint256 pipelineId) private view returns (Pipeline storage p) {
        p = pipelines[pipelineId];
        if (p.owner == address(0)) revert UnknownPipeline(pipelineId);
        if (p.owner != msg.sender) revert NotPipelineOwner(pipelineId, msg.sender, p.owner);
        if (p.retired) revert PipelineIsRetired(pipelineId);
    }

    /// @dev Its own frame: the event's nine fields and recordRun's locals do not fit one stack.
    function _emitRun(uint256 pipelineId, address enclave, uint32 run, RunAnchor calldata anchor) private {
        emit RunAnchored(
            pipelineId,
            anchor.runId,
            enclave,
            run,
            anchor.cursorBefore,
            anchor.cursorAfter,
            anchor.recordsRead,
            anchor.recordsWritten,
            anchor.provenanceDigest
        );
    }
}
