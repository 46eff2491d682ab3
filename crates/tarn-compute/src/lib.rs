//! Compute: clusters and the engines behind them.
//!
//! Owns the cluster state machine ([`cluster`]), host-derived node types
//! ([`node_types`]), its event log as the API pages it ([`events`]), the runtimes a `spark_version` names ([`runtime`]),
//! managed Python environments and their overlays ([`env`]), cluster
//! libraries ([`libraries`]), execution contexts ([`context`]), the local engine
//! backend that runs one Sail Spark Connect server per running cluster
//! ([`engine`]), the Spark Connect client tarn runs its own work on an engine
//! with ([`connect`]), and the [`ClusterManager`] that drives transitions, watches
//! engines, terminates idle clusters and reconciles after a restart.
//!
//! Invariant: a cluster is RUNNING only after its engine answered a Spark
//! Connect request, and every transition is written to the store (with its
//! event) before the process it implies is started or stopped.

pub mod cluster;
pub mod connect;
pub mod context;
pub mod engine;
pub mod env;
mod error;
pub mod events;
pub mod gateway;
pub mod libraries;
pub mod managed;
mod manager;
pub mod node_types;
mod process;
mod rpc_status;
pub mod runtime;

pub use error::ComputeError;
pub use events::{EventPage, EventsRequest};
pub use manager::{CatalogDirectory, Cluster, ClusterFilter, ClusterManager, ComputeConfig};
