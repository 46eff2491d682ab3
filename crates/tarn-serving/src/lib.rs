//! Model serving: endpoints that put registered MLflow model versions
//! behind `POST /serving-endpoints/{name}/invocations`, as Databricks Model
//! Serving does.
//!
//! [`config`] reads an endpoint's config; [`endpoints`] keeps endpoints,
//! deploys each config blue/green and routes requests by the traffic
//! split; [`entity`] runs one served entity's workers in its model's own
//! Python environment (built from the model's logged requirements, cached
//! as job environments are), scaled to zero when idle if asked; [`worker`]
//! is one worker process, `python/tarn/serving.py`, which answers with
//! MLflow's own scoring code and joins concurrent requests into one
//! `predict` for row-wise models; [`model`] finds a version's files.
//!
//! Invariants: an endpoint is READY only when every served entity of its
//! live config has answered a request in its worker; a config update never
//! takes the live config down, whatever happens to the new one; wire JSON
//! is built by tarn-api.

pub mod config;
pub mod endpoints;
pub mod entity;
pub mod error;
pub mod inference;
pub mod model;
pub mod traffic;
pub mod worker;

pub use config::{EndpointConfig, ServedEntity};
pub use endpoints::{EndpointView, Endpoints, Invocation, NewEndpoint, Timing, check_ai_gateway};
pub use entity::{EntityContext, EntityState, LiveEntity};
pub use error::{Result, ServingError};
pub use model::{ModelSource, Registry};
