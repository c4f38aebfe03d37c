// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Cloister task market: nodes offer attested enclaves, requesters escrow confidential tasks.
/// @notice Lifecycle: submitTask (escrow maxPrice) -> acceptTask (a node names its enclave, whose offer must
/// meet the request; the operator posts a deposit; the attempt's deadline starts) -> completeTask (EIP-712
/// proof by that enclave; the node gets its offer price and its deposit back, the requester the rest).
/// Past an attempt's deadline anyone may reopenTask: the operator's deposit goes to the requester and the task
/// is open again, or refunded after its last attempt. Before the deadline, refuseTask with the accepted enclave's
/// EIP-712 Refusal ends a task whose own inputs make it unrunnable: the node keeps its deposit and is paid its
/// price, as for a completion. The requester may cancel an open task.
/// submitTasks, acceptTasks and completeTasks do the same for many tasks in one transaction, all or nothing.
/// @dev A task is one storage word (see `_pack`): status, attempt, attempt deadline and a 200-bit commitment
/// to the spec (and, once accepted, to the Assignment). The spec and the assignment travel in calldata and
/// events; callers pass them back and the contract checks them against the commitment.
/// Formats must match src/protocol/task.ts and src/protocol/completion.ts.
contract TaskMarket is EIP712, ReentrancyGuardTransient, Ownable {
    using SafeERC20 for IERC20;

    /// @dev Mirrors `TaskSpec` in src/protocol/task.ts. specHash = keccak256(abi.encode(spec)).
    struct TaskSpec {
        address requester;
        /// @dev address(0) = native currency, else an ERC-20.
        address token;
        /// @dev Escrowed at submit; the node is paid its offer price, the rest goes back to the requester.
        uint96 maxPrice;
        bytes32 programDigest;
        bytes32 inputDigest;
        bytes32 envelopeDigest;
        string envelopeCid;
        /// @dev Empty: any enclave with a matching offer (open matching).
        address[] candidates;
        uint32 cpuMillis;
        uint32 memoryMb;
        /// @dev Seconds of execution the task needs: the offer's maxDuration must cover it.
        uint32 duration;
        /// @dev Bitmask of accepted TEE types: bit 0 SGX, bit 1 TDX, bit 2 SEV-SNP.
        uint8 teeTypes;
        uint8 category;
        /// @dev Each attempt's deadline is its accept time + category time reference x deadlineMultiple.
        uint16 deadlineMultiple;
        uint8 maxAttempts;
    }

    /// @dev Who accepted an attempt, at which price, with which deposit (native currency). From TaskAccepted.
    struct Assignment {
        address enclave;
        address operator;
        uint96 price;
        uint96 deposit;
    }

    /// @dev What an enclave produced: the digests of its result and provenance blobs and their CIDs, all signed.
    struct Result {
        bytes32 outputDigest;
        bytes32 provenanceDigest;
        string outputCid;
        string provenanceCid;
    }

    /// @dev One item of `completeTasks`: the arguments of `completeTask`.
    struct CompletionItem {
        uint256 taskId;
        TaskSpec spec;
        Assignment assignment;
        Result result;
        bytes signature;
    }

    /// @dev A payment summed over consecutive batch items that pay the same token to the same account.
    struct Payout {
        address token;
        address to;
        uint256 amount;
    }

    /// @dev One storage slot per (enclave, token). maxDuration == 0 means no offer.
    struct Offer {
        uint96 price;
        uint32 cpuMillis;
        uint32 memoryMb;
        uint32 maxDuration;
    }

    enum TaskStatus {
        None,
        Open,
        Accepted,
        Completed,
        Cancelled,
        Refunded,
        Refused
    }

    /// @dev The CIDs are signed too (EIP-712 hashes each string with keccak256): the requester fetches what the
    /// event names, so nobody can relay the enclave's signature with other CIDs.
    bytes32 public constant COMPLETION_TYPEHASH = keccak256(
        "Completion(uint256 taskId,bytes32 programDigest,bytes32 inputDigest,bytes32 outputDigest,bytes32 provenanceDigest,string outputCid,string provenanceCid)"
    );

    /// @dev An enclave's proof that attempt `attempt` of `taskId` cannot run because of the task's own inputs
    /// (`reason`, a code of src/protocol/refusal.ts). specHash binds the spec the enclave checked (a host cannot
    /// get a refusal by handing it another spec); the attempt makes a refusal of one attempt useless for another.
    bytes32 public constant REFUSAL_TYPEHASH = keccak256("Refusal(uint256 taskId,bytes32 specHash,uint8 attempt,uint8 reason)");

    /// @dev Gas a push payment may use: enough for an account's or a wallet's receive, not enough for a payee to
    /// make a transition cost much or fail. A payment that needs more is credited to `owed` instead.
    uint256 private constant NATIVE_PAYMENT_GAS = 10_000;
    uint256 private constant TOKEN_PAYMENT_GAS = 100_000;
    /// @dev The gas left a payment needs so that the payee does get its full bound (the CALL's own cost and the
    /// 1/64 kept back included): with less the transaction reverts, so a relay cannot pick a gas limit that makes
    /// an honest payee's transfer fail and be credited instead.
    uint256 private constant NATIVE_PAYMENT_RESERVE = 25_000;
    uint256 private constant TOKEN_PAYMENT_RESERVE = 110_000;

    /// @notice Categories are 0..7; a time reference of 0 means the category is not defined.
    uint8 public constant CATEGORY_COUNT = 8;

    uint256 private constant COMMITMENT_MASK = type(uint256).max << 56;

    IEnclaveRegistry public immutable registry;

    /// @notice The packed task word: commitment (bits 56..255), deadline (16..55), attempt (8..15), status (0..7).
    mapping(uint256 taskId => uint256) public tasks;

    mapping(address enclave => mapping(address token => Offer)) public offers;

    /// @dev One slot: the per-task operator deposit (wei) in bits 0..63, then eight uint24 category time
    /// references (seconds), category i in bits 64 + 24 i.
    uint256 private _config;

    /// @notice Payments whose push transfer failed, by token (address(0) = native), claimable with `withdraw`.
    mapping(address token => mapping(address account => uint256)) public owed;

    error UnknownTask(uint256 taskId);
    error TaskExists(uint256 taskId);
    error InvalidSpec(string reason);
    error NoEscrow();
    error WrongEscrow(uint256 expected, uint256 sent);
    error TaskNotOpen(uint256 taskId, TaskStatus status);
    error TaskNotAccepted(uint256 taskId, TaskStatus status);
    error DeadlinePassed(uint256 taskId, uint40 deadline, uint256 blockTimestamp);
    error DeadlineNotReached(uint256 taskId, uint40 deadline, uint256 blockTimestamp);
    error SpecMismatch(uint256 taskId);
    error EnclaveNotCandidate(uint256 taskId, address enclave);
    error EnclaveNotActive(address enclave);
    error NotEnclaveOperator(address enclave, address caller);
    error NoOffer(address enclave, address token);
    error InvalidOffer(string reason);
    error PriceAboveMax(uint96 price, uint96 maxPrice);
    error InsufficientResources(address enclave);
    error TeeTypeNotAccepted(uint8 teeType, uint8 teeTypes);
    error UnknownCategory(uint8 category);
    error WrongDeposit(uint256 expected, uint256 sent);
    error InvalidCompletionSignature(uint256 taskId, address recovered);
    error InvalidRefusalSignature(uint256 taskId, address recovered);
    error InvalidRefusalReason(uint8 reason);
    /// @dev The transaction's gas does not leave a payment the gas its payee is due; send it with a higher limit.
    error PaymentGasTooLow(uint256 needed, uint256 left);
    error NotRequester(uint256 taskId, address caller);
    error NothingToWithdraw(address token, address account);
    error WithdrawFailed(address token, address account, uint256 amount);
    error EmptyBatch();
    /// @dev The batch's parallel arrays (specs and salts, or taskIds and specs) differ in length.
    error BatchLengthMismatch(uint256 firstLength, uint256 secondLength);

    event TaskSubmitted(uint256 indexed taskId, address indexed requester, bytes32 specHash, TaskSpec spec);
    event TaskAccepted(
        uint256 indexed taskId,
        address indexed enclave,
        address indexed operator,
        uint8 attempt,
        uint96 price,
        uint96 deposit,
        uint40 deadline
    );
    event TaskCompleted(
        uint256 indexed taskId,
        address indexed enclave,
        address indexed operator,
        bytes32 outputDigest,
        bytes32 provenanceDigest,
        string outputCid,
        string provenanceCid,
        uint96 price
    );
    event TaskCancelled(uint256 indexed taskId, address indexed requester, uint256 refund);
    /// @notice The accepted enclave proved the task unrunnable for `reason`: the task ends, the operator is paid
    /// `price` and gets its deposit back, the requester gets `refund` (maxPrice - price).
    event TaskRefused(
        uint256 indexed taskId, address indexed enclave, address indexed operator, uint8 attempt, uint8 reason, uint96 price, uint256 refund
    );
    /// @notice The attempt `attempt` missed its deadline; the task is open again and carries its spec, so a
    /// node needs no other event to accept it. The missed operator's deposit went to the requester.
    event TaskReopened(
        uint256 indexed taskId, uint8 attempt, address indexed enclave, address indexed operator, uint96 forfeitedDeposit, TaskSpec spec
    );
    /// @notice The last attempt missed its deadline: escrow and the missed operator's deposit went to the requester.
    event TaskRefunded(uint256 indexed taskId, address indexed requester, uint256 refund, uint96 forfeitedDeposit);
    event OfferPosted(
        address indexed enclave, address indexed token, address indexed operator, uint96 price, uint32 cpuMillis, uint32 memoryMb, uint32 maxDuration
    );
    event OfferWithdrawn(address indexed enclave, address indexed token, address indexed operator);
    event CategorySet(uint8 indexed category, uint24 timeRef);
    event TaskDepositSet(uint64 deposit);
    event PaymentDeferred(address indexed token, address indexed account, uint256 amount);
    event Withdrawn(address indexed token, address indexed account, address to, uint256 amount);

    /// @param taskDeposit_ Native currency an operator posts with every accept (returned at completion).
    constructor(IEnclaveRegistry registry_, address admin, uint64 taskDeposit_)
        EIP712("Cloister TaskMarket", "1")
        Ownable(admin)
    {
        registry = registry_;
        // Default categories, after iExec's XS..XL: 5 min, 20 min, 1 h, 3 h, 10 h.
        uint24[5] memory defaults = [uint24(300), 1200, 3600, 10800, 36000];
        for (uint8 i = 0; i < defaults.length; ++i) {
            _setCategory(i, defaults[i]);
        }
        _setTaskDeposit(taskDeposit_);
    }

    // ---------------------------------------------------------------- requester

    /// @notice Escrows spec.maxPrice (msg.value, or an ERC-20 transferFrom after approve) for a new task. The id
    /// is derived from the caller and a salt, so a requester knows it before the transaction is mined.
    function submitTask(TaskSpec calldata spec, bytes32 salt) external payable nonReentrant returns (uint256 taskId) {
        taskId = _submit(spec, salt);
        address token = spec.token;
        uint256 expected = token == address(0) ? spec.maxPrice : 0;
        if (msg.value != expected) revert WrongEscrow(expected, msg.value);
        if (token != address(0)) _pullEscrow(token, spec.maxPrice);
    }

    /// @notice Submits `specs[i]` under `salts[i]` for every i, as `submitTask` does one by one, in one
    /// transaction. msg.value must be the sum of maxPrice over the native-currency specs; ERC-20 escrow is
    /// pulled with one transferFrom per run of consecutive specs in the same token (approve the total first).
    /// @dev All or nothing: an invalid item reverts the batch with that item's own error (TaskExists(taskId),
    /// InvalidSpec, ...), so a caller can drop it and send the rest.
    /// @param specs The tasks, each as `submitTask` takes it.
    /// @param salts One salt per spec: the task id is derived from the sender and the salt, as in `submitTask`.
    /// @return taskIds The ids, in item order.
    function submitTasks(TaskSpec[] calldata specs, bytes32[] calldata salts)
        external
        payable
        nonReentrant
        returns (uint256[] memory taskIds)
    {
        uint256 n = specs.length;
        if (n == 0) revert EmptyBatch();
        if (salts.length != n) revert BatchLengthMismatch(n, salts.length);
        taskIds = new uint256[](n);
        uint256 nativeEscrow;
        for (uint256 i = 0; i < n; ++i) {
            TaskSpec calldata spec = specs[i];
            taskIds[i] = _submit(spec, salts[i]);
            if (spec.token == address(0)) nativeEscrow += spec.maxPrice;
        }
        if (msg.value != nativeEscrow) revert WrongEscrow(nativeEscrow, msg.value);

        address token;
        uint256 amount;
        for (uint256 i = 0; i < n; ++i) {
            TaskSpec calldata spec = specs[i];
            address specToken = spec.token;
            if (specToken == address(0)) continue;
            if (specToken != token) {
                if (amount != 0) _pullEscrow(token, amount);
                (token, amount) = (specToken, 0);
            }
            amount += spec.maxPrice;
        }
        if (amount != 0) _pullEscrow(token, amount);
    }

    /// @notice The requester withdraws an open (not accepted) task and gets its escrow back.
    function cancelTask(uint256 taskId, TaskSpec calldata spec) external nonReentrant {
        uint256 word = _word(taskId);
        if (_status(word) != TaskStatus.Open) revert TaskNotOpen(taskId, _status(word));
        if (_commitment(word) != _commit(keccak256(abi.encode(spec)))) revert SpecMismatch(taskId);
        if (spec.requester != msg.sender) revert NotRequester(taskId, msg.sender);

        tasks[taskId] = _withStatus(word, TaskStatus.Cancelled);
        emit TaskCancelled(taskId, msg.sender, spec.maxPrice);
        _pay(spec.token, msg.sender, spec.maxPrice);
    }

    // ---------------------------------------------------------------- node

    /// @notice Offers `enclave` for tasks paid in `token`. The caller must be the enclave's operator and the
    /// enclave active. Replaces an earlier offer; tasks already accepted keep the price they were accepted at.
    function postOffer(address enclave, address token, Offer calldata offer) external {
        address operator = registry.activeOperator(enclave);
        if (operator == address(0)) revert EnclaveNotActive(enclave);
        if (operator != msg.sender) revert NotEnclaveOperator(enclave, msg.sender);
        if (offer.maxDuration == 0) revert InvalidOffer("maxDuration must be at least 1 second");
        offers[enclave][token] = offer;
        emit OfferPosted(enclave, token, msg.sender, offer.price, offer.cpuMillis, offer.memoryMb, offer.maxDuration);
    }

    /// @notice Withdraws an offer. The enclave's registered operator may do so even once it is inactive.
    function withdrawOffer(address enclave, address token) external {
        if (registry.operatorOf(enclave) != msg.sender) revert NotEnclaveOperator(enclave, msg.sender);
        if (offers[enclave][token].maxDuration == 0) revert NoOffer(enclave, token);
        delete offers[enclave][token];
        emit OfferWithdrawn(enclave, token, msg.sender);
    }

    /// @notice Locks an open task to `enclave` at its offer price for one attempt. The caller must be the
    /// enclave's operator and send exactly `taskDeposit()`.
    function acceptTask(uint256 taskId, TaskSpec calldata spec, address enclave) external payable {
        (address operator, uint8 teeType) = registry.activeEnclave(enclave);
        uint256 config = _config;
        _accept(taskId, spec, enclave, operator, teeType, config, offers[enclave][spec.token]);
        if (msg.value != uint64(config)) revert WrongDeposit(uint64(config), msg.value);
    }

    /// @notice Accepts `taskIds[i]` (submitted as `specs[i]`) for every i with the one `enclave`, as
    /// `acceptTask` does one by one, in one transaction, skipping the tasks that are no longer open (another
    /// node took them first, or they were cancelled): racing for open tasks is normal, so losing some races
    /// does not cost the whole batch. msg.value must be `taskDeposit()` times the count; the deposits of
    /// skipped tasks are returned to the caller. The TaskAccepted events say which tasks were accepted.
    /// @dev Any other failure reverts the batch with the item's own error (SpecMismatch(taskId), NoOffer, ...),
    /// so a caller can drop it and send the rest. The registry is read once per batch and the offer once per
    /// run of consecutive specs in the same token.
    /// @param taskIds Open tasks.
    /// @param specs Each task's spec exactly as submitted (from TaskSubmitted or TaskReopened).
    /// @param enclave The enclave that runs them all; the caller must be its operator.
    function acceptTasks(uint256[] calldata taskIds, TaskSpec[] calldata specs, address enclave) external payable nonReentrant {
        uint256 n = taskIds.length;
        if (n == 0) revert EmptyBatch();
        if (specs.length != n) revert BatchLengthMismatch(n, specs.length);
        uint256 config = _config;
        uint256 deposits = uint256(uint64(config)) * n;
        if (msg.value != deposits) revert WrongDeposit(deposits, msg.value);
        (address operator, uint8 teeType) = registry.activeEnclave(enclave);

        address offerToken = specs[0].token;
        Offer memory offer = offers[enclave][offerToken];
        uint256 skipped;
        for (uint256 i = 0; i < n; ++i) {
            if (specs[i].token != offerToken) {
                offerToken = specs[i].token;
                offer = offers[enclave][offerToken];
            }
            if (_takenOrClosed(taskIds[i])) {
                ++skipped;
                continue;
            }
            _accept(taskIds[i], specs[i], enclave, operator, teeType, config, offer);
        }
        _pay(address(0), msg.sender, uint256(uint64(config)) * skipped);
    }

    /// @notice Completes an accepted task with the accepted enclave's EIP-712 Completion signature, no later
    /// than the attempt's deadline. Pays the operator its price and returns its deposit; the rest of the escrow
    /// goes back to the requester. Anyone may relay the proof.
    function completeTask(uint256 taskId, TaskSpec calldata spec, Assignment calldata a, Result calldata r, bytes calldata signature)
        external
        nonReentrant
    {
        _complete(taskId, spec, a, r, signature, false);
        _payOperator(spec.token, a);
        _pay(spec.token, spec.requester, spec.maxPrice - a.price);
    }

    /// @notice Completes every item as `completeTask` does one by one, in one transaction, and makes the same
    /// payments. Payments of one token to one account from consecutive items are summed into one transfer.
    /// @dev All or nothing: an item that cannot be completed reverts the batch with that item's own error
    /// (InvalidCompletionSignature(taskId, recovered), TaskNotAccepted(taskId, status), ...), so a caller can
    /// drop it and send the rest. Every item's state change and event precede the first transfer. A summed payment
    /// that the recipient rejects is credited to `owed` as one sum (one PaymentDeferred).
    /// @param items Each completion's `completeTask` arguments; the items may belong to different operators.
    function completeTasks(CompletionItem[] calldata items) external nonReentrant {
        uint256 n = items.length;
        if (n == 0) revert EmptyBatch();
        address checkedEnclave;
        for (uint256 i = 0; i < n; ++i) {
            CompletionItem calldata item = items[i];
            address enclave = item.assignment.enclave;
            // Consecutive items of one enclave (the usual batch) need one registry call.
            _complete(item.taskId, item.spec, item.assignment, item.result, item.signature, i > 0 && enclave == checkedEnclave);
            checkedEnclave = enclave;
        }

        Payout memory operatorNative;
        Payout memory operatorToken;
        Payout memory requesterRefund;
        for (uint256 i = 0; i < n; ++i) {
            CompletionItem calldata item = items[i];
            TaskSpec calldata spec = item.spec;
            Assignment calldata a = item.assignment;
            address token = spec.token;
            if (token == address(0)) {
                _accrue(operatorNative, address(0), a.operator, uint256(a.price) + a.deposit);
            } else {
                _accrue(operatorNative, address(0), a.operator, a.deposit);
                _accrue(operatorToken, token, a.operator, a.price);
            }
            _accrue(requesterRefund, token, spec.requester, spec.maxPrice - a.price);
        }
        _pay(operatorNative.token, operatorNative.to, operatorNative.amount);
        _pay(operatorToken.token, operatorToken.to, operatorToken.amount);
        _pay(requesterRefund.token, requesterRefund.to, requesterRefund.amount);
    }

    // ---------------------------------------------------------------- anyone

    /// @notice Ends an accepted task that its own inputs make unrunnable, with the accepted (still active)
    /// enclave's EIP-712 Refusal, no later than the attempt's deadline. The enclave signs one only for failures
    /// the requester caused (a digest, envelope, wrapped key or input ciphertext that does not check out). The
    /// operator gets its deposit back and is paid its price, as for a completion: the requester caused the
    /// attempt. The task is not reopened: the same inputs would fail on every node. Anyone may relay it.
    function refuseTask(uint256 taskId, TaskSpec calldata spec, Assignment calldata a, uint8 reason, bytes calldata signature)
        external
        nonReentrant
    {
        bytes32 specHash = keccak256(abi.encode(spec));
        uint256 word = _acceptedWordOf(taskId, specHash, a);
        if (block.timestamp > _deadline(word)) revert DeadlinePassed(taskId, _deadline(word), block.timestamp);
        if (reason == 0) revert InvalidRefusalReason(reason);
        uint8 attempt = _attempt(word);
        address signer = _recover(refusalDigest(taskId, specHash, attempt, reason), signature);
        if (signer != a.enclave) revert InvalidRefusalSignature(taskId, signer);
        if (!registry.isActive(a.enclave)) revert EnclaveNotActive(a.enclave);

        tasks[taskId] = _withStatus(word, TaskStatus.Refused);
        uint256 refund = spec.maxPrice - a.price;
        emit TaskRefused(taskId, a.enclave, a.operator, attempt, reason, a.price, refund);
        _payOperator(spec.token, a);
        _pay(spec.token, spec.requester, refund);
    }

    /// @notice Past an accepted attempt's deadline: the operator's deposit goes to the requester, and the task
    /// is open again for another node, or, after its last attempt, refunded to the requester.
    function reopenTask(uint256 taskId, TaskSpec calldata spec, Assignment calldata a) external nonReentrant {
        uint256 word = _acceptedWord(taskId, spec, a);
        if (block.timestamp <= _deadline(word)) revert DeadlineNotReached(taskId, _deadline(word), block.timestamp);

        uint8 attempt = _attempt(word);
        if (attempt < spec.maxAttempts) {
            tasks[taskId] = _pack(keccak256(abi.encode(spec)), 0, attempt, TaskStatus.Open);
            emit TaskReopened(taskId, attempt, a.enclave, a.operator, a.deposit, spec);
            _pay(address(0), spec.requester, a.deposit);
        } else {
            tasks[taskId] = _withStatus(word, TaskStatus.Refunded);
            emit TaskRefunded(taskId, spec.requester, spec.maxPrice, a.deposit);
            if (spec.token == address(0)) {
                _pay(address(0), spec.requester, uint256(spec.maxPrice) + a.deposit);
            } else {
                _pay(spec.token, spec.requester, spec.maxPrice);
                _pay(address(0), spec.requester, a.deposit);
            }
        }
    }

    /// @notice Claims payments the market could not push to the caller.
    function withdraw(address token) external {
        withdrawTo(token, msg.sender);
    }

    /// @notice Claims payments the market could not push to the caller, sending them to `to` (for an account that
    /// cannot receive them itself). The transfer gets all the gas the caller gives it.
    function withdrawTo(address token, address to) public nonReentrant {
        uint256 amount = owed[token][msg.sender];
        if (amount == 0) revert NothingToWithdraw(token, msg.sender);
        owed[token][msg.sender] = 0;
        emit Withdrawn(token, msg.sender, to, amount);
        bool ok;
        if (token == address(0)) (ok,) = payable(to).call{value: amount}("");
        else ok = IERC20(token).trySafeTransfer(to, amount);
        if (!ok) revert WithdrawFailed(token, to, amount);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Sets a category's time reference in seconds (0 undefines it; open tasks in it cannot be accepted).
    function setCategory(uint8 category, uint24 timeRef) external onlyOwner {
        _setCategory(category, timeRef);
    }

    /// @notice Sets the deposit (wei) an operator posts with each accept. Accepted tasks keep their deposit.
    function setTaskDeposit(uint64 deposit) external onlyOwner {
        _setTaskDeposit(deposit);
    }

    // ---------------------------------------------------------------- views

    function taskDeposit() external view returns (uint64) {
        return uint64(_config);
    }

    function categoryTimeRef(uint8 category) external view returns (uint24) {
        if (category >= CATEGORY_COUNT) return 0;
        return uint24(_categoryRef(_config, category));
    }

    /// @notice The unpacked task word.
    function taskState(uint256 taskId)
        external
        view
        returns (TaskStatus status, uint8 attempt, uint40 deadline, bytes32 commitment)
    {
        uint256 word = tasks[taskId];
        return (_status(word), _attempt(word), _deadline(word), _commitment(word));
    }

    /// @notice The packed task words (see `tasks`) of many tasks in one call, in the order of `taskIds`; 0 for an
    /// unknown id. For a node that follows many tasks' statuses with one eth_call.
    function taskWords(uint256[] calldata taskIds) external view returns (uint256[] memory words) {
        words = new uint256[](taskIds.length);
        for (uint256 i = 0; i < taskIds.length; ++i) {
            words[i] = tasks[taskIds[i]];
        }
    }

    /// @notice The EIP-712 digest an enclave signs to complete `taskId` with result `r`.
    function completionDigest(uint256 taskId, bytes32 programDigest, bytes32 inputDigest, Result calldata r)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    COMPLETION_TYPEHASH,
                    taskId,
                    programDigest,
                    inputDigest,
                    r.outputDigest,
                    r.provenanceDigest,
                    keccak256(bytes(r.outputCid)),
                    keccak256(bytes(r.provenanceCid))
                )
            )
        );
    }

    /// @notice The EIP-712 digest an enclave signs to refuse attempt `attempt` of `taskId` (spec `specHash`) for `reason`.
    function refusalDigest(uint256 taskId, bytes32 specHash, uint8 attempt, uint8 reason) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REFUSAL_TYPEHASH, taskId, specHash, attempt, reason)));
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks a spec, records it as a new open task of the sender and emits TaskSubmitted. The caller
    /// checks msg.value and pulls ERC-20 escrow.
    function _submit(TaskSpec calldata spec, bytes32 salt) private returns (uint256 taskId) {
        taskId = uint256(keccak256(abi.encode(block.chainid, address(this), msg.sender, salt)));
        if (spec.requester != msg.sender) revert InvalidSpec("requester must be the sender");
        if (spec.maxPrice == 0) revert NoEscrow();
        if (spec.maxAttempts == 0) revert InvalidSpec("maxAttempts must be at least 1");
        if (spec.deadlineMultiple == 0) revert InvalidSpec("deadlineMultiple must be at least 1");
        uint8 teeTypes = spec.teeTypes;
        if (teeTypes == 0 || teeTypes > 7) revert InvalidSpec("teeTypes must be a non-empty mask of bits 0..2");
        if (spec.category >= CATEGORY_COUNT) revert UnknownCategory(spec.category);
        if (tasks[taskId] != 0) revert TaskExists(taskId);

        bytes32 specHash = keccak256(abi.encode(spec));
        tasks[taskId] = _pack(specHash, 0, 0, TaskStatus.Open);
        emit TaskSubmitted(taskId, msg.sender, specHash, spec);
    }

    /// @dev A task that exists but is no longer open (an unknown task is left to _accept, which reverts).
    function _takenOrClosed(uint256 taskId) private view returns (bool) {
        uint256 word = tasks[taskId];
        return word != 0 && _status(word) != TaskStatus.Open;
    }

    function _pullEscrow(address token, uint256 amount) private {
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @dev Checks that `enclave` (with `operator` and `teeType` from the registry, zero operator when inactive)
    /// may take the open task `taskId` at `offer` (its offer in spec.token), then records the attempt with the
    /// market's deposit and emits TaskAccepted. The caller reads the registry and checks msg.value.
    function _accept(
        uint256 taskId,
        TaskSpec calldata spec,
        address enclave,
        address operator,
        uint8 teeType,
        uint256 config,
        Offer memory offer
    ) private {
        uint256 word = _word(taskId);
        if (_status(word) != TaskStatus.Open) revert TaskNotOpen(taskId, _status(word));
        bytes32 specHash = keccak256(abi.encode(spec));
        if (_commitment(word) != _commit(specHash)) revert SpecMismatch(taskId);
        if (!_isCandidate(spec.candidates, enclave)) revert EnclaveNotCandidate(taskId, enclave);

        if (offer.maxDuration == 0) revert NoOffer(enclave, spec.token);
        if (offer.price > spec.maxPrice) revert PriceAboveMax(offer.price, spec.maxPrice);
        if (offer.cpuMillis < spec.cpuMillis || offer.memoryMb < spec.memoryMb || offer.maxDuration < spec.duration) {
            revert InsufficientResources(enclave);
        }
        if (operator == address(0)) revert EnclaveNotActive(enclave);
        if (operator != msg.sender) revert NotEnclaveOperator(enclave, msg.sender);
        if (spec.teeTypes & (1 << teeType) == 0) revert TeeTypeNotAccepted(teeType, spec.teeTypes);

        uint256 timeRef = _categoryRef(config, spec.category);
        if (timeRef == 0) revert UnknownCategory(spec.category);

        uint40 deadline = uint40(block.timestamp + timeRef * spec.deadlineMultiple);
        uint8 attempt = _attempt(word) + 1;
        // abi.encode(specHash, Assignment(enclave, operator, price, deposit)), without building the struct.
        bytes32 assignmentHash = keccak256(abi.encode(specHash, enclave, operator, offer.price, uint96(uint64(config))));
        tasks[taskId] = _pack(assignmentHash, deadline, attempt, TaskStatus.Accepted);
        emit TaskAccepted(taskId, enclave, operator, attempt, offer.price, uint64(config), deadline);
    }

    /// @dev Checks and records a completion and emits TaskCompleted; the caller makes the payments.
    /// `enclaveKnownActive`: the caller already saw a.enclave active in this transaction (skips the registry call).
    function _complete(
        uint256 taskId,
        TaskSpec calldata spec,
        Assignment calldata a,
        Result calldata r,
        bytes calldata signature,
        bool enclaveKnownActive
    ) private {
        _markCompleted(taskId, spec, a, r, signature, enclaveKnownActive);
        emit TaskCompleted(taskId, a.enclave, a.operator, r.outputDigest, r.provenanceDigest, r.outputCid, r.provenanceCid, a.price);
    }

    /// @dev Adds `amount` to `payout` when it pays the same token to the same account; otherwise pays out the
    /// sum so far and starts a new one.
    function _accrue(Payout memory payout, address token, address to, uint256 amount) private {
        if (payout.token != token || payout.to != to) {
            _pay(payout.token, payout.to, payout.amount);
            (payout.token, payout.to, payout.amount) = (token, to, 0);
        }
        payout.amount += amount;
    }

    /// @dev The word of an accepted task whose spec and assignment the caller passed back unchanged.
    function _acceptedWord(uint256 taskId, TaskSpec calldata spec, Assignment calldata a) private view returns (uint256) {
        return _acceptedWordOf(taskId, keccak256(abi.encode(spec)), a);
    }

    /// @dev As `_acceptedWord`, for a caller that has the spec's hash already.
    function _acceptedWordOf(uint256 taskId, bytes32 specHash, Assignment calldata a) private view returns (uint256 word) {
        word = _word(taskId);
        if (_status(word) != TaskStatus.Accepted) revert TaskNotAccepted(taskId, _status(word));
        if (_commitment(word) != _commit(keccak256(abi.encode(specHash, a)))) revert SpecMismatch(taskId);
    }

    /// @dev Checks a completion (accepted, in time, signed by the accepted and still active enclave) and records it.
    function _markCompleted(
        uint256 taskId,
        TaskSpec calldata spec,
        Assignment calldata a,
        Result calldata r,
        bytes calldata signature,
        bool enclaveKnownActive
    ) private {
        uint256 word = _acceptedWord(taskId, spec, a);
        if (block.timestamp > _deadline(word)) revert DeadlinePassed(taskId, _deadline(word), block.timestamp);
        bytes32 digest = _hashTypedDataV4(
            keccak256(
                abi.encode(
                    COMPLETION_TYPEHASH,
                    taskId,
                    spec.programDigest,
                    spec.inputDigest,
                    r.outputDigest,
                    r.provenanceDigest,
                    keccak256(bytes(r.outputCid)),
                    keccak256(bytes(r.provenanceCid))
                )
            )
        );
        address signer = _recover(digest, signature);
        if (signer != a.enclave) revert InvalidCompletionSignature(taskId, signer);
        if (!enclaveKnownActive && !registry.isActive(a.enclave)) revert EnclaveNotActive(a.enclave);
        tasks[taskId] = _withStatus(word, TaskStatus.Completed);
    }

    /// @dev The signer of `digest`, or the zero address for a malformed signature (never a valid enclave).
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) signer = address(0);
    }

    /// @dev The operator's price (in the task's token) and its deposit (native).
    function _payOperator(address token, Assignment calldata a) private {
        if (token == address(0)) {
            _pay(address(0), a.operator, uint256(a.price) + a.deposit);
        } else {
            _pay(token, a.operator, a.price);
            _pay(address(0), a.operator, a.deposit);
        }
    }

    /// @dev Push payment with bounded gas and no return data copied; if the recipient (or the token) rejects it or
    /// needs more gas, the amount is credited to `owed` instead, so a recipient can never block a state
    /// transition nor make it expensive. Callers update state first (checks-effects-interactions).
    function _pay(address token, address to, uint256 amount) private {
        if (amount == 0) return;
        uint256 reserve = token == address(0) ? NATIVE_PAYMENT_RESERVE : TOKEN_PAYMENT_RESERVE;
        if (gasleft() < reserve) revert PaymentGasTooLow(reserve, gasleft());
        bool ok;
        if (token == address(0)) {
            assembly ("memory-safe") {
                ok := call(NATIVE_PAYMENT_GAS, to, amount, 0, 0, 0, 0)
            }
        } else {
            ok = _tryTokenTransfer(token, to, amount);
        }
        if (!ok) {
            owed[token][to] += amount;
            emit PaymentDeferred(token, to, amount);
        }
    }

    /// @dev `token.transfer(to, amount)` with TOKEN_PAYMENT_GAS: true when it returned true, or returned nothing
    /// from a contract (tokens without a return value), as SafeERC20 accepts. Reads at most one word back.
    function _tryTokenTransfer(address token, address to, uint256 amount) private returns (bool ok) {
        bytes4 selector = IERC20.transfer.selector;
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            mstore(0x00, selector)
            mstore(0x04, and(to, shr(96, not(0))))
            mstore(0x24, amount)
            ok := call(TOKEN_PAYMENT_GAS, token, 0, 0x00, 0x44, 0x00, 0x20)
            if iszero(and(ok, and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1)))) {
                ok := and(ok, and(iszero(returndatasize()), gt(extcodesize(token), 0)))
            }
            mstore(0x40, fmp)
        }
    }

    function _setCategory(uint8 category, uint24 timeRef) private {
        if (category >= CATEGORY_COUNT) revert UnknownCategory(category);
        uint256 shift = 64 + 24 * uint256(category);
        _config = (_config & ~(uint256(type(uint24).max) << shift)) | (uint256(timeRef) << shift);
        emit CategorySet(category, timeRef);
    }

    function _setTaskDeposit(uint64 deposit) private {
        _config = (_config & ~uint256(type(uint64).max)) | deposit;
        emit TaskDepositSet(deposit);
    }

    function _word(uint256 taskId) private view returns (uint256 word) {
        word = tasks[taskId];
        if (word == 0) revert UnknownTask(taskId);
    }

    function _categoryRef(uint256 config, uint8 category) private pure returns (uint256) {
        if (category >= CATEGORY_COUNT) return 0;
        return uint24(config >> (64 + 24 * uint256(category)));
    }

    function _commit(bytes32 hash) private pure returns (bytes32) {
        return bytes32(uint256(hash) & COMMITMENT_MASK);
    }

    function _pack(bytes32 hash, uint40 deadline, uint8 attempt, TaskStatus status) private pure returns (uint256) {
        return (uint256(hash) & COMMITMENT_MASK) | (uint256(deadline) << 16) | (uint256(attempt) << 8) | uint256(status);
    }

    function _withStatus(uint256 word, TaskStatus status) private pure returns (uint256) {
        return (word & ~uint256(0xff)) | uint256(status);
    }

    function _status(uint256 word) private pure returns (TaskStatus) {
        return TaskStatus(uint8(word));
    }

    function _attempt(uint256 word) private pure returns (uint8) {
        return uint8(word >> 8);
    }

    function _deadline(uint256 word) private pure returns (uint40) {
        return uint40(word >> 16);
    }

    function _commitment(uint256 word) private pure returns (bytes32) {
        return bytes32(word & COMMITMENT_MASK);
    }

    function _isCandidate(address[] calldata candidates, address enclave) private pure returns (bool) {
        if (candidates.length == 0) return true;
        for (uint256 i = 0; i < candidates.length; ++i) {
            if (candidates[i] == enclave) return true;
        }
        return false;
    }
}
