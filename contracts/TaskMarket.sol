// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Cloister task market: escrowed confidential tasks run by attested enclaves.
/// @notice Lifecycle: submitTask (escrow) -> acceptTask (locked to one enclave) -> completeTask (EIP-712
/// proof by that enclave's key, reward paid to the operator who accepted). The requester may cancel an
/// open task; past the deadline anyone may have an open or accepted task refunded to the requester.
/// @dev Only a hash of the TaskSpec is stored; the spec travels in calldata and in the TaskSubmitted
/// event. Formats must match src/protocol/task.ts and src/protocol/completion.ts.
contract TaskMarket is EIP712, ReentrancyGuardTransient {
    /// @dev Mirrors `TaskSpec` in src/protocol/task.ts. specHash = keccak256(abi.encode(spec)).
    struct TaskSpec {
        bytes32 programDigest;
        bytes32 inputDigest;
        bytes32 envelopeDigest;
        string envelopeCid;
        address[] candidates;
        uint64 deadline;
    }

    enum TaskStatus {
        None,
        Open,
        Accepted,
        Completed,
        Cancelled,
        Refunded
    }

    /// @dev Four slots: (requester, reward), (enclave, deadline, status), (operator), (specHash).
    /// Slot 2 has 12 free bytes for attempt counters.
    struct Task {
        address requester;
        uint96 reward;
        address enclave;
        uint64 deadline;
        TaskStatus status;
        address operator;
        bytes32 specHash;
    }

    bytes32 public constant COMPLETION_TYPEHASH = keccak256(
        "Completion(uint256 taskId,bytes32 programDigest,bytes32 inputDigest,bytes32 outputDigest,bytes32 provenanceDigest)"
    );

    IEnclaveRegistry public immutable registry;

    mapping(uint256 taskId => Task) public tasks;

    /// @notice Payments whose push transfer failed, claimable with `withdraw`.
    mapping(address account => uint256) public owed;

    error UnknownTask(uint256 taskId);
    error TaskExists(uint256 taskId);
    error NoEscrow();
    error RewardTooLarge(uint256 value);
    error DeadlinePassed(uint256 taskId, uint64 deadline, uint256 blockTimestamp);
    error DeadlineNotReached(uint256 taskId, uint64 deadline, uint256 blockTimestamp);
    error TaskNotOpen(uint256 taskId, TaskStatus status);
    error TaskNotAccepted(uint256 taskId, TaskStatus status);
    error TaskAlreadySettled(uint256 taskId, TaskStatus status);
    error SpecMismatch(uint256 taskId, bytes32 expected, bytes32 actual);
    error EnclaveNotCandidate(uint256 taskId, address enclave);
    error EnclaveNotActive(address enclave);
    error NotEnclaveOperator(address enclave, address caller);
    error InvalidCompletionSignature(uint256 taskId, address recovered);
    error NotRequester(uint256 taskId, address caller);
    error NothingToWithdraw(address account);
    error WithdrawFailed(address account, uint256 amount);

    event TaskSubmitted(
        uint256 indexed taskId, address indexed requester, bytes32 specHash, uint256 reward, TaskSpec spec
    );
    event TaskAccepted(uint256 indexed taskId, address indexed enclave, address indexed operator);
    event TaskCompleted(
        uint256 indexed taskId,
        address indexed enclave,
        address indexed operator,
        bytes32 outputDigest,
        bytes32 provenanceDigest,
        string outputCid,
        string provenanceCid,
        uint256 reward
    );
    event TaskCancelled(uint256 indexed taskId, address indexed requester, uint256 refund);
    /// @param previousStatus Open or Accepted: whether an accepted enclave missed the deadline.
    event TaskRefunded(uint256 indexed taskId, address indexed requester, uint256 refund, TaskStatus previousStatus);
    event PaymentDeferred(address indexed account, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    constructor(IEnclaveRegistry registry_) EIP712("Cloister TaskMarket", "1") {
        registry = registry_;
    }

    /// @notice Escrows msg.value as the reward of a new task. The id is derived from the caller and a salt,
    /// so a requester knows it before the transaction is mined.
    function submitTask(TaskSpec calldata spec, bytes32 salt) external payable returns (uint256 taskId) {
        taskId = uint256(keccak256(abi.encode(block.chainid, address(this), msg.sender, salt)));
        if (msg.value == 0) revert NoEscrow();
        if (msg.value > type(uint96).max) revert RewardTooLarge(msg.value);
        if (spec.deadline <= block.timestamp) revert DeadlinePassed(taskId, spec.deadline, block.timestamp);
        Task storage t = tasks[taskId];
        if (t.status != TaskStatus.None) revert TaskExists(taskId);

        bytes32 specHash = keccak256(abi.encode(spec));
        t.requester = msg.sender;
        t.reward = uint96(msg.value);
        t.deadline = spec.deadline;
        t.status = TaskStatus.Open;
        t.specHash = specHash;
        emit TaskSubmitted(taskId, msg.sender, specHash, msg.value, spec);
    }

    /// @notice Locks an open task to `enclave`. The caller must be the enclave's registered operator.
    function acceptTask(uint256 taskId, TaskSpec calldata spec, address enclave) external {
        Task storage t = _task(taskId);
        if (t.status != TaskStatus.Open) revert TaskNotOpen(taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline, block.timestamp);
        _checkSpec(taskId, t, spec);
        if (!_isCandidate(spec.candidates, enclave)) revert EnclaveNotCandidate(taskId, enclave);
        address operator = registry.activeOperator(enclave);
        if (operator == address(0)) revert EnclaveNotActive(enclave);
        if (operator != msg.sender) revert NotEnclaveOperator(enclave, msg.sender);

        t.status = TaskStatus.Accepted;
        t.enclave = enclave;
        t.operator = msg.sender;
        emit TaskAccepted(taskId, enclave, msg.sender);
    }

    /// @notice Completes an accepted task with the accepted enclave's EIP-712 Completion signature and pays
    /// the reward to the operator who accepted. Anyone may relay the proof.
    function completeTask(
        uint256 taskId,
        TaskSpec calldata spec,
        bytes32 outputDigest,
        bytes32 provenanceDigest,
        string calldata outputCid,
        string calldata provenanceCid,
        bytes calldata signature
    ) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.status != TaskStatus.Accepted) revert TaskNotAccepted(taskId, t.status);
        if (block.timestamp > t.deadline) revert DeadlinePassed(taskId, t.deadline, block.timestamp);
        _checkSpec(taskId, t, spec);
        _checkCompletionSigner(taskId, t.enclave, spec, outputDigest, provenanceDigest, signature);

        t.status = TaskStatus.Completed;
        emit TaskCompleted(
            taskId, t.enclave, t.operator, outputDigest, provenanceDigest, outputCid, provenanceCid, t.reward
        );
        _pay(t.operator, t.reward);
    }

    /// @notice The requester withdraws an open (not yet accepted) task and gets its escrow back.
    function cancelTask(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        if (t.requester != msg.sender) revert NotRequester(taskId, msg.sender);
        if (t.status != TaskStatus.Open) revert TaskNotOpen(taskId, t.status);

        t.status = TaskStatus.Cancelled;
        uint256 refund = t.reward;
        emit TaskCancelled(taskId, msg.sender, refund);
        _pay(msg.sender, refund);
    }

    /// @notice Past the deadline, refunds an open or accepted-but-unfinished task to its requester.
    /// Anyone may call it; the refund always goes to the requester.
    function reclaimExpired(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        TaskStatus previous = t.status;
        if (previous != TaskStatus.Open && previous != TaskStatus.Accepted) {
            revert TaskAlreadySettled(taskId, previous);
        }
        if (block.timestamp <= t.deadline) revert DeadlineNotReached(taskId, t.deadline, block.timestamp);
        _settleExpired(taskId, t, previous);
    }

    /// @notice Claims payments whose push transfer failed.
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        owed[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = payable(msg.sender).call{value: amount}("");
        if (!ok) revert WithdrawFailed(msg.sender, amount);
    }

    /// @notice The EIP-712 digest an enclave signs to complete `taskId`.
    function completionDigest(
        uint256 taskId,
        bytes32 programDigest,
        bytes32 inputDigest,
        bytes32 outputDigest,
        bytes32 provenanceDigest
    ) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(COMPLETION_TYPEHASH, taskId, programDigest, inputDigest, outputDigest, provenanceDigest))
        );
    }

    /// @dev The completion must be signed by the accepted enclave, and that enclave must still be active.
    function _checkCompletionSigner(
        uint256 taskId,
        address enclave,
        TaskSpec calldata spec,
        bytes32 outputDigest,
        bytes32 provenanceDigest,
        bytes calldata signature
    ) private view {
        bytes32 digest = completionDigest(taskId, spec.programDigest, spec.inputDigest, outputDigest, provenanceDigest);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError || signer != enclave) revert InvalidCompletionSignature(taskId, signer);
        if (!registry.isActive(enclave)) revert EnclaveNotActive(enclave);
    }

    /// @dev The single place an expired task is settled; reopening for another candidate (with an attempt
    /// counter in slot 2) goes here before falling back to the refund.
    function _settleExpired(uint256 taskId, Task storage t, TaskStatus previous) private {
        t.status = TaskStatus.Refunded;
        address requester = t.requester;
        uint256 refund = t.reward;
        emit TaskRefunded(taskId, requester, refund, previous);
        _pay(requester, refund);
    }

    /// @dev Push payment; if the recipient rejects it the amount is credited to `owed` instead, so a
    /// recipient can never block a state transition. Callers update state first (checks-effects-interactions).
    function _pay(address to, uint256 amount) private {
        (bool ok,) = payable(to).call{value: amount}("");
        if (!ok) {
            owed[to] += amount;
            emit PaymentDeferred(to, amount);
        }
    }

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = tasks[taskId];
        if (t.status == TaskStatus.None) revert UnknownTask(taskId);
    }

    function _checkSpec(uint256 taskId, Task storage t, TaskSpec calldata spec) private view {
        bytes32 actual = keccak256(abi.encode(spec));
        if (actual != t.specHash) revert SpecMismatch(taskId, t.specHash, actual);
    }

    function _isCandidate(address[] calldata candidates, address enclave) private pure returns (bool) {
        if (candidates.length == 0) return true;
        for (uint256 i = 0; i < candidates.length; ++i) {
            if (candidates[i] == enclave) return true;
        }
        return false;
    }
}
