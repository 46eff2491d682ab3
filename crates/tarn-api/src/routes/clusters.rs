//! Clusters API, served under both `/api/2.0/clusters` and `/api/2.1/clusters`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tarn_compute::cluster::{ClusterState, TerminationReason};
use tarn_compute::{Cluster, ClusterFilter, EventQuery};
use tarn_compute::{node_types, runtime};
use tarn_core::{ApiError, page};
use tarn_store::EventFilter;

use super::required;
use crate::body::{JsonBody, QueryPairs};
use crate::error::ApiResult;
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
    let cluster_id = s.clusters.create(body, &user.user_name)?;
    Ok(Json(json!({"cluster_id": cluster_id})))
}

async fn get_cluster(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let id = required(query.get("cluster_id"), "cluster_id")?;
    Ok(Json(details(&s.clusters.get(id)?)))
}

async fn start(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.start(&cluster_id(&body)?, &user.user_name)?;
    Ok(ok())
}

async fn restart(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.restart(&cluster_id(&body)?, &user.user_name)?;
    Ok(ok())
}

async fn delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.terminate(&cluster_id(&body)?, TerminationReason::user_request(&user.user_name))?;
    Ok(ok())
}

async fn permanent_delete(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.permanent_delete(&cluster_id(&body)?, &user.user_name).await?;
    Ok(ok())
}

async fn edit(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(mut body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    body.remove("cluster_id");
    s.clusters.edit(&id, body, &user.user_name)?;
    Ok(ok())
}

async fn resize(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    let num_workers = match body.get("num_workers") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| ApiError::invalid_parameter(format!("num_workers must be an integer, got {v}")))?,
        ),
    };
    s.clusters.resize(&id, num_workers, body.get("autoscale").filter(|v| !v.is_null()), &user.user_name)?;
    Ok(ok())
}

async fn pin(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.set_pinned(&cluster_id(&body)?, true, &user.user_name)?;
    Ok(ok())
}

async fn unpin(
    State(s): State<AppState>,
    Extension(Caller(user)): Extension<Caller>,
    JsonBody(body): Body,
) -> ApiResult<Json<Value>> {
    s.clusters.set_pinned(&cluster_id(&body)?, false, &user.user_name)?;
    Ok(ok())
}

async fn not_implemented() -> ApiResult<Json<Value>> {
    Err(ApiError::not_implemented("This clusters endpoint is not implemented by tarn; use clusters/edit").into())
}

const LIST_PAGE_MAX: usize = 100;

fn parse_bool(v: &str) -> ApiResult<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid_parameter(format!("Expected a boolean, got {v}")).into()),
    }
}

fn parse_page_size(v: Option<&str>, max: usize, default: usize) -> ApiResult<usize> {
    match v {
        None => Ok(default),
        Some(v) => {
            let n: i64 =
                v.parse().map_err(|_| ApiError::invalid_parameter(format!("page_size must be an integer, got {v}")))?;
            if n < 0 {
                return Err(ApiError::invalid_parameter(format!("page_size must be >= 0, got {n}")).into());
            }
            Ok(if n == 0 { default } else { (n as usize).min(max) })
        }
    }
}

async fn list(State(s): State<AppState>, query: QueryPairs) -> ApiResult<Json<Value>> {
    let mut filter = ClusterFilter::default();
    for st in query.all("filter_by.cluster_states") {
        let state = ClusterState::ALL
            .into_iter()
            .find(|s| s.as_str() == st)
            .ok_or_else(|| ApiError::invalid_parameter(format!("Unknown cluster state: {st}")))?;
        filter.states.push(state);
    }
    filter.pinned = query.get("filter_by.is_pinned").map(parse_bool).transpose()?;
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
    let sources: Vec<&str> = query.all("filter_by.cluster_sources").collect();
    let mut clusters = s.clusters.list(&filter)?;
    clusters.retain(|c| !c.spec.is_managed());
    if !sources.is_empty() && !sources.contains(&"API") {
        clusters.clear();
    }
    let size = parse_page_size(query.get("page_size"), LIST_PAGE_MAX, LIST_PAGE_MAX)?;
    let offset = query.get("page_token").filter(|t| !t.is_empty()).map(page::decode).transpose()?.unwrap_or(0);
    let (items, next) = page::slice(&clusters, offset, size);
    let mut body = json!({"clusters": items.iter().map(details).collect::<Vec<_>>()});
    if let Some(next) = next {
        body["next_page_token"] = json!(next);
    }
    if offset > 0 {
        body["prev_page_token"] = json!(page::encode(offset.saturating_sub(size)));
    }
    Ok(Json(body))
}

const EVENT_TYPES: &[&str] = &[
    "CREATING",
    "STARTING",
    "RESTARTING",
    "TERMINATING",
    "EDITED",
    "RUNNING",
    "RESIZING",
    "UPSIZE_COMPLETED",
    "PINNED",
    "UNPINNED",
    "DRIVER_HEALTHY",
    "DRIVER_NOT_RESPONDING",
    "DRIVER_UNAVAILABLE",
    "SPARK_EXCEPTION",
    "NODES_LOST",
    "INIT_SCRIPTS_STARTED",
    "INIT_SCRIPTS_FINISHED",
    "AUTOSCALING_STATS_REPORT",
];

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

async fn events(State(s): State<AppState>, JsonBody(body): Body) -> ApiResult<Json<Value>> {
    let id = cluster_id(&body)?;
    let descending = match body.get("order").and_then(Value::as_str) {
        None | Some("DESC") => true,
        Some("ASC") => false,
        Some(other) => {
            return Err(ApiError::invalid_parameter(format!("order must be ASC or DESC, got {other}")).into());
        }
    };
    let mut kinds = Vec::new();
    for kind in body.get("event_types").and_then(Value::as_array).into_iter().flatten() {
        let kind = kind.as_str().filter(|k| EVENT_TYPES.contains(k));
        let kind =
            kind.ok_or_else(|| ApiError::invalid_parameter(format!("Unknown event type in event_types: {body:?}")))?;
        kinds.push(kind.to_string());
    }
    let limit = opt_i64(&body, "page_size")?.or(opt_i64(&body, "limit")?).unwrap_or(50);
    if !(0..=500).contains(&limit) {
        return Err(ApiError::invalid_parameter(format!("limit must be between 0 and 500, got {limit}")).into());
    }
    let limit = if limit == 0 { 50 } else { limit as usize };
    let offset = match body.get("page_token").and_then(Value::as_str).filter(|t| !t.is_empty()) {
        Some(token) => page::decode(token)?,
        None => usize::try_from(opt_i64(&body, "offset")?.unwrap_or(0))
            .map_err(|_| ApiError::invalid_parameter("offset must be >= 0"))?,
    };
    let query = EventQuery {
        cluster_id: id,
        filter: EventFilter {
            start_time: opt_i64(&body, "start_time")?,
            end_time: opt_i64(&body, "end_time")?,
            kinds,
            descending,
        },
        offset,
        limit,
    };
    let page = s.clusters.events(&query)?;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| json!({"cluster_id": e.cluster_id, "timestamp": e.timestamp, "type": e.kind, "details": e.details}))
        .collect();
    let mut answer = json!({"events": events, "total_count": page.total_count});
    if let Some(next) = page.next_offset {
        // The SDK pages by sending `next_page` back as the next request.
        let mut next_page = body.clone();
        next_page.remove("page_token");
        next_page.insert("offset".into(), json!(next));
        next_page.insert("limit".into(), json!(limit));
        answer["next_page"] = Value::Object(next_page);
        answer["next_page_token"] = json!(page::encode(next));
    }
    Ok(Json(answer))
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
    let mut out = c.spec.attributes.clone();
    let row = &c.row;
    out.entry("node_type_id").or_insert(json!(c.node_type_id));
    out.entry("driver_node_type_id").or_insert(json!(c.driver_node_type_id));
    out.insert("num_workers".into(), json!(c.spec.target_workers()));
    out.insert("autotermination_minutes".into(), json!(c.spec.autotermination_minutes));
    out.insert("spec".into(), Value::Object(c.spec.attributes.clone()));
    let mut default_tags = json!({
        "Vendor": "tarn",
        "Creator": row.creator,
        "ClusterName": c.spec.cluster_name,
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
