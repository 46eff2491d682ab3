//! The report from output tables written as JSON lines here: which window
//! and comparison it shows, the ranking and flag, and the page's escaping.

use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use deltalake::arrow::json::ReaderBuilder;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;
use serde_json::{Value, json};
use tarn_store::RefreshRow;

use super::*;

const DAY: i64 = 86_400_000;
/// A column name that breaks markup unless escaped.
const ODD: &str = r#"a<b>&"c'"#;

fn window_type() -> DataType {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    DataType::Struct(Fields::from(vec![Field::new("start", ts.clone(), true), Field::new("end", ts, true)]))
}

fn pair(a: &str, b: &str) -> DataType {
    DataType::Struct(Fields::from(vec![Field::new(a, DataType::Float64, true), Field::new(b, DataType::Float64, true)]))
}

fn table(fields: Vec<Field>, rows: &[Value]) -> RecordBatch {
    let schema = Arc::new(Schema::new(fields));
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let mut reader = ReaderBuilder::new(schema).build(text.as_bytes()).unwrap();
    reader.next().unwrap().unwrap()
}

fn window(day: i64, days: i64) -> Value {
    json!({"start": day * DAY * 1000, "end": (day + days) * DAY * 1000})
}

fn profile_row(log: &str, granularity: Option<&str>, model: Option<&str>, day: i64, column: &str, kind: &str) -> Value {
    let shift = if log == "BASELINE" { 0.0 } else { day as f64 * 10.0 };
    let (quantiles, items) = match kind {
        "double" if column == "x" => (json!((0..=100).map(|i| f64::from(i) + shift).collect::<Vec<_>>()), Value::Null),
        "string" => (Value::Null, json!([{"item": "<i>red</i>", "count": 60}, {"item": "blue & green", "count": 40}])),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "window": window(day, if granularity == Some("1 week") { 7 } else { 1 }),
        "log_type": log, "granularity": granularity, "model_version": model,
        "column_name": column, "data_type": kind, "count": 100, "num_nulls": 0,
        "avg": 50.0 + shift, "distinct_count": 100, "quantiles": quantiles, "frequent_items": items,
    })
}

fn drift_row(day: i64, drift_type: &str, column: &str, model: &str, statistic: f64) -> Value {
    let numeric = column == "x";
    let p = if numeric && statistic > 0.3 { 1e-9 } else { 0.6 };
    json!({
        "window": window(day, 1), "granularity": "1 day", "model_version": model,
        "column_name": column, "drift_type": drift_type,
        "ks_test": numeric.then(|| json!({"statistic": statistic, "pvalue": p})),
        "chi_squared_test": (!numeric).then(|| json!({"statistic": 1.5, "pvalue": p})),
        "js_distance": (!numeric).then_some(statistic), "tv_distance": (!numeric).then_some(statistic),
        "wasserstein_distance": numeric.then_some(statistic * 50.0), "population_stability_index": numeric.then_some(0.2),
    })
}

/// Three daily windows (and one weekly) for all models and for model "0",
/// a baseline; `x` drifts more each day, `ODD` does not, `ts` is counted.
async fn tables() -> Tables {
    let mut profiles = Vec::new();
    let columns = [(":table", ":table"), ("x", "double"), (ODD, "string"), ("ts", "timestamp")];
    for (column, kind) in columns {
        profiles.push(profile_row("BASELINE", None, None, 0, column, kind));
        profiles.push(profile_row("INPUT", Some("1 week"), Some("*"), 0, column, kind));
        for day in 0..3 {
            profiles.push(profile_row("INPUT", Some("1 day"), Some("*"), day, column, kind));
            profiles.push(profile_row("INPUT", Some("1 day"), Some("0"), day, column, kind));
        }
    }
    let mut drifts = Vec::new();
    for day in 0..3 {
        for model in ["*", "0"] {
            let off = if model == "0" { 0.2 } else { 0.0 };
            drifts.push(drift_row(day, "BASELINE", "x", model, 0.2 * day as f64 + off));
            drifts.push(drift_row(day, "BASELINE", ODD, model, 0.01));
            if day > 0 {
                drifts.push(drift_row(day, "CONSECUTIVE", "x", model, 0.2));
            }
        }
    }
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let float = |n: &str| Field::new(n, DataType::Float64, true);
    let long = |n: &str| Field::new(n, DataType::Int64, true);
    let items = DataType::Struct(Fields::from(vec![text("item"), long("count")]));
    let profile = table(
        vec![
            Field::new("window", window_type(), true),
            text("log_type"),
            text("granularity"),
            text("model_version"),
            text("column_name"),
            text("data_type"),
            long("count"),
            long("num_nulls"),
            float("avg"),
            long("distinct_count"),
            Field::new("quantiles", DataType::List(Arc::new(Field::new("element", DataType::Float64, true))), true),
            Field::new("frequent_items", DataType::List(Arc::new(Field::new("element", items, true))), true),
        ],
        &profiles,
    );
    let drift = table(
        vec![
            Field::new("window", window_type(), true),
            text("granularity"),
            text("model_version"),
            text("column_name"),
            text("drift_type"),
            Field::new("ks_test", pair("statistic", "pvalue"), true),
            Field::new("chi_squared_test", pair("statistic", "pvalue"), true),
            float("js_distance"),
            float("tv_distance"),
            float("wasserstein_distance"),
            float("population_stability_index"),
        ],
        &drifts,
    );
    let ctx = SessionContext::new();
    ctx.register_batch("profile_metrics", profile).unwrap();
    ctx.register_batch("drift_metrics", drift).unwrap();
    Tables::registered(ctx, Some("model_version"))
}

fn refresh(id: i64, state: &str) -> RefreshRow {
    RefreshRow {
        table_name: "main.default.t".into(),
        refresh_id: id,
        state: state.into(),
        trigger: "MANUAL".into(),
        start_time_ms: 3 * DAY,
        end_time_ms: Some(3 * DAY + 5_000),
        message: (state == "FAILED").then(|| "<boom>".into()),
    }
}

fn info() -> Value {
    json!({
        "status": "MONITOR_STATUS_ACTIVE",
        "baseline_table_name": "main.default.base",
        "inference_log": {"granularities": ["1 day", "1 week"], "model_id_col": "model_version",
                          "problem_type": "PROBLEM_TYPE_REGRESSION"},
        "profile_metrics_table_name": "main.default.t_profile_metrics",
        "drift_metrics_table_name": "main.default.t_drift_metrics",
    })
}

async fn report() -> Report {
    let refreshes = [refresh(2, "FAILED"), refresh(1, "SUCCESS")];
    let shown = shown_refreshes("main.default.t", &refreshes).unwrap();
    assemble(&tables().await, "main.default.t", &info(), shown).await.unwrap()
}

#[tokio::test]
async fn shows_the_latest_window_of_the_first_granularity_for_all_models() {
    let r = report().await;
    assert_eq!(r.header.granularity.as_deref(), Some("1 day"));
    assert_eq!(r.header.other_granularities, ["1 week"]);
    assert_eq!(r.header.window, Some((2 * DAY, 3 * DAY, 100)));
    assert_eq!((r.header.against, r.header.baseline_rows), (Against::Baseline, Some(100)));
    assert_eq!((r.header.latest_refresh.refresh_id, r.header.shown_refresh.refresh_id), (2, 1));
    let names: Vec<&str> = r.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["x", ODD, "ts"], "drifted, stable, not compared");
    let x = &r.columns[0];
    assert_eq!(x.kind, Kind::Numeric);
    assert_eq!(x.now.as_ref().map(|p| p.quantiles[0]), Some(20.0), "the latest window, day 2");
    assert_eq!(x.reference.as_ref().map(|p| p.quantiles[0]), Some(0.0), "the baseline");
    // Model "0"'s rows are left out: its statistics are 0.2 higher.
    let baseline: Vec<f64> = x.points.iter().filter_map(|p| p.baseline?.ks.map(|k| k.0)).collect();
    assert_eq!(baseline, [0.0, 0.2, 0.4]);
    assert_eq!(x.points.iter().filter(|p| p.consecutive.is_some()).count(), 2);
    assert_eq!(x.latest(Against::Baseline).and_then(|m| m.drifted()), Some(true));
    let odd = &r.columns[1];
    assert_eq!(odd.now.as_ref().map(|p| p.share("<i>red</i>")), Some(0.6));
    assert_eq!(odd.latest(Against::Baseline).and_then(|m| m.drifted()), Some(false));
    assert_eq!((r.columns[2].kind, r.columns[2].latest(Against::Baseline)), (Kind::Other, None));
}

#[tokio::test]
async fn the_page_escapes_data_and_draws_two_plots_per_compared_column() {
    let html = page::render(&report().await);
    assert!(!html.contains(ODD) && !html.contains("<i>red</i>") && !html.contains("<boom>"));
    assert!(html.contains("a&lt;b&gt;&amp;&quot;c&#39;") && html.contains("&lt;i&gt;red&lt;/i&gt;"));
    assert!(html.contains("&lt;boom&gt;"), "the failed refresh's message is shown");
    assert_eq!(html.matches("<svg").count(), 4, "x and the odd column, two plots each");
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    let x = html.find(r#"data-column="x" data-drifted="true""#).unwrap();
    let odd = html.find(r#"data-drifted="false""#).unwrap();
    let ts = html.find(r#"data-column="ts" data-drifted="unknown""#).unwrap();
    assert!(x < odd && odd < ts);
    assert!(!html.contains("<script"));
}

#[test]
fn a_report_needs_a_successful_refresh() {
    let failed = [refresh(1, "FAILED")];
    let err = shown_refreshes("main.default.t", &failed).unwrap_err();
    assert!(matches!(&err, MonitorError::InvalidState(m) if m.contains("refresh 1 is FAILED")), "{err}");
    assert!(matches!(shown_refreshes("main.default.t", &[]), Err(MonitorError::InvalidState(_))));
}

#[test]
fn drift_is_flagged_by_p_value_or_js_distance() {
    let numeric = Measures { ks: Some((0.04, 0.01)), wasserstein: Some(3.0), ..Measures::default() };
    assert_eq!(numeric.headline().map(|h| h.name), Some("KS statistic"));
    assert_eq!(numeric.drifted(), Some(true));
    let categorical = Measures { chi_squared: Some((2.0, 0.3)), js: Some(0.2), ..Measures::default() };
    assert_eq!(categorical.headline().map(|h| (h.name, h.value)), Some(("JS distance", 0.2)));
    assert_eq!(categorical.drifted(), Some(false));
    assert_eq!(Measures { js: Some(0.2), ..Measures::default() }.drifted(), Some(true));
    assert_eq!(Measures::default().drifted(), None);
}
