//! Compute: clusters, the engines behind them, and what runs on them.
//!
//! Owns the cluster state machine ([`cluster`]), host-derived node types
//! ([`node_types`]), its event log as the API pages it ([`events`]), the
//! runtimes a `spark_version` names ([`runtime`]),
//! managed Python environments and their overlays ([`env`]), cluster
//! libraries ([`libraries`]), execution contexts ([`context`]), the engine
//! process, one Spark Connect server per running cluster ([`engine`]), on the
//! backend a cluster names ([`backend`]: Sail, or Apache Spark, [`spark`]), the clusters tarn runs for its own services ([`managed`]),
//! and the [`ClusterManager`] that drives transitions, watches engines,
//! terminates idle clusters and reconciles after a restart.
//!
//! Not here: the Spark Connect edge clients talk to, and the client tarn runs
//! its own SQL on an engine with (both `tarn-gateway`). This crate speaks
//! Spark Connect only to probe that an engine answers.
//!
//! Invariant: a cluster is RUNNING only after its engine answered a Spark
//! Connect request, and every transition is written to the store (with its
//! event) before the process it implies is started or stopped.

pub mod backend;
pub mod cluster;
pub mod context;
pub mod engine;
pub mod env;
mod error;
pub mod events;
pub mod libraries;
pub mod managed;
mod manager;
pub mod node_types;
pub mod process;
pub mod runtime;
pub mod spark;

pub use error::ComputeError;
pub use events::{EventPage, EventsRequest};
pub use manager::{CatalogDirectory, Cluster, ClusterFilter, ClusterManager, ComputeConfig, StorageEnv};
