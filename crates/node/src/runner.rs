//! Runs a validator from its configuration file: opens storage under the data folder, connects
//! to the other validators over authenticated p2p, starts consensus, the transaction gossip and
//! the HTTP API, and stops cleanly on SIGINT or SIGTERM.

use crate::{
    api::{self, ApiState},
    chain::{Chain, ChainLimits},
    config::NodeConfig,
    data_format::DataFormat,
    engine::{self, Channels, EngineConfig, NAMESPACE, channel},
    gossip,
    index::Index,
    pool::Pool,
    readings::ReadingPool,
};
use anyhow::{Context as _, anyhow};
use commonware_codec::DecodeExt as _;
use commonware_consensus::types::Height;
use commonware_cryptography::{ChaCha20Poly1305, Signer as _, ed25519};
use commonware_p2p::{Address, AddressableManager as _, authenticated::lookup};
use commonware_runtime::{
    Metrics as _, Quota, Runner as _, Spawner as _, Supervisor as _, tokio as cw,
};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::{NZU32, NZUsize, ordered::Map};
use std::{sync::Arc, time::Duration};
use tracing::{info, warn};
use verity_types::{Genesis, block::BlockLimits};

/// Messages per second each p2p channel (votes, certificates, resolver, broadcast, backfill,
/// transaction gossip, reading gossip) may carry to each peer.
pub const P2P_CHANNEL_RATE: std::num::NonZeroU32 = NZU32!(10_000);

/// Messages each p2p channel may send to, or queue from, one peer at once before
/// [P2P_CHANNEL_RATE] applies. The network preallocates a mailbox slot for every message of
/// every channel's burst from every peer (about a kilobyte each), so this bounds memory: with
/// a burst as large as the rate, one second's worth, a node held 140 MiB of mailboxes with no
/// peer at all and four times that with three peers. Consensus sends a few messages per view
/// and gossip one batch per few milliseconds, far below it.
pub const P2P_CHANNEL_BURST: std::num::NonZeroU32 = NZU32!(1_024);

/// Reads a consensus key file (hex of the 32-byte Ed25519 seed).
pub fn read_validator_key(path: &std::path::Path) -> anyhow::Result<ed25519::PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read validator key {}", path.display()))?;
    let bytes = hex::decode(text.trim()).context("validator key is not hex")?;
    ed25519::PrivateKey::decode(bytes::Bytes::from(bytes))
        .map_err(|e| anyhow!("invalid validator key: {e}"))
}

/// Parses the validators' consensus keys from the genesis.
pub fn validator_keys(genesis: &Genesis) -> anyhow::Result<Vec<ed25519::PublicKey>> {
    genesis
        .validator_keys()?
        .into_iter()
        .map(|k| {
            ed25519::PublicKey::decode(bytes::Bytes::copy_from_slice(&k))
                .map_err(|e| anyhow!("invalid validator key in genesis: {e}"))
        })
        .collect()
}

/// Runs the node until it is told to stop.
pub fn run(config: NodeConfig) -> anyhow::Result<()> {
    let genesis_bytes = std::fs::read(&config.node.genesis)
        .with_context(|| format!("cannot read genesis {}", config.node.genesis.display()))?;
    let genesis = Genesis::from_json(&genesis_bytes)?;
    let validators = validator_keys(&genesis)?;
    let signer = read_validator_key(&config.node.key)?;
    let me = signer.public_key();
    if !validators.contains(&me) {
        return Err(anyhow!(
            "this node's key {me} is not a validator in the genesis"
        ));
    }
    // Fail now, with the address, if the p2p port is taken (the p2p listener would panic), before
    // opening the data folder, which can take long (a migration).
    std::net::TcpListener::bind(config.p2p.listen)
        .with_context(|| format!("cannot listen for p2p on {}", config.p2p.listen))?;
    std::fs::create_dir_all(&config.node.data_dir)
        .with_context(|| format!("cannot create {}", config.node.data_dir.display()))?;
    let (index, format) = open_index(&config.node.data_dir, config.node.index_cache_mib << 20)?;
    let storage = config.node.data_dir.join(crate::data_format::STORAGE_DIR);
    let runtime = cw::Config::new()
        .with_worker_threads(config.node.worker_threads)
        .with_storage_directory(storage)
        .with_tcp_nodelay(Some(true))
        .with_catch_panics(false);
    cw::Runner::new(runtime).start(move |context| async move {
        run_in(context, config, genesis, validators, signer, index, format).await
    })
}

/// Opens the query index of the data folder `data_dir` in the layout its format says, moving
/// entries where a newer layout keeps them first: a format 7 folder's transaction entries
/// move from `index.redb` into its store and the folder becomes format 8
/// ([crate::data_format]). Long moves log their progress.
pub fn open_index(
    data_dir: &std::path::Path,
    cache_bytes: usize,
) -> anyhow::Result<(Index, DataFormat)> {
    use crate::{
        data_format,
        index_store::{self, Holds},
    };
    let mut format = data_format::open(data_dir)?;
    let index_path = data_dir.join("index.redb");
    if format.0 == data_format::MOVES_TO_CURRENT {
        // Into the store where it is, before it takes the current folder's name: until the
        // marker says format 8, a node reads this folder as format 7.
        let dir = index_store::folder(data_dir, Holds::Readings)?;
        Index::open_with_cache(&index_path, cache_bytes)?.with_index_store(
            &dir,
            Holds::ReadingsAndTransactions,
            move_progress("transaction receipts, histories and block lists", &dir),
        )?;
        format = data_format::upgrade(data_dir, DataFormat(data_format::CURRENT))?;
    }
    let mut index = Index::open_with_cache(&index_path, cache_bytes)?;
    if !format.compact_index() {
        index = index.writing_json_entries();
    }
    if let Some(holds) = format.index_store() {
        let dir = index_store::folder(data_dir, holds)?;
        index =
            index.with_index_store(&dir, holds, move_progress("readings kept by device", &dir))?;
    }
    Ok((index, format))
}

/// Logs a move of entries from `index.redb` into the store at `dir` every tenth of the way,
/// and when done.
fn move_progress(what: &'static str, dir: &std::path::Path) -> impl FnMut(u64, u64) + use<> {
    let dir = dir.display().to_string();
    let mut shown = 0;
    move |done, total| {
        let tenths = done * 10 / total.max(1);
        if tenths > shown || done == total {
            shown = tenths;
            info!(done, total, "moving {what} from index.redb into {dir}");
        }
    }
}

async fn run_in(
    context: cw::Context,
    config: NodeConfig,
    genesis: Genesis,
    validators: Vec<ed25519::PublicKey>,
    signer: ed25519::PrivateKey,
    index: Index,
    format: DataFormat,
) -> anyhow::Result<()> {
    let me = signer.public_key();
    let limits = ChainLimits {
        max_block_txs: config.consensus.max_block_txs,
        max_block_readings: config.consensus.max_block_readings,
        max_block_verify_cost: config.consensus.max_block_verify_cost,
        max_block_bytes: config.consensus.max_block_bytes,
        max_clock_skew_ms: config.consensus.max_clock_skew_ms,
        max_nonce_ahead: config.pool.max_per_account as u64,
    };
    let pool = Pool::new(config.pool.max_txs, config.pool.max_per_account);
    let readings = ReadingPool::new(config.pool.max_readings, config.pool.max_per_device);
    let mut chain = Chain::open(
        context.child("chain"),
        "node",
        genesis,
        validators.clone(),
        Some(index),
        limits,
        (pool, readings),
    )
    .await?;
    // Block verification checks reading signatures on blocking threads, off the executor.
    chain.set_verifier(crate::readings::blocking_verifier());
    chain.set_tx_verifier(crate::tx_sigs::blocking_tx_verifier());
    chain.set_idle_block_interval(Duration::from_millis(
        config.consensus.idle_block_interval_ms,
    ));
    let chain = Arc::new(chain);
    info!(
        node = config.node.name,
        chain_id = %chain.chain_id,
        height = chain.committed().await.height,
        data_format = format.0,
        "state opened"
    );

    // Authenticated p2p between the validators named in the genesis.
    let handshake = Cups::<_, ChaCha20Poly1305>::new(
        Sake {
            signer: signer.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: sake::Version::V1,
        },
        cups::Version::V1,
    );
    let p2p_config = lookup::Config::local(
        handshake,
        &[NAMESPACE, b"_p2p"].concat(),
        config.p2p.listen,
        NZUsize!(validators.len().max(1)),
        config.p2p.max_message_bytes,
        NZUsize!(1024),
    );
    let (mut network, mut oracle) = lookup::Network::new(context.child("network"), p2p_config);
    let mut peers = Vec::new();
    for p in &config.p2p.peers {
        let bytes = hex::decode(&p.public_key).context("peer public key is not hex")?;
        let key = ed25519::PublicKey::decode(bytes::Bytes::from(bytes))
            .map_err(|e| anyhow!("invalid peer key {}: {e}", p.public_key))?;
        if !validators.contains(&key) {
            warn!(
                peer = p.public_key,
                "configured peer is not a validator; ignored"
            );
            continue;
        }
        peers.push((key, Address::from(p.address)));
    }
    if !peers.iter().any(|(k, _)| *k == me) {
        peers.push((me.clone(), Address::from(config.p2p.listen)));
    }
    let peers = Map::from_iter_dedup(peers);
    let _ = oracle.track(0, peers);
    let quota = Quota::per_second(P2P_CHANNEL_RATE).allow_burst(P2P_CHANNEL_BURST);
    let channels = Channels {
        votes: network.register(channel::VOTES, quota),
        certificates: network.register(channel::CERTIFICATES, quota),
        resolver: network.register(channel::RESOLVER, quota),
        broadcast: network.register(channel::BROADCAST, quota),
        backfill: network.register(channel::BACKFILL, quota),
    };
    let txs_channel = network.register(channel::TXS, quota);
    let readings_channel = network.register(channel::READINGS, quota);
    let network_handle = network.start();

    let (marshal, handles) = engine::start(
        context.child("engine"),
        EngineConfig {
            partition_prefix: "node".into(),
            leader_timeout: Duration::from_millis(config.consensus.leader_timeout_ms),
            certification_timeout: Duration::from_millis(config.consensus.certification_timeout_ms),
            timeout_retry: Duration::from_millis(config.consensus.timeout_retry_ms),
            block_limits: BlockLimits {
                max_txs: config.consensus.max_block_txs,
                max_readings: config.consensus.max_block_readings,
                max_bytes: config.consensus.max_block_bytes,
                known: None,
            },
            block_compression: format.block_compression(),
            marshal_views_per_section: format.marshal_views_per_section(),
        },
        chain.clone(),
        signer,
        channels,
        oracle.clone(),
        oracle.clone(),
    )
    .await;
    let committed = chain.committed().await.height;
    if committed > 0
        && let Some(b) = marshal.get_block(Height::new(committed)).await
    {
        chain.restore_tip(b.inner());
    }
    let gossip = gossip::start(
        context.child("gossip"),
        chain.clone(),
        txs_channel,
        readings_channel,
    );

    // HTTP API.
    let metrics_ctx = Arc::new(context.child("metrics"));
    let ingest = crate::ingest::Ingest::start(chain.clone());
    let txs = crate::tx_sigs::TxIngest::start(chain.clone());
    if let Some(mqtt) = &config.mqtt {
        crate::mqtt::start(chain.clone(), ingest.clone(), mqtt)?;
    }
    let state = Arc::new(ApiState {
        chain: chain.clone(),
        marshal,
        gossip,
        ingest,
        txs,
        metrics: Box::new(move || metrics_ctx.encode()),
        name: config.node.name.clone(),
        max_body_bytes: config.api.max_body_bytes,
        max_page: config.api.max_page,
        proof_trees: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.api.listen))?;
    let router = api::router(state).layer(axum::extract::DefaultBodyLimit::max(
        config.api.max_body_bytes,
    ));
    let timeouts = api::HttpTimeouts {
        header: Duration::from_millis(config.api.header_timeout_ms),
        request: Duration::from_millis(config.api.request_timeout_ms),
    };
    let api_handle = context.child("api").spawn(move |_| async move {
        api::serve(listener, router, timeouts).await;
    });
    info!(node = config.node.name, api = %config.api.listen, p2p = %config.p2p.listen, "node running");

    // Stop on SIGINT or SIGTERM.
    context.child("signals").spawn(|ctx| async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        info!("stopping");
        let _ = ctx.stop(0, Some(Duration::from_secs(10))).await;
    });
    let stopped = context.stopped();
    let mut all = handles;
    all.push(network_handle);
    all.push(api_handle);
    let outcome = tokio::select! {
        // A requested stop also ends components; it must win when both are ready, or a clean
        // stop would be reported as a failure.
        biased;
        _ = stopped => Ok(()),
        r = futures::future::select_all(all) => {
            let (result, _, _) = r;
            Err(anyhow!("a component of the node stopped: {result:?}"))
        }
    };
    // Returning aborts every task: first let the block being applied finish, so that no
    // block is cut off halfway through its application.
    if tokio::time::timeout(Duration::from_secs(10), chain.quiesce())
        .await
        .is_err()
    {
        warn!("a finalized block was still being applied after 10 s; stopping anyway");
    }
    if outcome.is_ok() {
        info!("stopped");
    }
    outcome
}
