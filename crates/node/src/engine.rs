//! Wires one validator together: simplex consensus behind marshal's inline-verification
//! wrapper, marshal (ordered finalized blocks with backfill through the resolver), buffered
//! broadcast for block dissemination, and the chain's finalizer. The p2p channels are passed
//! in, so the same wiring runs on authenticated TCP p2p in production and on commonware's
//! simulated network in deterministic tests.

use crate::chain::{App, Chain, run_finalizer};
use commonware_broadcast::buffered;
use commonware_consensus::{
    Reporter,
    marshal::{self, Start, Update, core::Actor, standard::Inline},
    simplex::{
        self, Floor, ForwardPolicy, SkipBudget, SkipPolicy, elector::RoundRobin,
        scheme::ed25519::Scheme, types::Finalization,
    },
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{
    Digested, Sha256, certificate::ConstantProvider, certificate::Verifier as _, ed25519,
};
use commonware_p2p::{Blocker, Provider, Receiver, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{
    Clock, Handle, Metrics, Spawner, Storage, buffer::paged::CacheRef, buffer::paged::page_size,
};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU64, NZUsize, acknowledgement::Exact, ordered::Set};
use rand_core10::CryptoRng;
use std::{num::NonZeroU64, sync::Arc, time::Duration};
use verity_types::{Block, Hash, block::BlockLimits};

pub use verity_types::proof::NAMESPACE;

/// Views for which the marshal keeps the blocks it verified or saw notarized (uncompressed, in
/// its cache) behind the last finalization it processed: what a peer still deciding those
/// views may ask for. The consensus journal keeps votes for as many views, and a peer further
/// behind fetches finalized blocks by height from the blocks archive, which keeps them all.
pub const MARSHAL_VIEW_RETENTION: u64 = 256;

/// Timing and size settings of consensus.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Storage partition prefix (unique per node within one storage root).
    pub partition_prefix: String,
    /// Leader timeout.
    pub leader_timeout: Duration,
    /// Certification timeout (must exceed the leader timeout).
    pub certification_timeout: Duration,
    /// Retry interval after a timeout.
    pub timeout_retry: Duration,
    /// What a block may hold (the same on every validator).
    pub block_limits: BlockLimits,
    /// zstd level of the finalized-blocks archive, or `None` to store blocks as they are.
    /// Fixed for the life of a data folder ([crate::data_format]).
    pub block_compression: Option<u8>,
    /// Views per file of the marshal's cache of blocks not yet finalized; files are deleted
    /// whole once all their views are past [MARSHAL_VIEW_RETENTION]. Fixed for the life of a
    /// data folder (the cache refuses files written with another size):
    /// [crate::data_format::DataFormat::marshal_views_per_section].
    pub marshal_views_per_section: NonZeroU64,
}

/// The p2p channels a validator uses.
pub struct Channels<S, R> {
    /// Consensus votes.
    pub votes: (S, R),
    /// Consensus certificates.
    pub certificates: (S, R),
    /// Consensus resolver.
    pub resolver: (S, R),
    /// Block dissemination.
    pub broadcast: (S, R),
    /// Marshal backfill.
    pub backfill: (S, R),
}

/// Channel ids on the p2p network.
pub mod channel {
    /// Consensus votes.
    pub const VOTES: u64 = 0;
    /// Consensus certificates.
    pub const CERTIFICATES: u64 = 1;
    /// Consensus resolver.
    pub const RESOLVER: u64 = 2;
    /// Block dissemination.
    pub const BROADCAST: u64 = 3;
    /// Marshal backfill.
    pub const BACKFILL: u64 = 4;
    /// Transaction gossip.
    pub const TXS: u64 = 5;
    /// Reading gossip.
    pub const READINGS: u64 = 6;
}

#[derive(Clone)]
struct Finalized {
    tx: futures::channel::mpsc::UnboundedSender<(Digested<Block>, Exact)>,
}

impl Reporter for Finalized {
    type Activity = Update<Block>;
    fn report(&mut self, update: Update<Block>) -> commonware_actor::Feedback {
        if let Update::Block(block, ack) = update {
            // If the finalizer is gone the node is halting; dropping the ack stops marshal.
            let _ = self.tx.unbounded_send((block, ack));
        }
        commonware_actor::Feedback::Ok
    }
}

fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    codec_config: C,
    compression: Option<u8>,
) -> immutable::Config<C> {
    let p = format!("{prefix}-{name}");
    immutable::Config {
        metadata_partition: format!("{p}-metadata"),
        freezer_table_partition: format!("{p}-freezer-table"),
        freezer_table_initial_size: 1 << 16,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 12,
        freezer_key_partition: format!("{p}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{p}-freezer-value"),
        freezer_value_target_size: 1 << 28,
        freezer_value_compression: compression,
        ordinal_partition: format!("{p}-ordinal"),
        items_per_section: NZU64!(1 << 14),
        freezer_key_write_buffer: NZUsize!(1 << 20),
        freezer_value_write_buffer: NZUsize!(1 << 20),
        ordinal_write_buffer: NZUsize!(1 << 20),
        replay_buffer: NZUsize!(1 << 20),
        codec_config,
    }
}

/// The handle of a running validator's marshal, for reading finalized blocks.
pub type MarshalMailbox = marshal::core::Mailbox<Scheme, marshal::standard::Standard<Block>>;

/// Starts consensus, marshal, broadcast and the finalizer for `chain`. Returns the marshal
/// mailbox (to read finalized blocks) and the handles of the started actors.
#[allow(clippy::too_many_arguments)]
pub async fn start<E, S, R, B, P>(
    context: E,
    config: EngineConfig,
    chain: Arc<Chain<E>>,
    signer: ed25519::PrivateKey,
    channels: Channels<S, R>,
    blocker: B,
    peers: P,
) -> (MarshalMailbox, Vec<Handle<()>>)
where
    E: Spawner + Clock + Storage + Metrics + commonware_storage::Context + CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
    B: Blocker<PublicKey = ed25519::PublicKey> + Clone,
    P: Provider<PublicKey = ed25519::PublicKey> + Clone,
{
    use commonware_cryptography::Signer as _;
    let me = signer.public_key();
    let participants = Set::from_iter_dedup(chain.validators.iter().cloned());
    let scheme = Scheme::signer(NAMESPACE, participants, signer).expect("this node is a validator");
    let page_cache = CacheRef::new(page_size(4096), NZUsize!(8192));
    let prefix = &config.partition_prefix;
    let genesis = Digested::precomputed(chain.genesis_block.clone(), chain.genesis_block.hash());
    let genesis_digest: Hash = chain.genesis_block.hash();
    let epocher = FixedEpocher::new(NZU64!(u64::MAX));
    // Blocks from peers mostly hold readings already in this node's pool (gossip brought them):
    // those are not decoded again.
    let mut block_limits = config.block_limits.clone();
    block_limits.known = Some(chain.known_readings());

    let finalizations: immutable::Archive<E, Hash, Finalization<Scheme, Hash>> =
        immutable::Archive::init(
            context.child("finalizations"),
            archive_config(
                prefix,
                "finalizations",
                &page_cache,
                Scheme::certificate_codec_config_unbounded(),
                // Signatures do not compress.
                None,
            ),
        )
        .await
        .expect("finalizations archive opens");
    let blocks: immutable::Archive<E, Hash, Arc<Block>> = immutable::Archive::init(
        context.child("blocks"),
        archive_config(
            prefix,
            "blocks",
            &page_cache,
            block_limits.clone(),
            config.block_compression,
        ),
    )
    .await
    .expect("blocks archive opens");

    let (actor, mailbox, _floor) =
        Actor::<_, marshal::standard::Standard<Block>, _, _, _, _, _>::init(
            context.child("marshal"),
            finalizations,
            blocks,
            marshal::Config {
                provider: ConstantProvider::<Scheme, Epoch>::new(scheme.clone()),
                epocher: epocher.clone(),
                start: Start::Genesis(genesis),
                partition_prefix: format!("{prefix}-marshal"),
                mailbox_size: NZUsize!(1024),
                view_retention: ViewDelta::new(MARSHAL_VIEW_RETENTION),
                prunable_items_per_section: config.marshal_views_per_section,
                page_cache: page_cache.clone(),
                replay_buffer: NZUsize!(1 << 20),
                key_write_buffer: NZUsize!(1 << 20),
                value_write_buffer: NZUsize!(1 << 20),
                block_codec_config: block_limits.clone(),
                max_repair: NZUsize!(20),
                max_pending_acks: NZUsize!(16),
                strategy: Sequential,
            },
        )
        .await;

    let (resolver_rx, resolver) = marshal::resolver::p2p::init(
        context.child("backfill"),
        marshal::resolver::p2p::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: NZUsize!(1024),
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        channels.backfill,
    );

    let (buffer, buffer_mailbox) = buffered::Engine::new(
        context.child("buffer"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: NZUsize!(1024),
            deque_size: 10,
            priority: false,
            codec_config: block_limits,
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    let mut handles = vec![buffer.start(channels.broadcast)];

    let (tx, rx) = futures::channel::mpsc::unbounded();
    let finalizer_chain = chain.clone();
    handles.push(
        context
            .child("finalizer")
            .spawn(move |ctx| run_finalizer(finalizer_chain, ctx, rx)),
    );
    handles.push(actor.start(Finalized { tx }, buffer_mailbox, (resolver_rx, resolver)));

    let app = App::new(chain, me);
    let inline = Inline::new(context.child("application"), app, mailbox.clone(), epocher);
    let engine = simplex::Engine::new(
        context.child("consensus"),
        simplex::Config {
            scheme,
            elector: RoundRobin::<Sha256>::default(),
            blocker,
            automaton: inline.clone(),
            relay: inline.clone(),
            reporter: inline,
            strategy: Sequential,
            partition: format!("{prefix}-consensus"),
            mailbox_size: NZUsize!(1024),
            epoch: Epoch::zero(),
            floor: Floor::Genesis(genesis_digest),
            replay_buffer: NZUsize!(1 << 20),
            write_buffer: NZUsize!(1 << 20),
            page_cache,
            leader_timeout: config.leader_timeout,
            certification_timeout: config.certification_timeout,
            timeout_retry: config.timeout_retry,
            view_retention: ViewDelta::new(256),
            skip: SkipPolicy::Enabled {
                timeout: config.timeout_retry.max(config.certification_timeout) * 2,
                budget: SkipBudget::Participants,
            },
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            forward: ForwardPolicy::Disabled,
            track_historical_votes: false,
        },
    );
    handles.push(engine.start(channels.votes, channels.certificates, channels.resolver));
    (mailbox, handles)
}
