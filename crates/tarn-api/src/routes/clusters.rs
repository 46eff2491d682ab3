//! Clusters API, served under both `/api/2.0/clusters` and `/api/2.1/clusters`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_compute::cluster::{Autoscale, ClusterSize, ClusterSpec, ClusterState, NewCluster, TerminationReason};
use tarn_compute::{Cluster, ClusterFilter, EventsRequest};
use tarn_compute::{node_types, runtime};
use tarn_core::{ApiError, page};

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
use crate::paging::{Page, PageRule, Paged};
use crate::routes::permissions::{require, visible};
use crate::{AppState, Caller};

type Body = JsonBody<Map<String, Value>>;

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for version in ["2.0", "2.1"] {
        let at = |op: &str| format!("/api/{version}/clusters/{op}");
        router = router
            .route(&at("create"), post(create))
            .route(&at("get"), get(get_cluster))
            .route(&at("list"), get(list))
            .route(&at("start"), post(start))
            .route(&at("restart"), post(restart))
            .route(&at("delete"), post(delete))
            .route(&at("permanent-delete"), post(permanent_delete))
            .route(&at("edit"), post(edit))
            .route(&at("resize"), post(resize))
            .route(&at("events"), post(events))
            .route(&at("pin"), post(pin))
            .route(&at("unpin"), post(unpin))
            .route(&at("spark-versions"), get(spark_versions))
            .route(&at("list-node-types"), get(list_node_types))
            .route(&at("list-zones"), get(list_zones))
            .route(&at("update"), post(not_implemented))
            .route(&at("change-owner"), post(not_implemented));
    }
    router
}

fn cluster_id(body: &Map<String, Value>) -> ApiResult<String> {
    required(body.get("cluster_id").and_then(Value::as_str), "cluster_id").map(str::to_string)
}

fn ok() -> Json<Value> {
    Json(json!({}))
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    // Job clusters and tarn's own engines need no entitlement; this API does.
    if !tarn_identity::Directory::new(s.store.clone()).entitled(&user, "allow-cluster-create")? {
        return Err(ApiError::permission_denied(format!(
            "{} does not have the allow-cluster-create entitlement: an admin can give it to the user or a group",
            user.user_name
        ))
        .into());
    }
    let cluster_id = s.clusters.create(NewCluster::from_attributes(body)?, &user.user_name)?;
    Ok(Json(json!({"cluster_id": cluster_id})))
}

async fn get_cluster(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
) -> ApiResult<Json<Value>> {
    let id = required(query.get("cluster_id"), "cluster_id")?;
    require(&s, &user, "clusters", id, "CAN_ATTACH_TO")?;
    Ok(Json(details(&s.clusters.get(id)?)))
}

async fn start(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.start(&id, &user.user_name)?;
    Ok(ok())
}

async fn restart(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.restart(&id, &user.user_name)?;
    Ok(ok())
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_RESTART")?;
    s.clusters.terminate(&id, TerminationReason::user_request(&user.user_name))?;
    Ok(ok())
}

async fn permanent_delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_MANAGE")?;
    s.clusters.permanent_delete(&id, &user.user_name).await?;
    Ok(ok())
}

async fn edit(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(mut body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_MANAGE")?;
    body.remove("cluster_id");
    s.clusters.edit(&id, ClusterSpec::from_attributes(body)?, &user.user_name)?;
    Ok(ok())
}

/// The size a resize body asks for: `num_workers` or `autoscale`.
fn cluster_size(body: &Map<String, Value>) -> ApiResult<ClusterSize> {
    let num_workers = match body.get("num_workers") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::invalid_parameter(format!("num_workers must be an integer, got {v}")))?,
        ),
    };
    let refusal = match (num_workers, body.get("autoscale").filter(|v| !v.is_null())) {
        (Some(n), None) => return Ok(ClusterSize::Fixed(n)),
        (None, Some(a)) => return Ok(ClusterSize::Autoscale(Autoscale::from_json(a)?)),
        (Some(_), Some(_)) => "Specify either num_workers or autoscale, not both",
        (None, None) => "Either num_workers or autoscale is required",
    };
    Err(ApiError::invalid_parameter(refusal).into())
}

async fn resize(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_MANAGE")?;
    s.clusters.resize(&id, cluster_size(&body)?, &user.user_name)?;
    Ok(ok())
}

async fn pin(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_MANAGE")?;
    s.clusters.set_pinned(&id, true, &user.user_name)?;
    Ok(ok())
}

async fn unpin(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    require(&s, &user, "clusters", &id, "CAN_MANAGE")?;
    s.clusters.set_pinned(&id, false, &user.user_name)?;
    Ok(ok())
}

async fn not_implemented() -> ApiResult<Json<Value>> {
    Err(ApiError::not_implemented("This clusters endpoint is not implemented by tarn; use clusters/edit").into())
}

/// `clusters/list`: `page_size` up to 100.
struct ListPage;

impl PageRule for ListPage {
    const SIZE: &'static str = "page_size";
    const MAX: usize = 100;
    fn refusal(raw: &str, parsed: Option<i64>) -> Option<String> {
        match parsed {
            None => Some(format!("page_size must be an integer, got {raw}")),
            Some(n) if n < 0 => Some(format!("page_size must be >= 0, got {n}")),
            Some(_) => None,
        }
    }
}

/// Only the clusters the caller holds a level on.
async fn list(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    query: QueryPairs,
    page: Page<ListPage>,
) -> ApiResult<Paged<Value>> {
    let mut filter = ClusterFilter::default();
    for st in query.all("filter_by.cluster_states") {
        let state = ClusterState::ALL
            .into_iter()
            .find(|s| s.as_str() == st)
            .ok_or_else(|| ApiError::invalid_parameter(format!("Unknown cluster state: {st}")))?;
        filter.states.push(state);
    }
    filter.pinned = query.flag("filter_by.is_pinned");
    filter.sources = query.all("filter_by.cluster_sources").map(str::to_string).collect();
    filter.by_name = match query.get("sort_by.field") {
        None | Some("DEFAULT") => false,
        Some("CLUSTER_NAME") => true,
        Some(other) => return Err(ApiError::invalid_parameter(format!("Unknown sort field: {other}")).into()),
    };
    // Newest first unless the caller asks otherwise.
    filter.descending = match query.get("sort_by.direction") {
        None => !filter.by_name,
        Some("ASC") => false,
        Some("DESC") => true,
        Some(other) => return Err(ApiError::invalid_parameter(format!("Unknown sort direction: {other}")).into()),
    };
    let mut clusters = Vec::new();
    for cluster in s.clusters.list(&filter)? {
        if visible(&s, &user, "clusters", &cluster.row.cluster_id)? {
            clusters.push(cluster);
        }
    }
    Ok(page.slice("clusters", &clusters).map(|c| details(&c)).prev_page_token(page.prev_page_token()))
}

fn opt_i64(body: &Map<String, Value>, key: &str) -> ApiResult<Option<i64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(Some)
            .ok_or_else(|| ApiError::invalid_parameter(format!("{key} must be an integer, got {v}")).into()),
    }
}

/// An `events` body as tarn reads it; integers may come as numbers or strings.
fn events_request(body: &Map<String, Value>) -> ApiResult<EventsRequest> {
    let event_types = body.get("event_types").and_then(Value::as_array).into_iter().flatten();
    let page_token = body.get("page_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    Ok(EventsRequest {
        cluster_id: cluster_id(body)?,
        order: body.get("order").and_then(Value::as_str).map(str::to_string),
        event_types: event_types.map(|k| k.as_str().map_or_else(|| k.to_string(), str::to_string)).collect(),
        limit: opt_i64(body, "page_size")?.or(opt_i64(body, "limit")?),
        // A page token wins; `offset` is not read beside one.
        offset: if page_token.is_none() { opt_i64(body, "offset")? } else { None },
        page_token: page_token.map(str::to_string),
        start_time: opt_i64(body, "start_time")?,
        end_time: opt_i64(body, "end_time")?,
    })
}

async fn events(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Paged<Value>> {
    let request = events_request(&body)?;
    require(&s, &user, "clusters", &request.cluster_id, "CAN_ATTACH_TO")?;
    let page = s.clusters.events(&request)?;
    let events = page
        .events
        .iter()
        .map(|e| json!({"cluster_id": e.cluster_id, "timestamp": e.timestamp, "type": e.kind, "details": e.details}))
        .collect();
    let mut answer = Paged::new("events", events).with("total_count", json!(page.total_count));
    if let Some(next) = page.next_offset {
        // The SDK pages by sending `next_page` back as the next request.
        let mut next_page = body;
        next_page.remove("page_token");
        next_page.insert("offset".into(), json!(next));
        next_page.insert("limit".into(), json!(page.limit));
        answer = answer.with("next_page", Value::Object(next_page)).next_page_token(Some(page::encode(next)));
    }
    Ok(answer)
}

async fn spark_versions() -> Json<Value> {
    let versions: Vec<Value> =
        runtime::listed().into_iter().map(|(key, name)| json!({"key": key, "name": name})).collect();
    Json(json!({"versions": versions}))
}

async fn list_node_types(State(s): State<AppState>) -> Json<Value> {
    let types: Vec<Value> = node_types::node_types(s.clusters.host())
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            json!({
                "node_type_id": n.node_type_id,
                "instance_type_id": n.node_type_id,
                "memory_mb": n.memory_mb,
                "num_cores": n.num_cores,
                "num_gpus": 0,
                "description": n.description,
                "category": "General Purpose",
                "display_order": i,
                "is_deprecated": false,
                "is_hidden": false,
                "support_port_forwarding": true,
                "photon_driver_capable": false,
                "photon_worker_capable": false,
                "node_info": {},
            })
        })
        .collect();
    Json(json!({"node_types": types}))
}

async fn list_zones() -> Json<Value> {
    Json(json!({"zones": ["local"], "default_zone": "local"}))
}

/// `ClusterDetails` as the SDK reads it: the user's spec plus what tarn
/// knows of the cluster now.
fn details(c: &Cluster) -> Value {
    let attributes = c.spec.to_attributes();
    let mut out = attributes.clone();
    let row = &c.row;
    out.entry("node_type_id").or_insert(json!(c.node_type_id));
    out.entry("driver_node_type_id").or_insert(json!(c.driver_node_type_id));
    out.insert("num_workers".into(), json!(c.spec.target_workers()));
    out.insert("autotermination_minutes".into(), json!(c.spec.autotermination()));
    out.insert("spec".into(), Value::Object(attributes));
    let mut default_tags = json!({
        "Vendor": "tarn",
        "Creator": row.creator,
        "ClusterName": c.spec.name(),
        "ClusterId": row.cluster_id,
    });
    if let Some(url) = &c.connect_url {
        default_tags["SparkConnectUrl"] = json!(url);
        out.insert("spark_connect_url".into(), json!(url));
        out.insert(
            "driver".into(),
            json!({"node_id": format!("{}-driver", row.cluster_id), "private_ip": "127.0.0.1", "public_dns": "127.0.0.1", "host_private_ip": "127.0.0.1"}),
        );
    }
    if let Some(pid) = row.engine_pid {
        out.insert("spark_context_id".into(), json!(pid));
    }
    let fields = [
        ("cluster_id", json!(row.cluster_id)),
        ("state", json!(row.state)),
        ("state_message", json!(row.state_message)),
        ("creator_user_name", json!(row.creator)),
        ("start_time", json!(row.start_time)),
        ("cluster_source", json!("API")),
        ("default_tags", default_tags),
        ("cluster_cores", json!(c.cores)),
        ("cluster_memory_mb", json!(c.memory_mb)),
        ("executors", json!([])),
        ("is_pinned", json!(row.pinned)),
    ];
    out.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    let optional = [
        ("terminated_time", row.terminated_time.map(Value::from)),
        ("last_restarted_time", row.last_restarted_time.map(Value::from)),
        ("last_activity_time", row.last_activity_time.map(Value::from)),
        ("termination_reason", row.termination_reason.clone()),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| Some((k.to_string(), v?))));
    Value::Object(out)
}
