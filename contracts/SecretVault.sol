// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IEnclaveRegistry} from "./IEnclaveRegistry.sol";

/// @title Secret tokens (ERC-721) whose secret is split k-of-n and held by clusters of enclaves.
/// @notice A token's owner stores a secret: the token is minted to them and the vault records the threshold k,
/// the share count n, a commitment to the n shares (`sharesRoot`, opaque here: enclaves and the owner check
/// shares against it off chain) and a version. Share i lives in the enclave at slot i of a cluster; every
/// cluster of n slots holds the same share set. Each slot enclave confirms the shares it holds with one
/// EIP-712 signature over a list of (token, version, sharesRoot), relayed by anyone; when all n slots of a
/// cluster have confirmed a token's current version, `SecretSynced` is emitted once per version and membership.
/// @dev Roles: DEFAULT_ADMIN_ROLE grants and revokes roles; CLUSTER_ADMIN_ROLE creates clusters and replaces
/// a slot's enclave. A replacement of slot j bumps the cluster's epoch, which every confirmation signs, and
/// invalidates slot j's confirmations only: the other members still hold the same shares, so theirs keep
/// counting, and a synced cluster is still one whose current members all hold the current shares.
/// A re-share (new shares of the same secret, new `sharesRoot`, version + 1) is signed by at least k enclaves
/// of one cluster. The registry is trusted and only read (view calls), before any state changes.
contract SecretVault is ERC721, EIP712, AccessControl {
    bytes32 public constant CLUSTER_ADMIN_ROLE = keccak256("CLUSTER_ADMIN_ROLE");

    /// @notice Confirmation masks are uint32: at most 32 shares, hence slots per cluster. At least 2: a 1-of-n
    /// "split" would put the whole secret in every enclave (src/protocol/vault-shares.ts refuses it too).
    uint8 public constant MAX_SHARES = 32;

    bytes32 public constant SHARE_TYPEHASH = keccak256("Share(uint256 tokenId,uint64 version,bytes32 sharesRoot)");
    bytes32 public constant CONFIRMATION_TYPEHASH = keccak256(
        "Confirmation(uint64 cluster,uint32 epoch,uint8 slot,Share[] shares)Share(uint256 tokenId,uint64 version,bytes32 sharesRoot)"
    );
    bytes32 public constant RESHARE_TYPEHASH = keccak256(
        "Reshare(uint256 tokenId,uint64 version,bytes32 sharesRoot,bytes32 newSharesRoot,uint64 cluster,uint32 epoch)"
    );

    IEnclaveRegistry public immutable registry;

    /// @dev One storage slot. `shares` is zero for an id never used; a burned token keeps its record.
    struct Secret {
        uint8 threshold;
        uint8 shares;
        uint64 version;
        bool burned;
        bytes32 sharesRoot;
    }

    struct Cluster {
        uint8 size;
        uint32 epoch;
    }

    /// @dev Where an enclave sits; an enclave is in at most one cluster, ever (a replaced one stays out).
    struct Membership {
        uint64 cluster;
        uint8 slot;
        bool used;
    }

    /// @dev One storage slot: the slots of `cluster` that confirmed `version`, as last written under `epoch`.
    /// Bit i still counts while slot i's member took its slot at or before `epoch` (see `slotSince`).
    struct Sync {
        uint64 version;
        uint32 epoch;
        uint32 mask;
        bool synced;
    }

    /// @notice What a slot enclave signs: it holds share `slot` of each listed token at that version and root.
    struct ShareRef {
        uint256 tokenId;
        uint64 version;
    }

    struct Confirmation {
        uint64 cluster;
        uint8 slot;
        ShareRef[] shares;
        bytes signature;
    }

    /// @notice One secret of a `storeBatch`: the arguments of `store`.
    struct StoreRequest {
        bytes32 salt;
        uint8 threshold;
        uint8 shares;
        bytes32 sharesRoot;
    }

    struct SlotSignature {
        uint8 slot;
        bytes signature;
    }

    uint64 public clusterCount;
    mapping(uint64 cluster => Cluster) internal _clusters;
    mapping(uint64 cluster => mapping(uint8 slot => address)) public memberAt;
    mapping(address enclave => Membership) public membershipOf;
    mapping(uint256 tokenId => Secret) internal _secrets;
    mapping(uint256 tokenId => mapping(uint64 cluster => Sync)) internal _syncs;
    /// @notice The cluster epoch at which each slot's current member took it (0 for a founding member): a
    /// confirmation recorded under epoch e by slot i still counts iff slotSince[cluster][i] <= e.
    /// @dev Declared after every other state variable: enclaves prove storage words by their slot index.
    mapping(uint64 cluster => mapping(uint8 slot => uint32 epoch)) public slotSince;

    error ZeroAddress();
    error InvalidClusterSize(uint256 size);
    error UnknownCluster(uint64 cluster);
    error InvalidSlot(uint64 cluster, uint8 slot);
    error EnclaveInactive(address enclave);
    error EnclaveAlreadyMember(address enclave);
    error InvalidShares(uint8 threshold, uint8 shares);
    error ZeroSharesRoot();
    error TokenIdUsed(uint256 tokenId);
    error UnknownToken(uint256 tokenId);
    error NotTokenOwner(uint256 tokenId, address caller);
    error ClusterSizeMismatch(uint256 tokenId, uint64 cluster, uint8 shares, uint8 size);
    error WrongVersion(uint256 tokenId, uint64 given, uint64 current);
    error InvalidSignature();
    error NotSlotEnclave(uint64 cluster, uint8 slot, address signer);
    error AlreadyConfirmed(uint256 tokenId, uint64 cluster, uint8 slot);
    error EmptyBatch();
    error SlotsNotAscending(uint8 slot);
    error NotEnoughSignatures(uint256 given, uint8 threshold);

    event ClusterCreated(uint64 indexed cluster, address[] members);
    event ClusterMemberReplaced(uint64 indexed cluster, uint8 slot, address indexed previous, address indexed enclave, uint32 epoch);
    event SecretStored(uint256 indexed tokenId, address indexed owner, uint8 threshold, uint8 shares, bytes32 sharesRoot);
    event ShareConfirmed(uint256 indexed tokenId, uint64 indexed cluster, uint8 slot, uint64 version, address indexed enclave);
    event SecretSynced(uint256 indexed tokenId, uint64 indexed cluster, uint64 version);
    event SecretReshared(uint256 indexed tokenId, uint64 indexed cluster, uint64 version, bytes32 sharesRoot);
    event SecretBurned(uint256 indexed tokenId, address indexed owner);

    constructor(IEnclaveRegistry registry_, address admin, address clusterAdmin)
        ERC721("Cloister Secret", "SECRET")
        EIP712("Cloister Vault", "1")
    {
        if (address(registry_) == address(0) || admin == address(0) || clusterAdmin == address(0)) revert ZeroAddress();
        registry = registry_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(CLUSTER_ADMIN_ROLE, clusterAdmin);
    }

    // ---------------------------------------------------------------- clusters

    /// @notice Creates a cluster of 2 to 32 slots, slot i being `members[i]`; each must be active and in no cluster yet.
    function createCluster(address[] calldata members) external onlyRole(CLUSTER_ADMIN_ROLE) returns (uint64 cluster) {
        uint256 size = members.length;
        if (size < 2 || size > MAX_SHARES) revert InvalidClusterSize(size);
        for (uint256 i = 0; i < size; ++i) {
            _requireNewActive(members[i]);
            for (uint256 j = 0; j < i; ++j) {
                if (members[j] == members[i]) revert EnclaveAlreadyMember(members[i]);
            }
        }

        cluster = ++clusterCount;
        _clusters[cluster] = Cluster({size: uint8(size), epoch: 0});
        for (uint256 i = 0; i < size; ++i) {
            memberAt[cluster][uint8(i)] = members[i];
            membershipOf[members[i]] = Membership({cluster: cluster, slot: uint8(i), used: true});
        }
        emit ClusterCreated(cluster, members);
    }

    /// @notice Puts `enclave` at `slot` of `cluster` (a revoked or failing member's replacement) and bumps the
    /// cluster's epoch: `slot`'s confirmations stop counting (the new member confirms again), the other slots'
    /// stay, so that `SecretSynced` still means the current members hold the shares.
    function replaceMember(uint64 cluster, uint8 slot, address enclave) external onlyRole(CLUSTER_ADMIN_ROLE) {
        Cluster storage c = _requireCluster(cluster);
        if (slot >= c.size) revert InvalidSlot(cluster, slot);
        _requireNewActive(enclave);

        address previous = memberAt[cluster][slot];
        uint32 epoch = ++c.epoch;
        memberAt[cluster][slot] = enclave;
        slotSince[cluster][slot] = epoch;
        membershipOf[enclave] = Membership({cluster: cluster, slot: slot, used: true});
        emit ClusterMemberReplaced(cluster, slot, previous, enclave, epoch);
    }

    // ---------------------------------------------------------------- secrets

    /// @notice The id `store` mints for `owner` and `salt`: computable before the call, so shares can be bound to it.
    function tokenIdOf(address owner, bytes32 salt) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(owner, salt)));
    }

    /// @notice Mints a secret token to the caller and records its k-of-n split (2 <= k <= n <= 32) at version 1.
    function store(bytes32 salt, uint8 threshold, uint8 shares, bytes32 sharesRoot) external returns (uint256 tokenId) {
        return _store(salt, threshold, shares, sharesRoot);
    }

    /// @notice Stores many secrets in one call, exactly as that many `store` calls in order would (an owner storing
    /// a thousand secrets pays one transaction's overhead per batch, not per secret). All or nothing: an item that
    /// `store` would refuse reverts the whole call with that item's error.
    function storeBatch(StoreRequest[] calldata items) external returns (uint256[] memory tokenIds) {
        if (items.length == 0) revert EmptyBatch();
        tokenIds = new uint256[](items.length);
        for (uint256 i = 0; i < items.length; ++i) {
            StoreRequest calldata r = items[i];
            tokenIds[i] = _store(r.salt, r.threshold, r.shares, r.sharesRoot);
        }
    }

    /// @notice Relays slot enclaves' confirmations: each item is one enclave's signature over many tokens.
    /// All or nothing: an item that cannot be recorded (including one already recorded) reverts the call.
    function confirm(Confirmation[] calldata items) external {
        if (items.length == 0) revert EmptyBatch();
        for (uint256 i = 0; i < items.length; ++i) _confirm(items[i]);
    }

    /// @notice Replaces a token's shares with new shares of the same secret (version + 1), signed by at least
    /// k enclaves of `cluster`, in ascending slot order. Every cluster then syncs the new version.
    function reshare(
        uint256 tokenId,
        uint64 version,
        bytes32 newSharesRoot,
        uint64 cluster,
        SlotSignature[] calldata signatures
    ) external {
        Secret storage s = _requireLive(tokenId);
        if (newSharesRoot == bytes32(0)) revert ZeroSharesRoot();
        if (version != s.version) revert WrongVersion(tokenId, version, s.version);
        Cluster storage c = _requireCluster(cluster);
        if (c.size != s.shares) revert ClusterSizeMismatch(tokenId, cluster, s.shares, c.size);
        if (signatures.length < s.threshold) revert NotEnoughSignatures(signatures.length, s.threshold);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(RESHARE_TYPEHASH, tokenId, version, s.sharesRoot, newSharesRoot, cluster, c.epoch))
        );
        for (uint256 i = 0; i < signatures.length; ++i) {
            uint8 slot = signatures[i].slot;
            if (i > 0 && slot <= signatures[i - 1].slot) revert SlotsNotAscending(slot);
            _requireSlotSigner(cluster, c.size, slot, digest, signatures[i].signature);
        }

        uint64 next = version + 1;
        s.version = next;
        s.sharesRoot = newSharesRoot;
        emit SecretReshared(tokenId, cluster, next, newSharesRoot);
    }

    /// @notice Burns the token; enclaves drop its shares when they see `SecretBurned`. Owner only.
    function burn(uint256 tokenId) external {
        Secret storage s = _requireLive(tokenId);
        address owner = _ownerOf(tokenId);
        if (owner != msg.sender) revert NotTokenOwner(tokenId, msg.sender);

        s.burned = true;
        emit SecretBurned(tokenId, owner);
        _burn(tokenId);
    }

    // ---------------------------------------------------------------- views

    function secretOf(uint256 tokenId) external view returns (Secret memory) {
        return _secrets[tokenId];
    }

    function clusterOf(uint64 cluster) external view returns (uint8 size, uint32 epoch, address[] memory members) {
        Cluster storage c = _clusters[cluster];
        members = new address[](c.size);
        for (uint256 i = 0; i < c.size; ++i) members[i] = memberAt[cluster][uint8(i)];
        return (c.size, c.epoch, members);
    }

    /// @notice The slots of `cluster` whose current members confirmed the token's current version; `synced`
    /// when they are all of them.
    function syncOf(uint256 tokenId, uint64 cluster) external view returns (uint32 mask, bool synced) {
        Sync storage y = _syncs[tokenId][cluster];
        if (y.version != _secrets[tokenId].version) return (0, false);
        Cluster storage c = _clusters[cluster];
        if (y.epoch == c.epoch) return (y.mask, y.synced);
        // A member was replaced since: its slot no longer counts, so the cluster is not synced.
        return (y.mask & _slotsHeldSince(cluster, c.size, y.epoch), false);
    }

    function confirmationDigest(uint64 cluster, uint32 epoch, uint8 slot, ShareRef[] calldata shares) external view returns (bytes32) {
        return _confirmationDigest(cluster, epoch, slot, shares);
    }

    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev What every share of one confirmation item shares; a struct keeps the stack shallow. `heldAt` and
    /// `heldSince` cache the last `_slotsHeldSince(cluster, size, heldAt)` (most tokens share the epoch).
    struct Signed {
        uint64 cluster;
        uint32 epoch;
        uint8 size;
        uint8 slot;
        address enclave;
        uint32 heldAt;
        uint32 heldSince;
        bool held;
    }

    /// @dev Checks, records and emits, then mints: the receiver hook of a contract owner is the only external call.
    function _store(bytes32 salt, uint8 threshold, uint8 shares, bytes32 sharesRoot) internal returns (uint256 tokenId) {
        if (threshold < 2 || threshold > shares || shares > MAX_SHARES) revert InvalidShares(threshold, shares);
        if (sharesRoot == bytes32(0)) revert ZeroSharesRoot();
        tokenId = tokenIdOf(msg.sender, salt);
        if (_secrets[tokenId].shares != 0) revert TokenIdUsed(tokenId);

        _secrets[tokenId] = Secret({threshold: threshold, shares: shares, version: 1, burned: false, sharesRoot: sharesRoot});
        emit SecretStored(tokenId, msg.sender, threshold, shares, sharesRoot);
        _safeMint(msg.sender, tokenId);
    }

    function _confirm(Confirmation calldata item) internal {
        Cluster storage c = _requireCluster(item.cluster);
        if (item.shares.length == 0) revert EmptyBatch();
        Signed memory g = Signed({
            cluster: item.cluster, epoch: c.epoch, size: c.size, slot: item.slot, enclave: address(0), heldAt: 0, heldSince: 0, held: false
        });
        g.enclave = _requireSlotSigner(
            g.cluster, g.size, g.slot, _confirmationDigest(g.cluster, g.epoch, g.slot, item.shares), item.signature
        );
        for (uint256 i = 0; i < item.shares.length; ++i) _record(g, item.shares[i].tokenId, item.shares[i].version);
    }

    /// @dev Records slot `g.slot`'s confirmation of `tokenId` at `version`; emits SecretSynced on the last slot.
    /// A record written under an earlier epoch keeps the bits of the slots whose members have not changed since.
    function _record(Signed memory g, uint256 tokenId, uint64 version) internal {
        Secret storage s = _requireLive(tokenId);
        if (version != s.version) revert WrongVersion(tokenId, version, s.version);
        if (s.shares != g.size) revert ClusterSizeMismatch(tokenId, g.cluster, s.shares, g.size);
        Sync memory m = _syncs[tokenId][g.cluster];
        if (m.version != version) {
            m = Sync({version: version, epoch: g.epoch, mask: 0, synced: false});
        } else if (m.epoch != g.epoch) {
            if (!g.held || g.heldAt != m.epoch) {
                (g.heldAt, g.heldSince, g.held) = (m.epoch, _slotsHeldSince(g.cluster, g.size, m.epoch), true);
            }
            // A replaced slot's bit is gone, so the record is not synced any more.
            m = Sync({version: version, epoch: g.epoch, mask: m.mask & g.heldSince, synced: false});
        }
        uint32 bit = uint32(1) << g.slot;
        if (m.mask & bit != 0) revert AlreadyConfirmed(tokenId, g.cluster, g.slot);
        m.mask |= bit;
        emit ShareConfirmed(tokenId, g.cluster, g.slot, version, g.enclave);
        uint32 full = g.size == MAX_SHARES ? type(uint32).max : (uint32(1) << g.size) - 1;
        if (m.mask == full) {
            m.synced = true;
            emit SecretSynced(tokenId, g.cluster, version);
        }
        _syncs[tokenId][g.cluster] = m;
    }

    /// @dev The slots of `cluster` whose current member took the slot at or before `epoch`, as a mask.
    function _slotsHeldSince(uint64 cluster, uint8 size, uint32 epoch) internal view returns (uint32 held) {
        for (uint8 i = 0; i < size; ++i) {
            if (slotSince[cluster][i] <= epoch) held |= uint32(1) << i;
        }
    }

    function _confirmationDigest(uint64 cluster, uint32 epoch, uint8 slot, ShareRef[] calldata shares) internal view returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](shares.length);
        for (uint256 i = 0; i < shares.length; ++i) {
            // The root the enclave checked its share against is signed too: it is read here, not relayed.
            hashes[i] = keccak256(
                abi.encode(SHARE_TYPEHASH, shares[i].tokenId, shares[i].version, _secrets[shares[i].tokenId].sharesRoot)
            );
        }
        return _hashTypedDataV4(
            keccak256(abi.encode(CONFIRMATION_TYPEHASH, cluster, epoch, slot, keccak256(abi.encodePacked(hashes))))
        );
    }

    /// @dev Recovers the signer of `digest` and requires it to be the active enclave at `slot` of `cluster`.
    function _requireSlotSigner(uint64 cluster, uint8 size, uint8 slot, bytes32 digest, bytes calldata signature)
        internal
        view
        returns (address signer)
    {
        if (slot >= size) revert InvalidSlot(cluster, slot);
        ECDSA.RecoverError err;
        (signer, err,) = ECDSA.tryRecover(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        if (signer != memberAt[cluster][slot]) revert NotSlotEnclave(cluster, slot, signer);
        if (!registry.isActive(signer)) revert EnclaveInactive(signer);
    }

    function _requireNewActive(address enclave) internal view {
        if (enclave == address(0)) revert ZeroAddress();
        if (membershipOf[enclave].used) revert EnclaveAlreadyMember(enclave);
        if (!registry.isActive(enclave)) revert EnclaveInactive(enclave);
    }

    function _requireCluster(uint64 cluster) internal view returns (Cluster storage c) {
        c = _clusters[cluster];
        if (c.size == 0) revert UnknownCluster(cluster);
    }

    function _requireLive(uint256 tokenId) internal view returns (Secret storage s) {
        s = _secrets[tokenId];
        if (s.shares == 0 || s.burned) revert UnknownToken(tokenId);
    }
}
